"""Scene labeling's classical baseline: a per-pixel random forest, scored by the network's metric code in `eval --json`."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from apptool_scene_labeling.baseline import baseline_scores, pixel_features

from apptool.evaluation import evaluate_bundle

CLASSES = ("sky", "grass", "object")


@pytest.fixture(scope="module")
def task():
    from apptool.plugins import get_plugins

    return get_plugins().task("scene_labeling")


def _picture(rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, np.ndarray, str]:
    """Blue sky above green grass (horizon anywhere), a red box somewhere; an ignored border row at the top."""
    horizon, top, left = rng.integers(height // 4, 3 * height // 4), rng.integers(0, height - 8), rng.integers(0, width - 8)
    image = np.zeros((height, width, 3), np.uint8)
    mask = np.zeros((height, width), np.uint8)
    image[:horizon], image[horizon:] = (90, 140, 230), (60, 170, 50)
    mask[horizon:] = 1
    image[top : top + 8, left : left + 8], mask[top : top + 8, left : left + 8] = (210, 30, 30), 2
    image = np.clip(image + rng.normal(0, 6, image.shape), 0, 255).astype(np.uint8)
    mask[0] = 255
    return image, mask, f"picture-{horizon}"


def test_features_are_colour_and_position_at_the_networks_input_size():
    image = np.random.default_rng(0).integers(0, 256, (90, 200, 3), dtype=np.uint8)
    features = pixel_features(image, 64)
    assert features.shape == (32, 64, 18)  # fit_size: long side 64, aspect kept, multiples of 32
    rows, cols = features[..., 6], features[..., 7]
    assert rows[0, 0] == cols[0, 0] == 0.0 and rows[-1, -1] == cols[-1, -1] == 1.0


def test_forest_labels_pictures_that_colour_separates_and_is_scored_like_the_network():
    rng = np.random.default_rng(1)
    train = [_picture(rng, 48, 64) for _ in range(20)]
    test = [_picture(rng, 60, 80) for _ in range(4)]  # another size: labels come back at the image's own size
    result = baseline_scores(train, test, CLASSES, 64)
    assert result["baseline"].startswith("random forest")
    assert result["baseline_pixel_acc"] > 0.95 and result["baseline_miou"] > 0.8
    assert result["baseline_miou"] <= result["baseline_class_acc"] + 1e-9


def test_without_training_pairs_the_baseline_says_why():
    image, mask, name = _picture(np.random.default_rng(2), 32, 32)
    result = baseline_scores([], [(image, mask, name)], CLASSES, 32)
    assert result["baseline_miou"] is None and "no training split" in result["baseline"]


def test_without_scikit_learn_the_baseline_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)  # what `import sklearn` meets when it is not installed
    pair = _picture(np.random.default_rng(3), 32, 32)
    result = baseline_scores([pair], [pair], CLASSES, 32)
    assert result["baseline_miou"] is None and "apptool-scene-labeling[baseline]" in result["baseline"]


def test_eval_reports_the_baseline_beside_the_network(task, shared_bundle):
    metrics = evaluate_bundle(shared_bundle(task))
    for key in ("miou", "pixel_acc", "class_acc"):
        assert 0.0 <= metrics[f"baseline_{key}"] <= 1.0
    assert metrics["baseline"].startswith("random forest")
