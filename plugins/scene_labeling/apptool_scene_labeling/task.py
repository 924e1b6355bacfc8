"""The scene-labeling task (after Farabet, Couprie, Najman, LeCun, PAMI 2013).

Importing this module never imports torch: the torch side (model, loss,
export) is imported inside the methods that need it, and the numpy side
(predict, evaluate, render, demo) reaches the network only through a Runner.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from apptool.errors import ConfigError, DataError
from apptool.imagenet import fill_normalization
from apptool.images import to_rgb
from apptool.plots import write_confusion_png
from apptool.task import Graph, Splits, Task
from apptool_scene_labeling.baseline import baseline_scores
from apptool_scene_labeling.data import (
    LEGACY_MEAN,
    LEGACY_STD,
    GeneratedScenes,
    SceneSet,
    fit_size,
    palette,
    read_data_dir,
)
from apptool_scene_labeling.metrics import confusion, scores
from apptool_scene_labeling.overlay import draw_overlay
from apptool_scene_labeling.scenes import CLASSES, generate_scene

EVAL_BATCH = 8
#: model.loss: plain cross-entropy, or every class weighing the same (higher class accuracy)
LOSSES = ("ce", "balanced")


class SceneLabelingTask(Task):
    name = "scene_labeling"
    title = "Scene labeling"
    description = (
        "Per-pixel labels of outdoor scenes with the eight Stanford Background classes (sky, tree, road, "
        "grass, water, building, mountain, foreground object), after Farabet et al. 2013: a timm encoder "
        "with a multi-scale (feature-pyramid) decoder."
    )
    metrics = ("pixel_acc", "class_acc", "miou")
    primary_metric = "miou"
    greater_is_better = True
    input_kind = "image"
    presets = {
        "tiny": {  # the tests' preset: a small random-init resnet10t, fast and independent of any weights
            "model": {"decoder_channels": 16, "backbone": "resnet10t", "pretrained": None},
            "data": {"n_train": 16, "n_test": 4, "height": 64, "width": 64, "long_side": 64},
            "train": {"steps": 0, "epochs": 1, "batch_size": 8, "val_fraction": 0.0},
        },
        "quick": {},
        "full": {
            "data": {"n_train": 3000, "n_test": 300},
            "train": {"steps": 4296, "epochs": 24, "patience": 6},  # 24 epochs of 3,000 scenes
        },
    }

    def default_config(self) -> dict[str, Any]:
        return {
            "model": {
                # ImageNet-1k EfficientNet-Lite0 (README: +0.2 mIoU over random init from 32 scenes, same cost per step)
                "backbone": "efficientnet_lite0",
                "pretrained": "imagenet",
                "decoder_channels": 64,
                "dropout": 0.1,
                "loss": "ce",  # "ce" | "balanced" (every class weighs the same: higher class accuracy)
                "mean": None,  # None: what the encoder's weights expect (apptool.imagenet.normalization)
                "std": None,
            },
            "data": {"n_train": 800, "n_test": 100, "height": 128, "width": 128, "long_side": 128, "max_train": 0},
            "train": {
                "steps": 384,  # optimizer steps, whatever the data: 8 epochs of the generator's 800 scenes, 128 of 36
                "epochs": 8,
                "batch_size": 16,
                "lr": 2e-3,
                "weight_decay": 1e-4,
                "backbone_lr_mult": 1.0,
                "val_fraction": 0.05,
                "warmup_epochs": 1,
            },
        }

    def config(self, preset: str = "quick", overrides: dict | None = None) -> dict[str, Any]:
        """As the base class, with ``model.mean``/``std`` filled in from the encoder's weights unless given."""
        return with_normalization(super().config(preset, overrides))

    def validate_config(self, config: dict[str, Any]) -> None:
        """``model.loss`` names one of the two losses ``segmentation_loss`` knows."""
        loss = config["model"].get("loss", "ce")
        if loss not in LOSSES:
            raise ConfigError(f"model.loss = {loss!r}: expected one of {', '.join(map(repr, LOSSES))}")

    # -- torch side ----------------------------------------------------------------
    def build_model(self, config: dict[str, Any]):
        from apptool_scene_labeling.model import SceneSegmenter

        model = config["model"]
        # A finished bundle ("graphs" set at export) brings its own weights: its pretrained source is not needed again.
        pretrained = None if "graphs" in config else model.get("pretrained")
        return SceneSegmenter(
            model["backbone"],
            len(config.get("classes", CLASSES)),
            model.get("mean") or LEGACY_MEAN,
            model.get("std") or LEGACY_STD,
            pretrained,
            int(model["decoder_channels"]),
            float(model["dropout"]),
            model.get("loss") == "balanced",
        )

    def load_data(self, config: dict[str, Any], data_dir: Path | None) -> Splits:
        data = config["data"]
        if data_dir is None:
            seed = int(config["seed"])
            train = GeneratedScenes(int(data["n_train"]), seed, 0, int(data["height"]), int(data["width"]))
            test = GeneratedScenes(int(data["n_test"]), seed, 1, int(data["height"]), int(data["width"]))
            classes, layout = list(CLASSES), "generator"
        else:
            classes, train, test, layout = read_data_dir(Path(data_dir))
        if int(data.get("max_train") or 0) > 0:
            train = [train[i] for i in range(min(len(train), int(data["max_train"])))]
        known = config.get("classes")
        if known is not None and list(known) != classes:
            raise DataError(f"{data_dir}: classes {classes} differ from the model's {list(known)}")
        info = {"classes": classes, "palette": palette(len(classes)).tolist(), "layout": layout}
        long_side = int(data["long_side"])
        return Splits(SceneSet(train, long_side, augment=True), SceneSet(test, long_side, reference=train), info)

    def loss(self, model, batch):
        from apptool_scene_labeling.model import segmentation_loss

        images, masks = batch
        return segmentation_loss(model(images), masks, model.balanced)

    def graphs(self, model, config: dict[str, Any]) -> list[Graph]:
        side = int(config["data"]["long_side"])
        shapes = [(1, side, side), (3, max(32, side - 32), side + 32)]
        images = self.sample_inputs(config, 3, seed=1)
        examples = [{"image": np.stack([_to_input(images[i], (h, w)) for i in range(n)])} for n, h, w in shapes]
        axes = {0: "batch", 2: "height", 3: "width"}
        return [Graph("model", model.eval(), ("image",), ("logits",), {"image": axes, "logits": axes}, examples)]

    # -- numpy side ------------------------------------------------------------------
    def predict(self, runner, items: Sequence[Any], config: dict[str, Any]) -> list[dict[str, Any]]:
        classes = config.get("classes", list(CLASSES))
        images = [to_rgb(item, f"item {i}") for i, item in enumerate(items)]
        results = []
        for labels in segment(runner, images, config):
            counts = np.bincount(labels.ravel(), minlength=len(classes))[: len(classes)]
            _, png = cv2.imencode(".png", labels)
            results.append(
                {
                    "size": [int(labels.shape[0]), int(labels.shape[1])],
                    "area": {name: round(float(c) / labels.size, 5) for name, c in zip(classes, counts)},
                    "classes": list(classes),
                    "mask_png_base64": base64.b64encode(png.tobytes()).decode("ascii"),
                }
            )
        return results

    def evaluate(self, runner, dataset, config: dict[str, Any], out_dir: Path | None = None) -> dict[str, Any]:
        """Pixel accuracy, class accuracy and mIoU, beside the same three of a per-pixel random forest (``baseline_*``)."""
        classes = config.get("classes", list(CLASSES))
        pairs = dataset.pairs if hasattr(dataset, "pairs") else dataset
        matrix = np.zeros((len(classes), len(classes)), np.int64)
        for start in range(0, len(pairs), EVAL_BATCH):
            batch = [pairs[i] for i in range(start, min(start + EVAL_BATCH, len(pairs)))]
            for (_, mask, _), labels in zip(batch, segment(runner, [b[0] for b in batch], config)):
                matrix += confusion(mask, labels, len(classes))
        result = scores(matrix, classes)
        result["n_images"] = len(pairs)
        result["labelled_pixels"] = int(matrix.sum())
        result.update(baseline_scores(getattr(dataset, "reference", None), pairs, classes, int(config["data"]["long_side"])))
        if out_dir is not None:
            write_confusion_png(
                matrix,
                classes,
                Path(out_dir) / "confusion_matrix.png",
                f"scene labeling · mIoU {result['miou']:.3f} · pixel acc {result['pixel_acc']:.3f}",
            )
        return result

    def sample_inputs(self, config: dict[str, Any], n: int, seed: int = 0) -> list[Any]:
        data = config["data"]
        rng = np.random.default_rng([int(seed), 2])  # a stream of its own: never a training or test scene
        return [generate_scene(rng, int(data["height"]), int(data["width"]))[0] for _ in range(n)]

    def render(self, item: Any, result: dict[str, Any], config: dict[str, Any]) -> np.ndarray:
        labels = decode_mask(result)
        return draw_overlay(to_rgb(item), labels, result["classes"], result["area"])

    def demo(self, ctx) -> None:
        from apptool_scene_labeling.demo import build_demo

        build_demo(ctx)


def with_normalization(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with the encoder's input mean/std in ``model`` (kept if set): stored in the bundle, used by the graph."""
    fill_normalization(config["model"], config["model"]["backbone"], config["model"].get("pretrained"))
    return config


def decode_mask(result: dict[str, Any]) -> np.ndarray:
    """The HxW label map of a predict result."""
    data = np.frombuffer(base64.b64decode(result["mask_png_base64"]), np.uint8)
    return cv2.imdecode(data, cv2.IMREAD_UNCHANGED)


def _to_input(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """One image as the graph's input: resized to (h, w), CHW float32 RGB in 0..255."""
    h, w = size
    interpolation = cv2.INTER_AREA if h * w < image.shape[0] * image.shape[1] else cv2.INTER_LINEAR
    return np.ascontiguousarray(cv2.resize(image, (w, h), interpolation=interpolation).transpose(2, 0, 1), np.float32)


def segment(runner, images: Sequence[np.ndarray], config: dict[str, Any]) -> list[np.ndarray]:
    """Label maps (HxW uint8, each at its image's size) for RGB images; same-size images share a batch.

    Logits are resized to the image bilinearly before the arg-max, so boundaries
    stay smooth on images larger than the model's input.
    """
    long_side = int(config["data"]["long_side"])
    groups: dict[tuple[int, int], list[int]] = {}
    for index, image in enumerate(images):
        groups.setdefault(fit_size(image.shape[0], image.shape[1], long_side), []).append(index)
    out: list[np.ndarray | None] = [None] * len(images)
    for size, members in groups.items():
        feeds = {"image": np.stack([_to_input(images[i], size) for i in members])}
        logits = runner.run("model", feeds)["logits"]
        for i, scores_ in zip(members, logits):
            h, w = images[i].shape[:2]
            if (h, w) != size:
                scores_ = cv2.resize(np.ascontiguousarray(scores_.transpose(1, 2, 0)), (w, h), interpolation=cv2.INTER_LINEAR)
                scores_ = scores_.reshape(h, w, -1).transpose(2, 0, 1)
            out[i] = scores_.argmax(0).astype(np.uint8)
    return out
