"""The ``gesture`` task: recurrent networks trained by backpropagation through time on motion sequences.

Torch is imported only inside the training/export methods; predict, evaluate,
read_input, render and demo run on numpy and reach the model through a runner.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from apptool.errors import DataError, InputError
from apptool.plots import write_confusion_png
from apptool.task import Graph, Splits, Task
from apptool_gesture.baselines import baseline_accuracies
from apptool_gesture.csvformat import read_csv_sequence
from apptool_gesture.data import load_splits, unaugmented
from apptool_gesture.demo import build_demo
from apptool_gesture.drawing import draw_sequence
from apptool_gesture.features import input_spec, model_input, pad_batch, prepare, softmax
from apptool_gesture.generator import GESTURES, KINDS, make_gesture
from apptool_gesture.metrics import accuracy, confusion_matrix, macro_f1, per_class_f1
from apptool_gesture.settings import DEFAULT_CONFIG, PRESETS, class_names, model_options, rocket_length
from apptool_gesture.streaming import state_shapes, stream, streaming_available
from apptool_gesture.tsformat import read_ts

CHUNK = 64  # sequences per graph call


def chunked_logits(inputs: Sequence[np.ndarray], logits_of: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
    """(N, C) logits of prepared (T, F) inputs: ``logits_of(batch, lengths)`` on padded chunks of ``CHUNK`` sequences."""
    return np.concatenate([logits_of(*pad_batch(inputs[i : i + CHUNK])) for i in range(0, len(inputs), CHUNK)], 0)


def offline_logits(runner, inputs: Sequence[np.ndarray]) -> np.ndarray:
    """(N, C) logits of prepared (T, F) inputs through the offline graph."""
    return chunked_logits(inputs, lambda batch, lengths: runner.run("model", {"x": batch, "lengths": lengths})["logits"])


def streaming_logits(runner, inputs: Sequence[np.ndarray], config: dict[str, Any]) -> np.ndarray:
    """(N, C) logits at each sequence's last frame, fed frame by frame through the step graph."""
    return chunked_logits(inputs, lambda batch, lengths: stream(runner, batch, lengths, config)[1])


class GestureTask(Task):
    name = "gesture"
    title = "Gesture recognition (LSTM)"
    description = (
        "Class of a motion sequence (pen trajectory or accelerometer) from a stacked LSTM/GRU trained "
        "by backpropagation through time; recognised offline or frame by frame as it happens."
    )
    metrics = ("accuracy", "macro_f1", "streaming_agreement")
    primary_metric = "accuracy"
    input_kind = "sequence"
    input_suffixes = frozenset({".ts", ".csv"})
    presets = PRESETS

    def default_config(self) -> dict[str, Any]:
        return {key: dict(value) for key, value in DEFAULT_CONFIG.items()}

    # -- torch side ---------------------------------------------------------
    def build_model(self, config: dict[str, Any]):
        from apptool_gesture.model import GestureNet

        opts = model_options(config)
        return GestureNet(
            input_spec(config)["n_features"],
            len(class_names(config)),
            opts["cell"],
            int(opts["hidden"]),
            int(opts["layers"]),
            bool(opts["bidirectional"]),
            float(opts["dropout"]),
            int(opts["conv_channels"]),
            int(opts["conv_kernel"]),
            bool(opts["pool"]),
            [int(c) for c in opts["fcn_channels"]],
            [int(k) for k in opts["fcn_kernels"]],
            int(opts["rocket_features"]),
            rocket_length(config),
        )

    def load_data(self, config: dict[str, Any], data_dir: Path | None) -> Splits:
        train, test, info = load_splits(config, data_dir)
        return Splits(train, test, info)

    def collate(self, samples: list):
        """Pad to the longest sequence and sort by decreasing length, ready to pack: (x, lengths, labels)."""
        import torch

        samples = sorted(samples, key=lambda s: len(s[0]), reverse=True)
        batch, lengths = pad_batch([s[0] for s in samples])
        return (torch.from_numpy(batch), torch.from_numpy(lengths), torch.tensor([s[1] for s in samples], dtype=torch.int64))

    def prepare(self, model, train, val, config: dict[str, Any]) -> dict[str, Any] | None:
        """The MiniRocket head, fitted in closed form on the whole, unaugmented training part before the network trains."""
        if model.rocket is None:
            return None
        from apptool_gesture.rocket import fit_rocket_head

        return {"minirocket": fit_rocket_head(model, *unaugmented(train))}

    def calibrate(self, model, train, val, config: dict[str, Any]) -> dict[str, Any] | None:
        """The heads' shares of the mix, chosen on the unaugmented validation split; half each when none is held out."""
        if model.rocket is None:
            return None
        if val is None:
            return {"minirocket_share": 0.5, "chosen_by": "default: no validation split held out"}
        from apptool_gesture.rocket import fit_mix_shares

        return fit_mix_shares(model, *unaugmented(val))

    def loss(self, model, batch):
        from torch.nn import functional as F

        x, lengths, labels = batch
        return F.cross_entropy(model.network_logits(x, lengths), labels)

    def graphs(self, model, config: dict[str, Any]) -> list[Graph]:
        """``model`` (offline; dynamic batch and time) and, for a unidirectional network, ``step`` (streaming)."""
        from apptool_gesture.model import OfflineGraph, StepGraph

        model = model.eval()
        n_features = input_spec(config)["n_features"]
        rng = np.random.default_rng(0)
        offline_examples = [
            {"x": rng.standard_normal((b, t, n_features)).astype(np.float32), "lengths": np.array(lens, np.int64)}
            for b, t, lens in [(1, 40, [40]), (3, 17, [17, 9, 1]), (3, 73, [73, 50, 12]), (2, 160, [160, 101])]
        ]
        graphs = [
            Graph(
                "model",
                OfflineGraph(model).eval(),
                ("x", "lengths"),
                ("logits",),
                {"x": {0: "batch", 1: "time"}, "lengths": {0: "batch"}, "logits": {0: "batch"}},
                offline_examples,
            )
        ]
        if model.bidirectional:
            return graphs
        names = list(state_shapes(config, 1))
        step_examples = [
            {
                "x": rng.standard_normal((b, n_features)).astype(np.float32),
                **{
                    n: (rng.integers(1, 50, shape) if n == "count" else scale * rng.standard_normal(shape)).astype(np.float32)
                    for n, shape in state_shapes(config, b).items()
                },
            }
            for b, scale in [(1, 0.0), (3, 0.5), (5, 1.0)]
        ]
        dynamic = {"x": {0: "batch"}, "logits": {0: "batch"}}
        for n in names:
            dynamic[n] = dynamic[f"{n}_out"] = {1 if n in ("h", "c") else 0: "batch"}
        graphs.append(
            Graph(
                "step",
                StepGraph(model, names).eval(),
                ("x", *names),
                ("logits", *(f"{n}_out" for n in names)),
                dynamic,
                step_examples,
            )
        )
        return graphs

    # -- numpy side ---------------------------------------------------------
    def predict(self, runner, items: Sequence[Any], config: dict[str, Any]) -> list[dict[str, Any]]:
        if not items:
            return []
        spec, names = input_spec(config), class_names(config)
        inputs = [model_input(item, spec, f"item {i}") for i, item in enumerate(items)]
        probs = softmax(offline_logits(runner, inputs))
        results = []
        for item, p in zip(items, probs):
            best = int(p.argmax())
            results.append(
                {
                    "label": names[best],
                    "index": best,
                    "confidence": float(p[best]),
                    "frames": len(item),  # as given, before any pooling of frames
                    "probabilities": {n: float(v) for n, v in zip(names, p)},
                }
            )
        return results

    def evaluate(self, runner, dataset, config: dict[str, Any], out_dir: Path | None = None) -> dict[str, Any]:
        """Accuracy, macro-F1 and how often streaming ends on the offline class, on the held-out split."""
        spec, names = input_spec(config), class_names(config)
        lookup = {n: i for i, n in enumerate(names)}
        unknown = sorted({dataset.classes[y] for y in dataset.labels} - set(lookup))
        if unknown:
            raise DataError(f"test classes {unknown} are not classes of this model ({', '.join(names)})")
        truth = np.array([lookup[dataset.classes[y]] for y in dataset.labels])
        inputs = [model_input(s, spec, f"test sequence {i}") for i, s in enumerate(dataset.sequences)]
        offline = offline_logits(runner, inputs).argmax(1)
        counts = confusion_matrix(truth, offline, len(names))
        result: dict[str, Any] = {
            "accuracy": accuracy(truth, offline),
            "macro_f1": macro_f1(truth, offline, len(names)),
            "streaming_agreement": None,
            "n_test": len(truth),
            "per_class_f1": {n: float(f) for n, f in zip(names, per_class_f1(counts))},
            "confusion_matrix": counts.tolist(),
        }
        result.update(self._baselines(dataset, inputs, truth, spec, lookup))
        if streaming_available(config):
            streamed = streaming_logits(runner, inputs, config).argmax(1)
            result["streaming_agreement"] = float(np.mean(streamed == offline))
            result["streaming_accuracy"] = accuracy(truth, streamed)
        else:
            result["streaming"] = "unavailable: the model is bidirectional, so it needs the whole sequence"
        if out_dir is not None:
            write_confusion_png(
                counts,
                names,
                Path(out_dir) / "confusion_matrix.png",
                f"gesture · accuracy {result['accuracy']:.3f} · macro-F1 {result['macro_f1']:.3f}",
            )
        return result

    @staticmethod
    def _baselines(dataset, inputs, truth, spec, lookup) -> dict[str, Any]:
        """1-NN Euclidean and DTW accuracies on the same split and inputs, when the test set knows its training set."""
        reference = getattr(dataset, "reference", None)
        if reference is None:
            return {"baseline_1nn_euclidean": None, "baseline_1nn_dtw": None, "baseline_1nn_dtw_unavailable": "no training split"}
        train = [prepare(s, spec) for s in reference.sequences]
        train_y = np.array([lookup[reference.classes[y]] for y in reference.labels])
        return baseline_accuracies(train, train_y, inputs, truth)

    def sample_inputs(self, config: dict[str, Any], n: int, seed: int = 0) -> list[Any]:
        """Generated gestures of every class in turn; for a model of user data with other channels, random walks."""
        spec, data_cfg = input_spec(config), config.get("data", DEFAULT_CONFIG["data"])
        rng = np.random.default_rng((seed, 7))
        kind = data_cfg.get("kind", "pen")
        if spec["raw_dims"] == KINDS.get(kind):
            return [make_gesture(GESTURES[i % len(GESTURES)], rng, data_cfg) for i in range(n)]
        return [
            np.cumsum(rng.standard_normal((int(rng.integers(30, 100)), spec["raw_dims"])), 0).astype(np.float32) for _ in range(n)
        ]

    def read_input(self, path: Path) -> Iterator[tuple[str, Any]]:
        """Cases of a ``.ts`` file (labels, if any, ignored) or the one sequence of a ``.csv`` file."""
        path = Path(path)
        suffix = path.suffix.lower()
        try:
            if suffix == ".ts":
                for i, series in enumerate(read_ts(path).series):
                    yield f"{path.name}#{i + 1}", series
            elif suffix == ".csv":
                yield path.name, read_csv_sequence(path)
            else:
                raise InputError(f"{path}: expected a .ts (UCR/UEA) or .csv sequence file")
        except DataError as exc:
            raise InputError(str(exc)) from None

    def render(self, item: Any, result: dict[str, Any], config: dict[str, Any]) -> np.ndarray | None:
        return draw_sequence(np.asarray(item, np.float32), f"{result['label']} {result['confidence']:.0%}")

    def demo(self, ctx) -> None:
        build_demo(ctx)
