"""The task contract: what a task plugin supplies to the core.

A task module is imported on the predict path, which must work without torch,
so this file (and a plugin's own ``task.py``) imports torch only inside the
methods that train or export.  The split is:

* torch side (training, export): ``build_model``, ``load_data``, ``prepare``,
  ``loss``, ``graphs``;
* numpy side (deployment): ``predict``, ``evaluate``, ``read_input``,
  ``render``, ``demo``, ``sample_inputs`` — they talk to a model only through a
  :class:`Runner`, so the same code runs over torch and over ONNX Runtime.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from apptool.demo_context import DemoContext


class Runner(Protocol):
    """Runs one named graph of a bundle on numpy feeds (torch or ONNX Runtime)."""

    def run(self, graph: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Return the graph's outputs by name for the given input feeds."""


def run_in_batches(
    runner: Runner, graph: str, items: Sequence[Any], feeds: Callable[[Sequence[Any]], dict[str, np.ndarray]], batch_size: int
) -> dict[str, np.ndarray]:
    """The graph's outputs over all ``items``, ``batch_size`` at a time, concatenated along the batch axis.

    ``feeds`` turns a slice of ``items`` into the graph's input feeds (the
    task's preprocessing); ``batch_size`` bounds the memory one call takes, so
    a task with large inputs passes a small one.  No items: no outputs.
    """
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(items), batch_size):
        for name, value in runner.run(graph, feeds(items[start : start + batch_size])).items():
            parts.setdefault(name, []).append(value)
    return {name: np.concatenate(values) for name, values in parts.items()}


@dataclass
class Graph:
    """One ONNX graph a task exports, and how to check it.

    ``module`` takes its inputs positionally in ``input_names`` order and
    returns a tensor or a tuple in ``output_names`` order.  ``examples`` are
    feeds at several shapes (batch sizes, lengths, image sizes): the first is
    the export example, all of them are checked for parity: torch and ONNX
    Runtime may differ by ``atol`` on outputs of magnitude up to 1, and by
    ``atol`` times the magnitude on larger ones.
    """

    name: str
    module: Any  # torch.nn.Module; typed loosely so this file needs no torch
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    dynamic_axes: dict[str, dict[int, str]]
    examples: list[dict[str, np.ndarray]]
    atol: float = 1e-4


@dataclass
class Splits:
    """Training and test data as torch Datasets, plus what the bundle must remember.

    ``info`` is merged into the top level of the bundle config: class names,
    vocabulary, normalisation statistics.  Its keys replace whole config keys,
    so they must not be ``model``, ``data``, ``train`` or ``seed``.
    """

    train: Any
    test: Any
    info: dict[str, Any] = field(default_factory=dict)


def deep_merge(base: dict, override: dict) -> dict:
    """Return ``base`` updated by ``override``, recursing into nested dicts."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _stated_epochs_win(config: dict, overrides: dict) -> None:
    """Epochs the user asked for win over the preset's step budget, in ``train`` and any other section with one."""
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            _stated_epochs_win(config[key], value)
    if "epochs" in overrides and "steps" not in overrides and "steps" in config:
        config["steps"] = 0


TRAIN_DEFAULTS: dict[str, Any] = {
    "epochs": 10,  # used when ``steps`` is 0, and always when the user states it (``--epochs``)
    "steps": 0,  # budget in optimizer steps, turned into epochs for the data at hand; 0 = use ``epochs``
    "min_epochs": 1,  # bounds of the epochs a ``steps`` budget becomes
    "max_epochs": 1000,
    "batch_size": 32,
    "optimizer": "adamw",  # "adamw" | "sgd"
    "lr": 1e-3,
    "momentum": 0.9,
    "weight_decay": 1e-4,
    "schedule": "cosine",  # "cosine" | "step" | "constant"
    "warmup_epochs": 0,
    "val_fraction": 0.1,
    "min_val_size": 1,  # a smaller validation split is not held out: all data trains (weights of least training loss kept)
    "patience": 0,  # early-stopping patience in epochs; 0 disables it
    "balance_classes": False,  # draw classes equally often when the labels are skewed (classification tasks)
    "grad_clip": 0.0,  # max gradient norm; 0 disables clipping
    "finetune": "full",  # "full" | "frozen" | "gradual": how the encoder trains
    "backbone_lr_mult": 0.1,  # encoder LR = lr * this, under "gradual" and "full"
    "unfreeze_epoch": 1,  # under "gradual", the epoch the encoder starts training
    "num_workers": 0,
    "tensorboard": False,  # also log losses and learning rate for TensorBoard in <out>/tensorboard
    "fit": True,  # False: the model is ready as built (e.g. a shipped ImageNet classifier); the bundle holds it untrained
}


class Task(ABC):
    """Base class of every task.  Subclass it and return instances from ``apptool_tasks``.

    Class attributes are data, read by the CLI, hub and conformance suite:

    * ``name`` — CLI name (``apptool train NAME``), also the ONNX metadata tag;
    * ``title`` — the demo tab's label;
    * ``metrics`` — keys ``evaluate`` always returns; ``primary_metric`` and
      ``greater_is_better`` tell which one summarises a model;
    * ``input_kind`` — ``"image"`` (HxWx3 uint8 RGB arrays) or anything else a
      task reads itself through ``read_input``; ``input_suffixes`` — the files
      ``predict`` picks from a folder;
    * ``presets`` — overrides of ``default_config()`` by preset name;
    * ``demo_preset`` — the preset the hub's ``--train-missing`` uses for this task
      (e.g. one whose model is ready without training); empty means the hub's own.
    """

    name: ClassVar[str]
    title: ClassVar[str] = ""
    description: ClassVar[str] = ""
    metrics: ClassVar[tuple[str, ...]] = ()
    primary_metric: ClassVar[str] = ""
    greater_is_better: ClassVar[bool] = True
    input_kind: ClassVar[str] = "image"
    input_suffixes: ClassVar[frozenset[str]] = frozenset(
        {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".mp4", ".avi", ".mov", ".mkv", ".webm"}
    )
    presets: ClassVar[dict[str, dict[str, Any]]] = {"quick": {}, "full": {}}
    demo_preset: ClassVar[str] = ""

    # -- configuration ---------------------------------------------------
    def default_config(self) -> dict[str, Any]:
        """Model, data and training settings; ``train`` keys override TRAIN_DEFAULTS."""
        return {"model": {}, "data": {}, "train": {}}

    def config(self, preset: str = "quick", overrides: dict | None = None) -> dict[str, Any]:
        """The full config for a preset: defaults, then the preset, then ``overrides``."""
        from apptool.errors import ConfigError

        if preset not in self.presets:
            raise ConfigError(f"task {self.name!r} has no preset {preset!r}; choose one of {sorted(self.presets)}")
        config = deep_merge({"train": dict(TRAIN_DEFAULTS), "seed": 0}, self.default_config())
        config = deep_merge(config, self.presets[preset])
        config = deep_merge(config, overrides or {})
        _stated_epochs_win(config, overrides or {})
        train_overrides = (overrides or {}).get("train")
        budget = sorted(set(train_overrides or {}) & {"epochs", "steps"}) if isinstance(train_overrides, dict) else []
        if budget and not config["train"].get("fit", True):
            raise ConfigError(
                f"train.{budget[0]}: task {self.name!r} preset {preset!r} trains nothing (its model is used as built)"
            )
        config["task"] = self.name
        config["preset"] = preset
        return config

    def validate_config(self, config: dict[str, Any]) -> None:
        """Checks of this task's own beyond the known keys, types and ranges ``apptool.config`` checks.

        Raise ``ConfigError`` naming the key.  Called before training and when
        a bundle loads (then ``config`` also holds the ``Splits.info`` keys).
        """
        return None  # the base task has no checks beyond the validator's

    # -- torch side: training and export --------------------------------
    @abstractmethod
    def build_model(self, config: dict[str, Any]) -> "torch.nn.Module":
        """The torch model for ``config``; an encoder, if any, is its ``encoder`` attribute."""

    @abstractmethod
    def load_data(self, config: dict[str, Any], data_dir: Path | None) -> Splits:
        """Train/test datasets from ``data_dir`` (public layouts) or the built-in generator."""

    def collate(self, samples: list) -> Any:
        """Batch samples for the trainer; the default stacks them with torch's collate."""
        from torch.utils.data import default_collate

        return default_collate(samples)

    def prepare(self, model: "torch.nn.Module", train: Any, val: Any, config: dict[str, Any]) -> dict[str, Any] | None:
        """A stage that needs the training data before fitting (greedy pretraining, feature statistics).

        The trainer calls it once its validation split is made, with the parts it
        will fit on (``train``) and hold out (``val``, None when it holds none out),
        before it builds the optimizer.  It runs on every rank under DDP (same data,
        same seed, so each rank starts from the same weights) with the model on the
        CPU as built.  A resumed run skips it: the checkpoint holds its weights and
        its result.  The JSON-ready result goes into metrics.json under ``prepare``.
        """
        return None  # most tasks fit from the weights build_model gives

    def calibrate(self, model: "torch.nn.Module", train: Any, val: Any, config: dict[str, Any]) -> dict[str, Any] | None:
        """A stage after training that needs held-out data (mixing weights, a temperature): ``prepare``'s counterpart.

        The trainer calls it with the best weights restored, the model on the CPU in
        eval mode, and the same ``train`` and ``val`` parts (``val`` None when it held
        none out), on every rank; it runs on a resumed run too.  What it changes in
        the model is exported; its JSON-ready result goes into metrics.json under
        ``calibrate``.
        """
        return None

    @abstractmethod
    def loss(self, model: "torch.nn.Module", batch: Any) -> "torch.Tensor":
        """The training loss of one batch (also used for validation); ``model`` is always the bare model."""

    @abstractmethod
    def graphs(self, model: "torch.nn.Module", config: dict[str, Any]) -> list[Graph]:
        """The ONNX graphs to export from a trained model, with parity examples."""

    # -- numpy side: deployment ------------------------------------------
    @abstractmethod
    def predict(self, runner: Runner, items: Sequence[Any], config: dict[str, Any]) -> list[dict[str, Any]]:
        """Preprocess raw items, run the graphs, postprocess to JSON-ready dicts."""

    @abstractmethod
    def evaluate(self, runner: Runner, dataset: Any, config: dict[str, Any], out_dir: Path | None = None) -> dict[str, Any]:
        """The field's metrics on a held-out dataset; may write plots into ``out_dir``."""

    @abstractmethod
    def sample_inputs(self, config: dict[str, Any], n: int, seed: int = 0) -> list[Any]:
        """``n`` raw inputs from the built-in generator: demo examples, bench, tests."""

    def read_input(self, path: Path) -> Iterator[tuple[str, Any]]:
        """Raw items from a file the user passed to ``predict``: (name, item) pairs."""
        from apptool.images import read_image_or_video

        yield from read_image_or_video(path)

    def render(self, item: Any, result: dict[str, Any], config: dict[str, Any]) -> np.ndarray | None:
        """An annotated RGB image of a prediction, or None if the task draws nothing."""
        return None

    @abstractmethod
    def demo(self, ctx: "DemoContext") -> None:
        """Build this task's Gradio components inside the hub's tab."""


TaskFactory = Callable[[], Task]
