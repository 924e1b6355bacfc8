"""Foreign data for the image tasks: a folder in each task's public layout, rendered with settings its generator
never defaults to (other image sizes and aspect ratios, class lists and balances, camera, light, compression)
or cut from real photographs (image classification's textures),
for ``foreign_data.py``: train with the default preset as a user would and print the model beside its baseline.

``TASKS`` has ``foreign_data.TASKS``'s form: task -> (renderer, [(label, model metric, baseline metric)],
baseline name, what the split allows at best or None); ``foreign_data.py`` includes them::

    python benchmarks/foreign_data.py --task scene_labeling --seed 1
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np


def _jpeg(path: Path, rgb: np.ndarray, quality: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), rgb[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])


# -- scene labeling: images/masks folders ------------------------------------------------------------
#: The foreign label set: seven classes in an order of its own, tree and grass merged into vegetation.
SCENE_CLASSES = ("vegetation", "sky", "building", "road", "water", "terrain", "object")
#: Built-in class index (sky, tree, road, grass, water, building, mountain, foreground) -> foreign index.
SCENE_MERGE = np.array([1, 0, 3, 0, 4, 2, 5, 6], np.uint8)
#: Frame shapes (height, width) of the foreign camera: none of them the generator's square 128.
SCENE_SHAPES = ((120, 200), (150, 112), (96, 176), (180, 240))


def render_scene_labeling(folder: Path, seed: int, n_train: int = 360, n_test: int = 90) -> str:
    """Outdoor scenes at four other frame shapes, merged classes, a warm low-contrast camera, JPEG, ignored class edges."""
    from apptool_scene_labeling.scenes import generate_scene

    rng = np.random.default_rng([seed, 18, 1])
    (folder / "classes.txt").parent.mkdir(parents=True, exist_ok=True)
    (folder / "classes.txt").write_text("\n".join(SCENE_CLASSES) + "\n")
    for split, count in (("train", n_train), ("test", n_test)):
        for index in range(count):
            height, width = SCENE_SHAPES[int(rng.integers(len(SCENE_SHAPES)))]
            image, mask = generate_scene(rng, height, width)
            mask = SCENE_MERGE[mask]
            edges = cv2.morphologyEx(mask, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
            mask[edges] = 255  # the annotator's unsure band along every class boundary, as in VOC
            warm = image.astype(np.float32) * rng.uniform(0.7, 0.9) + rng.uniform(25, 45)
            warm *= np.array([1.08, 1.0, 0.85], np.float32)
            image = cv2.GaussianBlur(np.clip(warm, 0, 255).astype(np.uint8), (3, 3), 0.8)
            _jpeg(folder / split / "images" / f"{split}_{index:04d}.jpg", image, 80)
            (folder / split / "masks").mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(folder / split / "masks" / f"{split}_{index:04d}.png"), mask)
    shapes = ", ".join(f"{w}x{h}" for h, w in SCENE_SHAPES)
    return (
        f"scenes seed {seed}: {n_train} train / {n_test} test, frames {shapes}, {len(SCENE_CLASSES)} merged classes, "
        "warm low-contrast JPEG, 1-px ignored band on class edges"
    )


# -- captioning: COCO captions -------------------------------------------------------------------------
def _as_written(caption: str, rng: np.random.Generator) -> str:
    """A caption as people type it: capitalised, often with a full stop, now and then a double space."""
    text = caption[0].upper() + caption[1:]
    if rng.random() < 0.7:
        text += "."
    if rng.random() < 0.2:
        text = text.replace(" ", "  ", 1)
    return text


def render_captioning(folder: Path, seed: int, n_train: int = 1500, n_test: int = 300) -> str:
    """COCO layout: 96-px JPEG scenes of only two objects, two to five captions each, as people type them."""
    from apptool_captioning.scenes import make_scenes

    rng = np.random.default_rng([seed, 18, 2])
    for split, count, stream in (("train", n_train, 0), ("test", n_test, 1)):
        images, annotations = [], []
        for index, scene in enumerate(make_scenes(count, (seed, 18, stream), size=96, max_objects=2, n_captions=5)):
            name = f"{split}2026/{split}_{index:05d}.jpg"
            _jpeg(folder / "images" / name, scene.image, int(rng.integers(60, 90)))
            images.append({"id": 100000 * (stream + 1) + index, "file_name": name, "height": 96, "width": 96})
            for caption in scene.captions[: int(rng.integers(2, 6))]:
                annotations.append({"id": len(annotations), "image_id": images[-1]["id"], "caption": _as_written(caption, rng)})
        document = {"info": {"description": f"foreign captions, seed {seed}"}, "images": images, "annotations": annotations}
        (folder / f"captions_{split}.json").write_text(json.dumps(document))
    return f"COCO layout seed {seed}: {n_train} train / {n_test} test 96-px JPEGs, two objects, 2-5 typed captions each"


def caption_agreement(folder: Path) -> str:
    """BLEU-4 of one reference against the others of its image: how far people agree, the ceiling a model nears."""
    from apptool_captioning.metrics import corpus_bleu
    from apptool_captioning.readers import read_coco
    from apptool_captioning.text import tokenize

    references = [[tokenize(c) for c in captions] for _, captions in read_coco(folder, "test")]
    several = [refs for refs in references if len(refs) > 1]
    score = corpus_bleu([refs[0] for refs in several], [refs[1:] for refs in several])["bleu4"]
    return f"one reference against the others of its image (leave-one-out): BLEU-4 {score:.3f} on {len(several)} images"


# -- steering: Udacity driving_log.csv -----------------------------------------------------------------
def render_steering(folder: Path, seed: int, train_tracks: int = 6, test_tracks: int = 2, frames: int = 160) -> str:
    """A recorded drive, not random poses: a weaving car on sharper tracks, a wider lower dash camera, dusk light."""
    from apptool_steering import road, vehicle

    camera = road.Camera(height_px=144, width_px=256, hfov_deg=72.0, mount_height=1.25, pitch_deg=3.0)
    rng = np.random.default_rng([seed, 18, 3])
    for split, tracks, stream in (("train", train_tracks, 0), ("test", test_tracks, 1)):
        lines = ["center,left,right,steering,throttle,brake,speed"]
        for t in range(tracks):
            track = road.make_track([seed, 18, stream, t], 600.0, 32.0)
            phase, period, amplitude = rng.uniform(0, 2 * math.pi), rng.uniform(40, 90), rng.uniform(0.2, 0.5)
            for k in range(frames):
                s = 15.0 + k * (track.length - road.VIEW_AHEAD - 30.0) / frames
                offset = amplitude * math.sin(2 * math.pi * s / period + phase)
                yaw = math.atan(amplitude * 2 * math.pi / period * math.cos(2 * math.pi * s / period + phase))
                pose, hint = track.pose(s, offset, yaw), int(round(s / road.DS))
                light = road.Lighting(
                    brightness=float(rng.uniform(0.45, 0.75)), tint=(1.1, 0.95, 0.8), noise=float(rng.uniform(2, 8))
                )
                names = []
                for side, lateral in (("center", 0.0), ("left", 0.8), ("right", -0.8)):
                    image = road.render(track, vehicle.camera_pose(pose, lateral), vehicle.camera_hint(hint), camera, light, rng)
                    names.append(f"IMG/{side}_{t:02d}_{k:04d}.jpg")
                    _jpeg(folder / split / names[-1], image, 85)
                label = float(np.clip(vehicle.expert_command(track, pose, hint), -1, 1))
                lines.append(f"{names[0]}, {names[1]}, {names[2]}, {label:.5f}, 0.4, 0, 12.5")
        (folder / split / "driving_log.csv").write_text("\n".join(lines) + "\n")
    return (
        f"recorded drives seed {seed}: {train_tracks} train / {test_tracks} test tracks x {frames} frames (+ side cameras), "
        f"{camera.width_px}x{camera.height_px} px at {camera.hfov_deg:g} deg, radius >= 32 m, dusk"
    )


# -- DBN hashing: image folder train/<class>, test/<class> ---------------------------------------------
#: Database images per digit class: skewed, unlike the built-in stratified split.
DIGIT_COUNTS = (120, 25, 90, 40, 110, 30, 70, 50, 100, 35)


def render_dbn_hashing(folder: Path, seed: int, per_class_test: int = 12, database_share: float = 1.0) -> str:
    """The real 8x8 digits as 28-px scans: dark ink on textured paper, tilted and shifted, skewed class counts."""
    from apptool_dbn_hashing.data import digit_images

    counts = [max(2, int(round(n * database_share))) for n in DIGIT_COUNTS]
    images, labels = digit_images()
    rng = np.random.default_rng([seed, 18, 4])
    order = rng.permutation(len(labels))
    for digit in range(10):
        mine = order[labels[order] == digit]
        picks = {"test": mine[:per_class_test], "train": mine[per_class_test : per_class_test + counts[digit]]}
        for split, indices in picks.items():
            for index in indices:
                ink = cv2.resize(images[index, :, :, 0], (28, 28), interpolation=cv2.INTER_CUBIC).astype(np.float32) / 255
                turn = cv2.getRotationMatrix2D((14, 14), rng.uniform(-15, 15), rng.uniform(0.8, 1.05))
                turn[:, 2] += rng.uniform(-3, 3, 2)
                ink = np.clip(cv2.warpAffine(ink, turn, (28, 28)), 0, 1)
                paper = rng.uniform(200, 240) + cv2.GaussianBlur(rng.normal(0, 12, (28, 28)), (5, 5), 1.5)
                scan = np.clip(paper * (1 - 0.85 * ink), 0, 255).astype(np.uint8)
                (folder / split / str(digit)).mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(folder / split / str(digit) / f"{index:04d}.png"), scan)
    return (
        f"digits seed {seed}: {sum(counts)} database images ({min(counts)}-{max(counts)} per class) / "
        f"{10 * per_class_test} queries, 28-px dark-on-paper scans, tilted and shifted"
    )


# -- image classification: ImageFolder train/<class>, test/<class> ------------------------------------
#: Real photographs of surfaces shipped with scikit-image, one class each: no shape, digit or colour to go by.
TEXTURES = ("brick", "grass", "gravel", "moon")


def render_image_classification(folder: Path, seed: int, per_class_train: int = 40, per_class_test: int = 30) -> str:
    """Crops of real texture photographs at random scales and sizes, JPEG: training crops from each photo's top half, test crops from its bottom half."""
    from skimage import data

    rng = np.random.default_rng([seed, 18, 5])
    for name in TEXTURES:
        photo = getattr(data, name)()
        half = photo.shape[0] // 2
        for split, count, rows in (("train", per_class_train, photo[:half]), ("test", per_class_test, photo[half:])):
            for index in range(count):
                side = int(rng.integers(48, min(rows.shape[0], 200)))
                top, left = (int(rng.integers(0, limit - side + 1)) for limit in rows.shape[:2])
                crop = rows[top : top + side, left : left + side].astype(np.float32)
                crop = np.rot90(crop, 2) if rng.random() < 0.5 else crop
                mean = crop.mean()
                crop = (crop - mean) * rng.uniform(0.7, 1.2) + mean * rng.uniform(0.8, 1.2)
                size = int(rng.integers(64, 129))
                grey = cv2.resize(np.clip(crop, 0, 255).astype(np.uint8), (size, size), interpolation=cv2.INTER_AREA)
                _jpeg(
                    folder / split / name / f"{index:04d}.jpg", np.repeat(grey[:, :, None], 3, axis=2), int(rng.integers(70, 95))
                )
    return (
        f"textures seed {seed}: {per_class_train} train / {per_class_test} test crops per class of scikit-image's "
        f"{', '.join(TEXTURES)} photographs (train from each photo's top half, test from its bottom half), 64-128 px grey JPEG"
    )


#: ``foreign_data.py --small``: each renderer's arguments for a training set a tenth of the usual size or less,
#: which a budget written in epochs would leave untrained.
SMALL = {
    "scene_labeling": {"n_train": 36},
    "captioning": {"n_train": 150},
    "steering": {"train_tracks": 2, "frames": 60},
    "dbn_hashing": {"database_share": 0.1},
    "image_classification": {"per_class_train": 4},
}

TASKS = {
    "scene_labeling": (
        render_scene_labeling,
        [
            ("mIoU", "miou", "baseline_miou"),
            ("pixel accuracy", "pixel_acc", "baseline_pixel_acc"),
            ("class accuracy", "class_acc", "baseline_class_acc"),
        ],
        "random forest on per-pixel colour, position and local colour/contrast",
        None,
    ),
    "captioning": (
        render_captioning,
        [
            ("BLEU-4 (beam) vs blind", "bleu4", "blind_bleu4"),
            ("CIDEr-D (beam) vs blind", "cider", "blind_cider"),
            ("BLEU-4 (beam) vs nearest neighbour", "bleu4", "nn_bleu4"),
            ("CIDEr-D (beam) vs nearest neighbour", "cider", "nn_cider"),
        ],
        "blind: the consensus training caption; nearest neighbour: a caption of the closest training image by the encoder",
        caption_agreement,
    ),
    "steering": (
        render_steering,
        [("steering RMSE (lower is better)", "rmse", "rmse_zero_baseline")],
        "steering straight ahead (all zeros)",
        None,
    ),
    "dbn_hashing": (
        render_dbn_hashing,
        [("mAP", "map", "itq_map"), ("precision@10", "precision_at_10", "itq_precision_at_10")],
        "PCA-ITQ with the same number of bits",
        None,
    ),
    "image_classification": (
        render_image_classification,
        [("accuracy", "accuracy", "baseline_hog_logreg")],
        "HOG + colour histogram, logistic regression, on the same training split",
        None,
    ),
}
