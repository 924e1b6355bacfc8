"""The dbn_hashing task: a DBN maps images to short binary codes; images are retrieved by Hamming distance.

Training has two stages.  The greedy one (RBMs by contrastive divergence,
stacked) is ``prepare``: the core trainer calls it with its own training and
validation parts before it fits, and its log goes into metrics.json under
``prepare``.  The trainer then fine-tunes the unrolled deep autoencoder with
``loss`` (reconstruction through noisy code units).

This module imports no torch: predict/evaluate/demo use numpy and a Runner.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from apptool.errors import DataError
from apptool.imagenet import fill_normalization
from apptool.images import IMAGE_SUFFIXES
from apptool.task import Graph, Splits, Task, run_in_batches
from apptool_dbn_hashing import data as datasets
from apptool_dbn_hashing.baselines import fit_itq, fit_lsh
from apptool_dbn_hashing.demo import build_demo, code_picture
from apptool_dbn_hashing.index import INDEX_FILE, HammingIndex, pack_bits
from apptool_dbn_hashing.metrics import retrieval_metrics
from apptool_dbn_hashing.settings import RBM_DEFAULTS

K, RADIUS = 10, 2
BATCH = 256


class DbnHashingTask(Task):
    name = "dbn_hashing"
    title = "DBN semantic hashing"
    description = (
        "Restricted Boltzmann machines trained by contrastive divergence, stacked greedily into a deep "
        "belief network and fine-tuned as an autoencoder whose noisy code layer becomes binary; images are "
        "retrieved by Hamming distance (Hinton & Salakhutdinov 2006; Salakhutdinov & Hinton 2009; "
        "Torralba, Fergus & Weiss 2008)."
    )
    metrics = ("map", "precision_at_10", "precision_r2")
    primary_metric = "map"
    greater_is_better = True
    input_kind = "image"
    input_suffixes = frozenset(IMAGE_SUFFIXES)
    presets = {
        "tiny": {"model": {"hidden": [32], "bits": 16, "rbm": {"steps": 0, "epochs": 2}}, "train": {"steps": 0, "epochs": 2}},
        "quick": {},
        "full": {
            "model": {"hidden": [512, 256], "rbm": {"steps": 2000, "epochs": 50}},
            "train": {"steps": 1260, "epochs": 60, "lr": 5e-4},
        },
    }

    def default_config(self) -> dict[str, Any]:
        return {
            "model": {
                "features": "pixels",
                "backbone": "resnet10t",
                "pretrained": None,
                "backbone_size": 64,
                "mean": None,  # backbone input normalisation; None: what its weights expect (apptool.imagenet)
                "std": None,
                "hidden": [256, 128],
                "bits": 32,
                "visible": "auto",
                "head": "autoencoder",
                "code_noise": 8.0,
                "pretrain": True,
                "rbm": dict(RBM_DEFAULTS),
            },
            "data": {"source": "digits", "image_size": None, "channels": None, "test_fraction": 0.2, "per_class": 300},
            "train": {
                "steps": 840,  # optimizer steps, whatever the data: 40 epochs of the 1,437 digits
                "epochs": 40,
                "batch_size": 64,
                "optimizer": "adamw",
                "lr": 1e-3,
                "weight_decay": 0.0,
                "schedule": "cosine",
                "val_fraction": 0.1,
                "finetune": "frozen",
            },
        }

    def config(self, preset: str = "quick", overrides: dict | None = None) -> dict[str, Any]:
        """As the base class; with ``model.features=backbone``, the encoder's input mean/std fill ``model.mean``/``std``."""
        config = super().config(preset, overrides)
        model = config["model"]
        if model["features"] == "backbone":
            fill_normalization(model, model["backbone"], model.get("pretrained"))
        return config

    # -- torch side --------------------------------------------------------------
    def load_data(self, config: dict[str, Any], data_dir: Path | None) -> Splits:
        recorded = config.get("data_dir")
        if data_dir is None and config["data"].get("source") == "folder" and recorded and Path(recorded).is_dir():
            data_dir = Path(recorded)  # a bundle trained on a folder is evaluated on that folder unless told otherwise
        data = datasets.resolve_data(config["data"], data_dir)
        train, test = datasets.load_splits(data, int(config["seed"]), data_dir)
        info = {
            "data": data,
            "classes": train.classes,
            "input_shape": [data["channels"], data["image_size"], data["image_size"]],
            # a bundle keeps its training split's answer; only a new run looks at the images
            "invert_pixels": config["invert_pixels"] if "invert_pixels" in config else datasets.light_background(train.images),
        }
        return Splits(train, test, info)

    def build_model(self, config: dict[str, Any]):
        import torch

        from apptool_dbn_hashing.model import build

        with torch.random.fork_rng():
            torch.manual_seed(int(config["seed"]))
            return build(config, *self._shape_and_classes(config))

    def prepare(self, model, train, val, config: dict[str, Any]) -> dict[str, Any] | None:
        """The greedy stage on the trainer's own parts: feature standardisation, then (``model.pretrain``) the RBM stack."""
        from apptool_dbn_hashing.pretrain import pretrain

        return pretrain(model, train, val, config)

    def _shape_and_classes(self, config: dict[str, Any]) -> tuple[tuple[int, int, int], int]:
        """Input shape and class count: from what load_data recorded, else from the built-in source's definition."""
        if "input_shape" in config and "classes" in config:
            return tuple(config["input_shape"]), len(config["classes"])
        data = datasets.resolve_data(config["data"], None)
        classes = 10 if data["source"] == "digits" else len(datasets.SHAPE_CLASSES)
        return (data["channels"], data["image_size"], data["image_size"]), classes

    def loss(self, model, batch):
        import torch.nn.functional as F

        images, labels = batch
        visible, _, output = model(images)
        if model.head_kind != "autoencoder":
            return F.cross_entropy(output, labels)
        if model.visible_kind == "bernoulli":
            return F.binary_cross_entropy_with_logits(output, visible.detach())
        return F.mse_loss(output, visible.detach())

    def graphs(self, model, config: dict[str, Any]) -> list[Graph]:
        import torch

        from apptool_dbn_hashing.model import CodeGraph

        graph = CodeGraph(model.eval())
        candidates = self._images(self.sample_inputs(config, 24, seed=7), config)
        with torch.no_grad():
            margin = graph(torch.from_numpy(datasets.to_model_input(candidates)))[1].abs().amin(1).numpy()
        # the parity examples are images whose code logits all sit clear of the threshold at 0
        best = candidates[np.argsort(-margin, kind="stable")[:4]]
        outputs = ("bits", "logits", "features") + (("class_logits",) if model.head_kind != "autoencoder" else ())
        return [
            Graph(
                name="model",
                module=graph,
                input_names=("image",),
                output_names=outputs,
                dynamic_axes={"image": {0: "batch"}, **{name: {0: "batch"} for name in outputs}},
                examples=[{"image": datasets.to_model_input(best[:1])}, {"image": datasets.to_model_input(best[1:4])}],
                # bits differ by 0 or 1, so any tolerance below 1 demands identical bits; 1e-4 bounds the float outputs
                atol=1e-4,
            )
        ]

    # -- numpy side ------------------------------------------------------------------
    def _images(self, items: Sequence[Any], config: dict[str, Any]) -> np.ndarray:
        data = config["data"]
        return np.stack(
            [datasets.prepare_image(item, data["image_size"], data["channels"], f"input {i}") for i, item in enumerate(items)]
        )

    def encode(self, runner, images: np.ndarray) -> dict[str, np.ndarray]:
        """Graph outputs for uint8 NHWC images, run in batches."""
        return run_in_batches(runner, "model", images, lambda part: {"image": datasets.to_model_input(part)}, BATCH)

    def predict(self, runner, items: Sequence[Any], config: dict[str, Any]) -> list[dict[str, Any]]:
        if not items:
            return []
        out = self.encode(runner, self._images(items, config))
        packed = pack_bits(out["bits"])
        digits = ((out["bits"] > 0.5) + ord("0")).astype(np.uint8)  # each row's bits as ASCII "0"/"1", in one array step
        min_abs_logit = np.abs(out["logits"]).min(1)
        classes = out["class_logits"].argmax(1) if "class_logits" in out else None
        results = []
        for i in range(len(items)):
            row = {
                "code": packed[i].tobytes().hex(),
                "bits": digits[i].tobytes().decode("ascii"),
                "min_abs_logit": float(min_abs_logit[i]),
            }
            if classes is not None:
                row["class"] = config["classes"][int(classes[i])]
            results.append(row)
        return results

    def evaluate(self, runner, dataset, config: dict[str, Any], out_dir: Path | None = None) -> dict[str, Any]:
        database = getattr(dataset, "database", None)
        if database is None or not len(dataset):
            raise DataError("hashing evaluation needs the query split with its database (load_data's test split)")
        bits = int(config["model"]["bits"])
        queries, base = self.encode(runner, dataset.images), self.encode(runner, database.images)
        result: dict[str, Any] = {"bits": bits, "queries": len(dataset), "database": len(database)}
        result.update(
            retrieval_metrics(
                pack_bits(queries["bits"]), dataset.labels, pack_bits(base["bits"]), database.labels, bits, K, RADIUS
            )
        )
        result["borderline_bits"] = float((np.abs(queries["logits"]) < 1e-3).mean())
        for name, fit in (("lsh", fit_lsh), ("itq", fit_itq)):
            hasher = fit(base["features"].astype(np.float64), bits, int(config["seed"]))
            if hasher is None:  # ITQ cannot make more bits than the features have dimensions
                result.update({f"{name}_{key}": None for key in ("map", "precision_at_10", "precision_r2", "r2_found")})
                continue
            scores = retrieval_metrics(
                hasher.encode(queries["features"]),
                dataset.labels,
                hasher.encode(base["features"]),
                database.labels,
                bits,
                K,
                RADIUS,
            )
            result.update({f"{name}_{key}": value for key, value in scores.items()})
        if "class_logits" in queries:
            accuracy = float((queries["class_logits"].argmax(1) == dataset.labels).mean())
            result.update({"accuracy": accuracy, "error_rate": 1.0 - accuracy})
        if out_dir is not None:
            self._write_index(Path(out_dir), config, base["bits"], database)
        return result

    def _write_index(self, out_dir: Path, config: dict[str, Any], bits: np.ndarray, database) -> None:
        """The database index the demo searches."""
        index = HammingIndex(int(config["model"]["bits"]))
        index.add(pack_bits(bits), database.labels, database.names, database.images)
        index.save(
            out_dir / INDEX_FILE,
            {"classes": database.classes, "image_size": config["data"]["image_size"], "channels": config["data"]["channels"]},
        )

    def sample_inputs(self, config: dict[str, Any], n: int, seed: int = 0) -> list[np.ndarray]:
        data = config.get("data", {})
        if data.get("source", "digits") == "digits":
            images, _ = datasets.digit_images()
            chosen = np.random.default_rng(seed).permutation(len(images))[:n]
            return [np.repeat(images[i], 3, axis=2) for i in chosen]
        size = int(data.get("image_size") or datasets.DEFAULT_SIZE["shapes"])
        shapes = datasets.shapes(seed, size, -(-n // len(datasets.SHAPE_CLASSES)))
        return [np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image for image in shapes.images[:n]]

    def render(self, item: Any, result: dict[str, Any], config: dict[str, Any]) -> np.ndarray:
        return code_picture(item, result["bits"])

    def demo(self, ctx) -> None:
        build_demo(ctx)
