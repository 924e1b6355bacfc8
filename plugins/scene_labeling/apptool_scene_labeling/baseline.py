"""The classical baseline beside the network: a random forest that labels each pixel on its own.

Its features are what pre-deep scene parsers started from: the pixel's colour (RGB and HSV), its
position in the image (row and column as fractions), and the mean colour and grey-level contrast
of the windows around it at two sizes (a little texture and context). It is fitted on
``PIXELS_PER_IMAGE`` labelled pixels of each of up to ``TRAIN_IMAGES`` training images (a fixed-seed
sample) and labels the test images at the size the network sees them (``fit_size``), the labels
then resized to the image as the network's are. A network that does not clearly beat it has learned
little beyond colour and position.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from apptool_scene_labeling.data import fit_size
from apptool_scene_labeling.metrics import confusion, scores
from apptool_scene_labeling.scenes import IGNORE

TRAIN_IMAGES = 300
PIXELS_PER_IMAGE = 200
WINDOWS = (5, 15)  # pixels, at the network's input size
SEED = 0
NAME = "random forest on per-pixel colour, position and local colour/contrast"


def pixel_features(image: np.ndarray, long_side: int) -> np.ndarray:
    """(h, w, 18) float32 features of an RGB image resized to the network's input size for it."""
    h, w = fit_size(image.shape[0], image.shape[1], long_side)
    small = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
    rgb = small.astype(np.float32) / 255.0
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float32)
    features = [rgb, cv2.cvtColor(small, cv2.COLOR_RGB2HSV).astype(np.float32) / 255.0]
    features += [(rows / max(h - 1, 1))[..., None], (cols / max(w - 1, 1))[..., None]]
    grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    for size in WINDOWS:
        mean = cv2.blur(grey, (size, size))
        contrast = np.sqrt(np.maximum(cv2.blur(grey * grey, (size, size)) - mean * mean, 0.0))
        features += [cv2.blur(rgb, (size, size)), mean[..., None], contrast[..., None]]
    return np.concatenate(features, axis=-1)


def fit_pixel_classifier(pairs: Sequence[tuple[np.ndarray, np.ndarray, str]], long_side: int):
    """The forest, fitted on a fixed-seed sample of labelled training pixels; None if the sample has none."""
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(SEED)
    inputs, labels = [], []
    for index in rng.permutation(len(pairs))[:TRAIN_IMAGES]:
        image, mask, _ = pairs[int(index)]
        features = pixel_features(image, long_side)
        h, w = features.shape[:2]
        small_mask = cv2.resize(mask, (w, h), interpolation=cv2.INTER_NEAREST).ravel()
        labelled = np.flatnonzero(small_mask != IGNORE)
        chosen = rng.choice(labelled, min(PIXELS_PER_IMAGE, len(labelled)), replace=False)
        inputs.append(features.reshape(h * w, -1)[chosen])
        labels.append(small_mask[chosen])
    if not sum(map(len, labels)):
        return None
    forest = RandomForestClassifier(n_estimators=50, max_depth=16, min_samples_leaf=5, n_jobs=1, random_state=SEED)
    return forest.fit(np.concatenate(inputs), np.concatenate(labels))


def label_image(forest, image: np.ndarray, long_side: int) -> np.ndarray:
    """The forest's HxW uint8 label map of an RGB image, at the image's own size."""
    features = pixel_features(image, long_side)
    h, w = features.shape[:2]
    labels = forest.predict(features.reshape(h * w, -1)).reshape(h, w).astype(np.uint8)
    return cv2.resize(labels, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_NEAREST)


def unavailable(train: Sequence[Any] | None) -> str | None:
    """Why the baseline cannot run here, or None when it can."""
    if not train:
        return "none: no training split to fit the baseline on"
    try:
        import sklearn  # noqa: F401
    except ImportError:
        return "none: scikit-learn is not installed (pip install 'apptool-scene-labeling[baseline]')"
    return None


def baseline_scores(
    train: Sequence[tuple[np.ndarray, np.ndarray, str]] | None,
    test: Sequence[tuple[np.ndarray, np.ndarray, str]],
    classes: Sequence[str],
    long_side: int,
) -> dict[str, Any]:
    """``baseline_miou``, ``baseline_pixel_acc``, ``baseline_class_acc`` on ``test`` by the network's metric code."""
    reason = unavailable(train)
    forest = fit_pixel_classifier(train, long_side) if reason is None else None
    if forest is None:
        why = reason or "none: no labelled training pixel"
        return {"baseline_miou": None, "baseline_pixel_acc": None, "baseline_class_acc": None, "baseline": why}
    matrix = np.zeros((len(classes), len(classes)), np.int64)
    for image, mask, _ in test:
        matrix += confusion(mask, label_image(forest, image, long_side), len(classes))
    result = scores(matrix, classes)
    return {
        "baseline_miou": result["miou"],
        "baseline_pixel_acc": result["pixel_acc"],
        "baseline_class_acc": result["class_acc"],
        "baseline_per_class_iou": result["per_class_iou"],
        "baseline": NAME,
    }
