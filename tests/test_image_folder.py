"""The core ImageFolder reader: layout, class order, and one clear DataError per mistake."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from apptool.datasets import read_image_folder
from apptool.errors import DataError


def write(path, value=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((6, 8, 3), value, np.uint8))


@pytest.fixture
def folder(tmp_path):
    for split, n in (("train", 2), ("test", 1)):
        for k, name in enumerate(("dog", "cat")):
            for i in range(n):
                write(tmp_path / split / name / f"{i}.png", 40 * k + i)
    write(tmp_path / "train" / "cat" / "x.jpg", 99)
    (tmp_path / "train" / "cat" / "notes.txt").write_text("not an image")
    (tmp_path / "train" / ".cache").mkdir()
    return tmp_path


def test_reads_classes_sorted_by_name_with_their_images(folder):
    seen = []
    train, test = read_image_folder(folder)
    train.transform = lambda image, index: (seen.append(index), image.shape)[1]
    assert train.classes == test.classes == ["cat", "dog"]
    assert [f.name for f in train.files] == ["0.png", "1.png", "x.jpg", "0.png", "1.png"]
    assert train.labels == [0, 0, 0, 1, 1] and test.labels == [0, 1]
    assert train[2] == ((6, 8, 3), 0) and seen == [2]
    assert test.image(0).dtype == np.uint8 and (test.image(0)[0, 0, 0], test.image(1)[0, 0, 0]) == (40, 0)  # cat, dog


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda d: __import__("shutil").rmtree(d / "test"), r"test: missing; the ImageFolder layout is test/<class>/<images>"),
        (lambda d: write(d / "test" / "bird" / "0.png"), r"test/bird: class 'bird' has no folder in .*train"),
        (lambda d: (d / "train" / "fish").mkdir(), r"train/fish: class folder 'fish' holds no images"),
        (lambda d: write(d / "train" / "loose.png"), r"train/loose.png: image outside a class folder"),
        (
            lambda d: __import__("shutil").rmtree(d / "train" / "dog"),
            r"train: only the class 'cat'; a classifier needs at least two",
        ),
    ],
)
def test_layout_mistakes_name_the_folder(folder, damage, message):
    damage(folder)
    with pytest.raises(DataError, match=message):
        read_image_folder(folder)


def test_unreadable_image_names_the_file(folder):
    (folder / "train" / "dog" / "1.png").write_bytes(b"\x89PNG broken")
    train, _ = read_image_folder(folder)
    with pytest.raises(DataError, match=r"train/dog/1.png: not a readable image"):
        train[4]


def test_a_link_out_of_the_data_folder_is_refused(tmp_path):
    outside = tmp_path / "elsewhere.png"
    cv2.imwrite(str(outside), np.zeros((8, 8, 3), np.uint8))
    root = tmp_path / "data"
    for split in ("train", "test"):
        for name in ("a", "b"):
            (root / split / name).mkdir(parents=True)
            cv2.imwrite(str(root / split / name / "0.png"), np.zeros((8, 8, 3), np.uint8))
    (root / "train" / "a" / "1.png").symlink_to(outside)
    with pytest.raises(DataError, match="outside the data folder"):
        read_image_folder(root)
