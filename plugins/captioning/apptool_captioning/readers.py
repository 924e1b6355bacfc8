"""Readers for the public caption formats: COCO captions JSON and the Flickr8k token file.

Both return, per split, a list of (image path, [caption strings]) in file
order.  Images listed without any caption are skipped; captions are kept raw
(tokenisation happens later, in one place).  Anything that does not follow the
layout is a DataError naming the file and the entry (``annotations[12].caption``,
``Flickr8k.token.txt:40``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from apptool.datasets import read_text
from apptool.errors import DataError
from apptool.paths import inside_data_folder

COCO_FILES = {"train": "captions_train.json", "test": "captions_test.json"}
FLICKR_TOKENS = "Flickr8k.token.txt"
FLICKR_SPLITS = {"train": "Flickr_8k.trainImages.txt", "test": "Flickr_8k.testImages.txt"}
#: Folders (under DIR) where Flickr8k images are looked for; the official archive says "Flicker8k_Dataset".
FLICKR_IMAGE_DIRS = ("Flicker8k_Dataset", "Flickr8k_Dataset", "images", ".")

Items = list[tuple[Path, list[str]]]


def detect_format(data_dir: Path) -> str:
    """ "coco" or "flickr8k", from the files in ``data_dir``."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataError(f"{data_dir}: no such data folder")
    if (data_dir / COCO_FILES["train"]).is_file():
        return "coco"
    if (data_dir / FLICKR_TOKENS).is_file():
        return "flickr8k"
    raise DataError(
        f"{data_dir}: not a captioning data folder; expected COCO captions ({COCO_FILES['train']}, "
        f"{COCO_FILES['test']} and images/) or Flickr8k ({FLICKR_TOKENS} and the images)"
    )


def _inside(root: Path, relative: str, where: str) -> Path:
    """``root / relative``, refusing absolute paths, ``..`` and symbolic links that would leave ``root``.

    ``root`` is the image folder, resolved, so ``images/`` itself may be a link to a shared copy of the data set.
    """
    normal = os.path.normpath(relative.replace("\\", "/"))
    if os.path.isabs(normal) or normal == ".." or normal.startswith("../") or Path(relative).drive:
        raise DataError(f"{where}: path {relative!r} leaves the data folder {root}; refusing it")
    inside_data_folder(root / normal, root, where)
    return root / normal


def _load_json(path: Path) -> dict:
    text = read_text(path, f"missing; the COCO layout needs {COCO_FILES['train']}, {COCO_FILES['test']} and images/")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    except RecursionError:
        raise DataError(f"{path}: JSON nested too deeply to be a COCO captions file") from None
    if not isinstance(value, dict):
        raise DataError(f"{path}: expected a JSON object with 'images' and 'annotations', got {type(value).__name__}")
    for key in ("images", "annotations"):
        if not isinstance(value.get(key), list):
            raise DataError(f"{path}: field {key!r} must be a list (COCO captions format)")
    return value


def _field(entry: object, key: str, kinds: tuple[type, ...], where: str):
    if not isinstance(entry, dict):
        raise DataError(f"{where}: expected an object, got {type(entry).__name__}")
    if key not in entry:
        raise DataError(f"{where}: missing {key!r}")
    value = entry[key]
    if not isinstance(value, kinds) or isinstance(value, bool):
        raise DataError(
            f"{where}.{key}: expected {' or '.join(k.__name__ for k in kinds)}, got {type(value).__name__} {value!r:.60}"
        )
    return value


def read_coco(data_dir: Path, split: str) -> Items:
    """(image path, captions) of ``captions_<split>.json``; images are under ``data_dir/images/``."""
    data_dir = Path(data_dir)
    path = data_dir / COCO_FILES[split]
    doc = _load_json(path)
    image_root = data_dir / "images"
    files: dict[object, Path] = {}
    for i, entry in enumerate(doc["images"]):
        where = f"{path}: images[{i}]"
        image_id = _field(entry, "id", (int, str), where)
        name = _field(entry, "file_name", (str,), where)
        if image_id in files:
            raise DataError(f"{where}.id: {image_id!r} is listed twice")
        files[image_id] = _inside(image_root, name.strip(), where)
    captions: dict[object, list[str]] = {}
    for j, entry in enumerate(doc["annotations"]):
        where = f"{path}: annotations[{j}]"
        image_id = _field(entry, "image_id", (int, str), where)
        caption = _field(entry, "caption", (str,), where)
        if image_id not in files:
            raise DataError(f"{where}.image_id: {image_id!r} is not the id of any entry in 'images'")
        captions.setdefault(image_id, []).append(caption)
    items: Items = []
    for i, (image_id, file) in enumerate(files.items()):
        if image_id not in captions:
            continue  # COCO lists images that have no caption in this file: nothing to learn from
        if not file.is_file():
            raise DataError(f"{path}: images[{i}] (id {image_id!r}): image file {file} not found")
        items.append((file, captions[image_id]))
    if not items:
        raise DataError(f"{path}: no image has a caption")
    return items


def read_flickr8k(data_dir: Path) -> dict[str, Items]:
    """Train and test (image path, captions) from ``Flickr8k.token.txt`` (``image.jpg#N<TAB>caption``).

    The split follows ``Flickr_8k.trainImages.txt`` / ``Flickr_8k.testImages.txt``
    when both exist (captions of images in neither list are ignored, as the
    archive's stray ``.jpg.1`` entries are); otherwise every fifth image, in
    file order, is held out for testing.
    """
    data_dir = Path(data_dir)
    path = data_dir / FLICKR_TOKENS
    captions: dict[str, list[str]] = {}
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        key, tab, caption = line.partition("\t")
        if not tab:
            raise DataError(f"{path}:{number}: expected 'image.jpg#N<TAB>caption', found no tab")
        name = key.strip().rsplit("#", 1)[0]
        if not name:
            raise DataError(f"{path}:{number}: empty image name")
        captions.setdefault(name, []).append(caption)
    if all((data_dir / f).is_file() for f in FLICKR_SPLITS.values()):
        names = {s: [n.strip() for n in read_text(data_dir / f).splitlines() if n.strip()] for s, f in FLICKR_SPLITS.items()}
        names = {s: [n for n in ns if n in captions] for s, ns in names.items()}
    else:
        ordered = list(captions)
        names = {"train": [n for i, n in enumerate(ordered) if i % 5 != 4], "test": ordered[4::5]}
    folder = next(
        (
            data_dir / d
            for d in FLICKR_IMAGE_DIRS
            if (data_dir / d).is_dir() and any((data_dir / d / n).is_file() for n in captions)
        ),
        data_dir,
    )
    splits: dict[str, Items] = {}
    for split, ns in names.items():
        items = []
        for name in ns:
            file = _inside(folder, name, f"{path}: image {name!r}")
            if not file.is_file():
                raise DataError(f"{path}: image {name!r} not found (looked in {folder})")
            items.append((file, captions[name]))
        if not items:
            raise DataError(f"{path}: the {split} split has no images")
        splits[split] = items
    return splits
