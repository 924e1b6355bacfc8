"""Accuracy, macro-F1 and top-5 (scikit-learn's definitions), and the classical baseline beside them."""

from __future__ import annotations

from typing import Any

import numpy as np

from apptool_image_classification.preprocess import square_view

BASELINE_SIZE = 64  # HOG is computed on the centre square at this size


def classification_report(truth: np.ndarray, probabilities: np.ndarray, labels: list[str]) -> dict[str, Any]:
    """Top-1 accuracy, macro-F1 over the classes of the test split, top-5 accuracy, per-class F1 (up to 50 classes)."""
    from sklearn.metrics import f1_score, top_k_accuracy_score

    predicted = probabilities.argmax(1)
    present = sorted(set(truth.tolist()))
    result: dict[str, Any] = {
        "accuracy": float(np.mean(predicted == truth)),
        "macro_f1": float(f1_score(truth, predicted, labels=present, average="macro", zero_division=0)),
        "top5": float(top_k_accuracy_score(truth, probabilities, k=min(5, len(labels)), labels=np.arange(len(labels)))),
        "n_test": int(len(truth)),
    }
    if len(present) <= 50:
        scores = f1_score(truth, predicted, labels=present, average=None, zero_division=0)
        result["per_class_f1"] = {labels[k]: float(s) for k, s in zip(present, scores)}
    return result


def hog_features(image: np.ndarray) -> np.ndarray:
    """HOG of the grey centre square plus a coarse colour histogram: the classic pre-deep image descriptor."""
    from skimage.feature import hog

    view = square_view(image, BASELINE_SIZE)
    grey = view.mean(2) / 255.0
    shape = hog(grey, orientations=9, pixels_per_cell=(8, 8), cells_per_block=(2, 2), feature_vector=True)
    bins = (view // 64).reshape(-1, 3).astype(np.int64)
    colour = np.bincount(bins[:, 0] * 16 + bins[:, 1] * 4 + bins[:, 2], minlength=64) / len(bins)
    return np.concatenate([shape, colour]).astype(np.float32)


def hog_baseline(reference, images: list[np.ndarray], truth: np.ndarray, lookup: dict[str, int]) -> dict[str, Any]:
    """Logistic regression on HOG + colour features, fitted on the training split, scored on the same test images."""
    if reference is None or len(reference) == 0:
        return {"baseline_hog_logreg": None, "baseline": "none: this model has no training split to fit a baseline on"}
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train_x = np.stack([hog_features(reference.image(i)) for i in range(len(reference))])
    train_y = np.array([lookup[reference.classes[y]] for y in reference.labels])
    if len(set(train_y.tolist())) < 2:
        return {"baseline_hog_logreg": None, "baseline": "none: the training split has a single class"}
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=0.1))
    model.fit(train_x, train_y)
    predicted = model.predict(np.stack([hog_features(image) for image in images]))
    return {"baseline_hog_logreg": float(np.mean(predicted == truth)), "baseline": "HOG + colour histogram, logistic regression"}
