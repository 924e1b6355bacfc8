"""Train/test splits for captioning (numpy only): the scene generator or a COCO/Flickr8k folder.

A dataset item is ``(image, captions)``: the normalised CHW float32 image and
up to ``max_refs`` encoded references (``<start> w.. <end>``, padded); the
model learns from every reference of an image in the same step.  Evaluation
reads ``dataset.image(i)`` and ``dataset.references[i]`` (all references, as
tokens) instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from apptool.errors import DataError, InputError
from apptool.images import read_image, to_rgb
from apptool_captioning import readers
from apptool_captioning.scenes import make_scenes
from apptool_captioning.text import PAD_ID, build_vocab, encode, tokenize

#: Stream ids mixed into the seed so train, test and demo samples never share scenes.
TRAIN_STREAM, TEST_STREAM, SAMPLE_STREAM = 0, 1, 2


def resize(image: np.ndarray, size: int, name: str = "image") -> np.ndarray:
    """An RGB image as size x size uint8 (the model's fixed input; area filter when shrinking)."""
    image = to_rgb(image, name)
    if image.shape[:2] == (size, size):
        return image
    shrink = image.shape[0] > size or image.shape[1] > size
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def preprocess(images: Sequence[np.ndarray], config: dict[str, Any]) -> np.ndarray:
    """Raw RGB images as the encoder's NCHW float32 input: resized, scaled to [0, 1], normalised."""
    data = config["data"]
    size = data["image_size"]
    mean = np.asarray(data["mean"], np.float32).reshape(1, 1, 3)
    std = np.asarray(data["std"], np.float32).reshape(1, 1, 3)
    batch = [
        ((resize(im, size, f"image {i}").astype(np.float32) / 255.0 - mean) / std).transpose(2, 0, 1)
        for i, im in enumerate(images)
    ]
    return np.ascontiguousarray(np.stack(batch), dtype=np.float32)


class CaptionDataset:
    """Images (arrays, or files read on first use) and their tokenised reference captions."""

    def __init__(
        self, images: Sequence[np.ndarray | Path], references: list[list[list[str]]], vocab: Sequence[str], config: dict[str, Any]
    ):
        self.images = list(images)
        self.references = references
        self.config = config
        self.index = {w: i for i, w in enumerate(vocab)}
        self.max_len = config["data"]["max_len"]
        self.max_refs = config["data"]["max_refs"]
        self._cache: dict[int, np.ndarray] = {}
        self.reference: CaptionDataset | None = None  # a test split's training split, for the baselines

    def __len__(self) -> int:
        return len(self.images)

    def image(self, i: int) -> np.ndarray:
        """Image ``i`` as RGB uint8 at the model's input size (files are read once, then kept resized)."""
        if i not in self._cache:
            source = self.images[i]
            if isinstance(source, Path):
                try:
                    raw = read_image(source)
                except InputError as exc:
                    raise DataError(str(exc)) from None
            else:
                raw = source
            self._cache[i] = resize(
                raw, self.config["data"]["image_size"], str(source) if isinstance(source, Path) else f"image {i}"
            )
        return self._cache[i]

    def captions(self, i: int) -> np.ndarray:
        """Encoded references of image ``i``: (max_refs, max_len + 2) int64; missing rows are all padding."""
        rows = np.full((self.max_refs, self.max_len + 2), PAD_ID, dtype=np.int64)
        for r, tokens in enumerate(self.references[i][: self.max_refs]):
            rows[r] = encode(tokens, self.index, self.max_len)
        return rows

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        return preprocess([self.image(i)], self.config)[0], self.captions(i)


def _tokenised(items: readers.Items) -> tuple[list[Path], list[list[list[str]]]]:
    """Images and token lists, dropping captions that are empty once tokenised and images left without any."""
    images, references = [], []
    for path, captions in items:
        tokens = [t for t in (tokenize(c) for c in captions) if t]
        if tokens:
            images.append(path)
            references.append(tokens)
    return images, references


def load_splits(config: dict[str, Any], data_dir: Path | None) -> tuple[CaptionDataset, CaptionDataset, dict[str, Any]]:
    """Train and test datasets and the bundle info (vocabulary, caption format, split sizes).

    The vocabulary comes from the training captions, unless ``config`` already
    holds one (a trained bundle's): a model is always fed its own vocabulary.
    """
    data = config["data"]
    if data_dir is None:
        seed = int(config.get("seed", 0))
        kwargs = {"size": data["image_size"], "max_objects": data["max_objects"], "n_captions": data["captions_per_image"]}
        train_scenes = make_scenes(data["train_size"], (seed, TRAIN_STREAM), **kwargs)
        test_scenes = make_scenes(data["test_size"], (seed, TEST_STREAM), **kwargs)
        train = ([s.image for s in train_scenes], [[tokenize(c) for c in s.captions] for s in train_scenes])
        test = ([s.image for s in test_scenes], [[tokenize(c) for c in s.captions] for s in test_scenes])
        kind = "generator"
    else:
        data_dir = Path(data_dir)
        kind = readers.detect_format(data_dir)
        if kind == "coco":
            train, test = _tokenised(readers.read_coco(data_dir, "train")), _tokenised(readers.read_coco(data_dir, "test"))
        else:
            splits = readers.read_flickr8k(data_dir)
            train, test = _tokenised(splits["train"]), _tokenised(splits["test"])
        for split, (images, _) in (("train", train), ("test", test)):
            if not images:
                raise DataError(f"{data_dir}: the {split} split has no image with a non-empty caption")
    vocab = config.get("vocab") or build_vocab((t for refs in train[1] for t in refs), data["min_word_freq"])
    info = {"vocab": list(vocab), "caption_format": kind, "train_images": len(train[0]), "test_images": len(test[0])}
    train_set, test_set = CaptionDataset(*train, vocab, config), CaptionDataset(*test, vocab, config)
    test_set.reference = train_set
    return train_set, test_set, info
