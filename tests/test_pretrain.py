"""apptool pretrain: the source task's determinism, its held-out split, and a tiny run to a usable backbone bundle."""

from __future__ import annotations

import json

import numpy as np
import pytest

from apptool import pretrain as pt
from apptool.errors import ConfigError


def test_the_source_task_has_many_distinct_classes():
    names = pt.class_names()
    assert len(names) == len(set(names)) == len(pt.SHAPES) + len(pt.TEXTURES) + len(pt.PHOTOS) + 1 + 10
    assert len(names) >= 40


def test_samples_are_deterministic_by_seed_epoch_and_index():
    def sample(seed: int, epoch: int, index: int) -> tuple[np.ndarray, int]:
        images = pt.SourceImages(seed, 100, 32)
        images.set_epoch(epoch)
        return images[index]

    a, label = sample(0, 3, 6)
    b, again = sample(0, 3, 6)
    assert np.array_equal(a, b) and label == again == 6
    assert a.shape == (3, 32, 32) and a.dtype == np.float32
    assert not np.array_equal(sample(0, 4, 6)[0], a)  # every epoch draws new images
    assert not np.array_equal(sample(1, 3, 6)[0], a)
    assert np.bincount(pt.SourceImages(0, 3 * len(pt.class_names()), 32).labels).tolist() == [3] * len(pt.class_names())


@pytest.mark.parametrize("test", [False, True])
def test_every_class_renders_a_valid_image(test):
    rng = np.random.default_rng(0)
    for label in range(len(pt.class_names())):
        image = pt.source_sample(rng, label, 24, test=test)
        assert image.shape == (24, 24, 3) and image.dtype == np.float32
        assert np.isfinite(image).all() and image.min() >= 0 and image.max() <= 1


def test_held_out_photo_crops_and_digits_are_never_trained_on(monkeypatch):
    photo = np.zeros((100, 200, 3), np.uint8)
    photo[:, int(200 * (1 - pt.PHOTO_TEST_STRIP)) :] = 255  # the held-out strip is white, the rest black
    monkeypatch.setattr(pt, "_photos", lambda: [photo] * len(pt.PHOTOS))
    rng = np.random.default_rng(0)
    for _ in range(30):
        assert pt._photo_crop(rng, 16, 0, test=False).max() == 0
        assert pt._photo_crop(rng, 16, 0, test=True).min() == 1
    images = np.zeros((100, 8, 8), np.float32)
    images[80:] = 1  # held-out writers are blank-on-white, training ones all zero
    monkeypatch.setattr(pt, "_digits", lambda: (images, np.arange(100) % 10))
    monkeypatch.setattr(pt, "_background", lambda rng, size: np.zeros((size, size, 3), np.float32))
    assert all(pt._digit(rng, 16, 3, test=False).max() == 0 for _ in range(10))
    assert all(pt._digit(rng, 16, 3, test=True).max() > 0 for _ in range(10))


def test_unknown_preset_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="no preset 'huge'"):
        pt.pretrain("resnet10t", tmp_path, preset="huge")


def test_tiny_pretrain_writes_a_backbone_bundle_that_create_encoder_loads(tmp_path):
    import torch

    from apptool.backbones import create_encoder
    from apptool.bundle import load_state

    out = pt.pretrain("resnet10t", tmp_path / "backbone", preset="tiny", seed=0)
    assert {p.name for p in out.iterdir()} >= {"config.json", "weights.safetensors", "metrics.json", "card.md"}
    config = json.loads((out / "config.json").read_text())
    assert config["kind"] == "backbone" and config["backbone"] == "resnet10t"
    assert config["num_classes"] == len(pt.class_names())
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= metrics["source_test_accuracy"] <= 1.0 and metrics["test_images"] == 2 * len(pt.class_names())
    card = (out / "card.md").read_text()
    assert "skimage" in card or "scikit-image" in card
    assert f"{metrics['source_test_accuracy']:.3f}" in card
    saved, _ = load_state(out / "weights.safetensors")
    encoder = create_encoder("resnet10t", out)
    assert encoder.pretrained_source == str(out / "weights.safetensors")
    for key, value in encoder.state_dict().items():
        if not key.endswith("num_batches_tracked"):
            assert torch.equal(value, saved[key]), key
    with pytest.raises(ConfigError, match="holds a 'resnet10t' backbone"):
        create_encoder("mobilenetv3_small_100", out)
    assert metrics["steps"] == 12 and len(metrics["history"]) == 2  # the core trainer's epochs: 2 x 6 steps
    assert not (out / "checkpoint.safetensors").exists()
    again = pt.pretrain("resnet10t", tmp_path / "backbone", preset="tiny", seed=0)  # a backbone bundle may be replaced
    for key, value in load_state(again / "weights.safetensors")[0].items():
        assert torch.equal(value, saved[key]), key  # seeded: the same weights
