"""Image classification: the shipped ImageNet classifier names real photos; fine-tuning from ImageNet beats random init."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from apptool.errors import ConfigError
from apptool.plugins import get_plugins


@pytest.fixture(scope="module")
def task():
    return get_plugins().task("image_classification")


@pytest.fixture(scope="module")
def imagenet_bundle(task, tmp_path_factory):
    from apptool.engine import train

    return train(task, task.config("imagenet"), tmp_path_factory.mktemp("imagenet"), progress=False)


def test_imagenet_preset_bundles_the_shipped_classifier_untrained(imagenet_bundle):
    from apptool.bundle import load_state, read_config, read_metrics
    from apptool.imagenet import imagenet_class_names, imagenet_weights

    config, metrics = read_config(imagenet_bundle), read_metrics(imagenet_bundle)
    assert config["labels"] == imagenet_class_names() and config["input"]["size"] == 224
    assert metrics["training"]["epochs_run"] == 0 and metrics["training"]["train_samples"] == 0
    bundle, _ = load_state(Path(imagenet_bundle) / "weights.safetensors")
    shipped, _ = load_state(imagenet_weights("efficientnet_lite0"))
    assert np.array_equal(bundle["classifier.weight"].numpy(), shipped["classifier.weight"].numpy())
    assert np.array_equal(bundle["neck.0.weight"].numpy(), shipped["conv_head.weight"].numpy())
    assert np.array_equal(bundle["encoder.conv_stem.weight"].numpy(), shipped["conv_stem.weight"].numpy())
    assert metrics["export"]["parity_max_abs_diff"]["model"] <= 1e-4
    assert metrics["test"]["baseline_hog_logreg"] is None and "no training split" in metrics["test"]["baseline"]


def test_predict_names_real_photos(imagenet_bundle):
    from skimage import data

    from apptool.runtime import Predictor

    results = Predictor(imagenet_bundle).predict([data.chelsea(), data.coffee()])
    assert [(r["index"], r["label"]) for r in results] == [(285, "Egyptian cat"), (967, "espresso")]
    assert len(results[0]["top5"]) == 5 and 0 < results[0]["probability"] <= 1


def test_imagenet_preset_refuses_data_and_other_weights(task, tmp_path):
    with pytest.raises(ConfigError, match="--preset imagenet is the shipped ImageNet-1k classifier"):
        task.load_data(task.config("imagenet"), tmp_path)
    with pytest.raises(ConfigError, match="needs the ImageNet weights"):
        task.load_data(task.config("imagenet", {"model": {"pretrained": "none"}}), None)


def accuracy_after_fine_tuning(task, folder: Path, pretrained, out: Path) -> float:
    from apptool.engine.trainer import Trainer
    from apptool.onnx_export import TorchRunner

    overrides = {
        "model": {"pretrained": pretrained},
        "data": {"size": 64},
        "train": {"epochs": 5, "batch_size": 8, "lr": 3e-3, "val_fraction": 0},  # 30 steps, both arms alike
    }
    config = task.config("tiny", overrides)
    splits = task.load_data(config, folder)
    config = {**config, **splits.info}
    model, _ = Trainer(task, config, out, progress=False).fit(task.build_model(config), splits.train)
    return task.evaluate(TorchRunner(task.graphs(model, config)), splits.test, config)["accuracy"]


def test_fine_tuning_from_imagenet_beats_random_init(task, tmp_path):
    from apptool_image_classification.data import write_image_folder

    folder = write_image_folder(tmp_path / "data", per_class_train=6, per_class_test=5, size=64, seed=0)
    imagenet = accuracy_after_fine_tuning(task, folder, "imagenet", tmp_path / "imagenet")
    random = accuracy_after_fine_tuning(task, folder, "none", tmp_path / "random")
    # measured: 0.40 from ImageNet, 0.15 from random init (chance 0.125) on the 40 held-out images
    assert imagenet >= random + 0.15, (imagenet, random)


def test_the_hub_gets_the_ready_made_classifier(tmp_path):
    from apptool.background import BackgroundTrainer

    trainer = BackgroundTrainer(tmp_path, ["image_classification", "not_installed"], preset="tiny")
    assert {name: job.preset for name, job in trainer.jobs.items()} == {
        "image_classification": "imagenet",
        "not_installed": "tiny",
    }
    assert trainer.jobs["image_classification"].command("python")[4:8] == [
        "image_classification",
        "--preset",
        "imagenet",
        "--out",
    ]
