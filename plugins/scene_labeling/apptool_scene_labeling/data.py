"""Scene-labeling data: the built-in generator, the two public layouts, and the training view.

Nothing here imports torch: items are numpy arrays that torch's default
collate turns into tensors, and ``evaluate`` (ONNX side) reads the raw
full-resolution images and masks from the same objects.

Layouts under ``--data DIR``:

* images/masks: ``DIR/classes.txt`` (one class name per line) and
  ``DIR/{train,test}/images/*`` with ``DIR/{train,test}/masks/<same stem>.png``
  (pixel = class index, 255 = ignore; grey, 16-bit or palette PNGs);
* Stanford Background (Gould et al. 2009): ``DIR/images/*.jpg`` and
  ``DIR/labels/<stem>.regions.txt`` (whitespace-separated integer matrices,
  -1 = unknown, read as ignore).  It has no official split, so one image in
  five goes to test, chosen by a hash of its name (stable as files are added).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from apptool.datasets import read_text
from apptool.errors import DataError, InputError
from apptool.images import IMAGE_SUFFIXES, MAX_PIXELS, read_image
from apptool.paths import inside_data_folder
from apptool_scene_labeling.scenes import CLASSES, IGNORE, PALETTE, scene

STRIDE = 32  # the encoder's largest reduction: input sides are multiples of it
#: The normalisation of bundles made before ``model.mean``/``model.std`` were stored (timm's ImageNet statistics).
LEGACY_MEAN, LEGACY_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def fit_size(height: int, width: int, long_side: int) -> tuple[int, int]:
    """The model input size for an image: long side ``long_side``, aspect kept, sides multiples of 32."""
    scale = long_side / max(height, width)
    return (max(STRIDE, int(round(height * scale / STRIDE)) * STRIDE), max(STRIDE, int(round(width * scale / STRIDE)) * STRIDE))


def palette(n: int) -> np.ndarray:
    """Overlay colours for ``n`` classes: the Stanford ones first, then evenly spaced hues."""
    if n <= len(PALETTE):
        return PALETTE[:n]
    hues = np.linspace(0, 179, n - len(PALETTE), endpoint=False).astype(np.uint8)
    extra = cv2.cvtColor(np.stack([hues, np.full_like(hues, 200), np.full_like(hues, 230)], 1)[None], cv2.COLOR_HSV2RGB)[0]
    return np.concatenate([PALETTE, extra])


class GeneratedScenes:
    """Scenes of one generator stream, rendered on first use and kept: (image, mask, name) by index."""

    def __init__(self, n: int, seed: int, split: int, height: int, width: int):
        self.n, self.seed, self.split, self.height, self.width = n, seed, split, height, width
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray, str]:
        if not 0 <= index < self.n:
            raise IndexError(index)
        if index not in self._cache:
            self._cache[index] = scene(self.seed, self.split, index, self.height, self.width)
        return (*self._cache[index], f"scene-{self.split}-{index}")


class SceneSet:
    """Labelled images; an item is (float32 3xLxL image in 0..255, int64 LxL mask) for training.

    Each image is resized like ``predict`` resizes it (``fit_size``) and padded
    to a square with ignored pixels, so a batch stacks; ``augment`` adds flips,
    zoom crops and brightness/contrast changes from numpy's global RNG (which
    the trainer seeds per epoch).  ``pair(i)`` gives the raw full-size pair; a test
    set's ``reference`` holds the training pairs the classical baseline is fitted on.
    """

    def __init__(
        self,
        pairs: Sequence[tuple[np.ndarray, np.ndarray, str]],
        long_side: int,
        augment: bool = False,
        reference: Sequence[tuple[np.ndarray, np.ndarray, str]] | None = None,
    ):
        self.pairs, self.long_side, self.augment = pairs, int(long_side), augment
        self.reference = reference  # a test split's training pairs, for the classical baseline

    def __len__(self) -> int:
        return len(self.pairs)

    def pair(self, index: int) -> tuple[np.ndarray, np.ndarray, str]:
        return self.pairs[index]

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        image, mask, _ = self.pairs[index]
        h, w = fit_size(*mask.shape, self.long_side)
        image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32)
        mask = cv2.resize(mask, (w, h), interpolation=cv2.INTER_NEAREST)
        if self.augment:
            image, mask = _augment(image, mask)
        side = fit_size(self.long_side, self.long_side, self.long_side)[0]  # no fitted side exceeds it
        out_image = np.zeros((side, side, 3), np.float32)
        out_mask = np.full((side, side), IGNORE, np.uint8)
        out_image[:h, :w], out_mask[:h, :w] = image, mask
        return np.ascontiguousarray(out_image.transpose(2, 0, 1)), out_mask.astype(np.int64)


def _augment(image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h, w = mask.shape
    if np.random.random() < 0.5:
        image, mask = image[:, ::-1], mask[:, ::-1]
    zoom = np.random.uniform(1.0, 1.35)
    if zoom > 1.02:
        zh, zw = int(h * zoom), int(w * zoom)
        image = cv2.resize(image, (zw, zh), interpolation=cv2.INTER_LINEAR)
        mask = cv2.resize(np.ascontiguousarray(mask), (zw, zh), interpolation=cv2.INTER_NEAREST)
        y, x = np.random.randint(0, zh - h + 1), np.random.randint(0, zw - w + 1)
        image, mask = image[y : y + h, x : x + w], mask[y : y + h, x : x + w]
    gain, bias = np.random.uniform(0.75, 1.25), np.random.uniform(-20, 20)
    tint = np.random.uniform(0.92, 1.08, 3).astype(np.float32)
    image = np.clip(image * gain * tint + bias, 0, 255)
    return np.ascontiguousarray(image, np.float32), np.ascontiguousarray(mask)


# -- readers -----------------------------------------------------------------------
def read_classes(path: Path) -> list[str]:
    """classes.txt: one class name per line; blank lines and ``#`` comments are skipped."""
    text = read_text(path, "missing; it lists the class names, one per line (line 1 = class index 0)")
    names: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        name = line.split("#", 1)[0].strip()
        if not name:
            continue
        if name in names:
            raise DataError(f"{path}, line {number}: class {name!r} is listed twice")
        names.append(name)
    if not names:
        raise DataError(f"{path}: lists no class names")
    if len(names) > IGNORE:
        raise DataError(f"{path}: {len(names)} classes; at most {IGNORE} fit in a PNG mask next to 255 = ignore")
    return names


def read_mask_png(path: Path) -> np.ndarray:
    """A mask PNG as an HxW uint8 array of class indices (grey, 16-bit, palette or grey-as-RGB)."""
    try:
        with Image.open(path) as img:
            mode = img.mode
            if img.width * img.height > MAX_PIXELS:  # refused before decoding: a small file can hold a huge mask
                raise DataError(f"{path}: mask is {img.width}x{img.height} pixels, more than the limit of {MAX_PIXELS:,}")
            array = np.asarray(img)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        # Pillow reports a broken PNG chunk as ValueError (truncated IHDR) or SyntaxError (bad CRC)
        raise DataError(f"{path}: not a readable mask PNG ({exc})") from None
    if array.ndim == 3:
        if mode in ("RGB", "RGBA") and (array[..., :3] == array[..., :1]).all():
            array = array[..., 0]
        else:
            raise DataError(
                f"{path}: mask is a colour ({mode}) image; expected one channel of class indices (0..N-1, 255 = ignore)"
            )
    if array.dtype == bool or array.dtype.kind not in "ui" or array.min(initial=0) < 0:
        raise DataError(f"{path}: mask pixels must be non-negative integers (class indices), got {mode} / {array.dtype}")
    return array


def _check_mask(mask: np.ndarray, path: Path, image_shape: tuple[int, int], image_path: Path, n_classes: int) -> np.ndarray:
    if mask.shape != image_shape:
        raise DataError(
            f"{path}: mask is {mask.shape[1]}x{mask.shape[0]} but its image {image_path.name} is "
            f"{image_shape[1]}x{image_shape[0]} (width x height); they must match"
        )
    values = np.unique(mask)
    bad = values[(values >= n_classes) & (values != IGNORE)]
    if bad.size:
        raise DataError(
            f"{path}: unknown class indices {bad[:10].tolist()}; classes.txt lists {n_classes} classes "
            f"(0..{n_classes - 1}) and 255 means ignore"
        )
    return mask.astype(np.uint8)


def _read_image(path: Path) -> np.ndarray:
    try:
        return read_image(path)
    except InputError as exc:
        raise DataError(str(exc)) from None


def read_images_masks_split(split_dir: Path, n_classes: int) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """(image, mask, name) triples of one ``train/`` or ``test/`` folder of the images/masks layout."""
    image_dir, mask_dir = split_dir / "images", split_dir / "masks"
    for folder in (image_dir, mask_dir):
        if not folder.is_dir():
            raise DataError(f"{folder}: missing; each split folder holds images/ and masks/ (same file stems)")
    images = sorted(p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise DataError(f"{image_dir}: no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    stems = {p.stem for p in images}
    if len(stems) != len(images):
        raise DataError(f"{image_dir}: two images share a file stem; masks are matched by stem")
    orphans = sorted(p.name for p in mask_dir.glob("*.png") if p.stem not in stems)
    if orphans:
        raise DataError(f"{mask_dir / orphans[0]}: mask has no image of the same stem in {image_dir}")
    pairs = []
    for image_path in images:
        mask_path = mask_dir / f"{image_path.stem}.png"
        if not mask_path.is_file():
            raise DataError(f"{image_path}: no mask {mask_path}")
        for path in (image_path, mask_path):
            inside_data_folder(path, split_dir.parent)
        image = _read_image(image_path)
        mask = _check_mask(read_mask_png(mask_path), mask_path, image.shape[:2], image_path, n_classes)
        pairs.append((image, mask, image_path.name))
    return pairs


def read_regions(path: Path, shape: tuple[int, int], n_classes: int = len(CLASSES)) -> np.ndarray:
    """A Stanford Background ``*.regions.txt`` matrix as a uint8 mask (-1 = unknown becomes 255)."""
    rows = []
    text = read_text(path, "missing (every images/<stem>.jpg needs labels/<stem>.regions.txt)")
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        row = []
        for token in line.split():
            try:
                row.append(int(token))
            except ValueError:
                raise DataError(f"{path}, line {number}: {token!r} is not an integer class index") from None
            if not -1 <= row[-1] < n_classes:
                raise DataError(
                    f"{path}, line {number}: unknown class {row[-1]}; Stanford Background labels are -1 (unknown) and 0..{n_classes - 1}"
                )
        if rows and len(row) != len(rows[0]):
            raise DataError(f"{path}, line {number}: {len(row)} values, but line 1 has {len(rows[0])}; rows must be equally long")
        rows.append(row)
    if not rows:
        raise DataError(f"{path}: empty; expected one row of integers per image row")
    labels = np.array(rows, np.int64)
    if labels.shape != tuple(shape):
        raise DataError(
            f"{path}: {labels.shape[0]} rows x {labels.shape[1]} columns, but the image is "
            f"{shape[0]} x {shape[1]} pixels (rows x columns); they must match"
        )
    return np.where(labels < 0, IGNORE, labels).astype(np.uint8)


def in_test_split(stem: str) -> bool:
    """The deterministic Stanford split: one name in five (by CRC-32 of the name) is held out."""
    return zlib.crc32(stem.encode()) % 5 == 0


def read_stanford(root: Path) -> tuple[list, list]:
    """Train and test (image, mask, name) triples of the Stanford Background layout."""
    images = sorted(p for p in (root / "images").iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise DataError(f"{root / 'images'}: no images")
    train, test = [], []
    for image_path in images:
        labels = root / "labels" / f"{image_path.stem}.regions.txt"
        for path in (image_path, labels):
            inside_data_folder(path, root)
        image = _read_image(image_path)
        mask = read_regions(labels, image.shape[:2])
        (test if in_test_split(image_path.stem) else train).append((image, mask, image_path.name))
    if not test:  # a very small copy: hold out its last image rather than none
        test.append(train.pop())
    if not train:
        raise DataError(f"{root}: only {len(images)} image(s); need at least two to split train and test")
    return train, test


def detect_layout(root: Path) -> str:
    """ "images-masks" or "stanford-background", or a DataError describing both layouts."""
    if not root.is_dir():
        raise DataError(f"--data {root}: no such folder")
    if (root / "train").is_dir() or (root / "classes.txt").is_file():
        return "images-masks"
    if (root / "images").is_dir() and (root / "labels").is_dir():
        return "stanford-background"
    raise DataError(
        f"{root}: not a scene-labeling data set; expected classes.txt with train/ and test/ "
        "(each with images/ and masks/), or Stanford Background's images/ and labels/*.regions.txt"
    )


def read_data_dir(root: Path) -> tuple[list[str], list, list, str]:
    """(class names, train triples, test triples, layout name) of a data folder in either layout."""
    layout = detect_layout(root)
    if layout == "stanford-background":
        train, test = read_stanford(root)
        return list(CLASSES), train, test, layout
    classes = read_classes(root / "classes.txt")
    for split in ("train", "test"):
        if not (root / split).is_dir():
            raise DataError(f"{root / split}: missing; the images/masks layout has train/ and test/ folders")
    return (
        classes,
        read_images_masks_split(root / "train", len(classes)),
        read_images_masks_split(root / "test", len(classes)),
        layout,
    )


def class_frequencies(pairs: Sequence[tuple[np.ndarray, np.ndarray, str]], n_classes: int) -> list[float]:
    """Share of labelled pixels per class (ignored pixels left out)."""
    counts = np.zeros(n_classes, np.int64)
    for _, mask, _ in pairs:
        valid = mask[mask != IGNORE]
        counts += np.bincount(valid, minlength=n_classes)[:n_classes]
    return (counts / max(int(counts.sum()), 1)).round(5).tolist()
