"""The helpers plugins share instead of copies: reading a text data file, running a graph in batches, the confusion PNG."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from apptool.datasets import read_text
from apptool.errors import DataError
from apptool.plots import write_confusion_png
from apptool.task import run_in_batches


def test_read_text_drops_a_byte_order_mark_and_names_the_file_it_cannot_read(tmp_path):
    path = tmp_path / "classes.txt"
    path.write_bytes(b"\xef\xbb\xbfsky\nroad\n")
    assert read_text(path) == "sky\nroad\n"
    path.write_bytes(b"sky\n\xff\xfe road")
    with pytest.raises(DataError, match=r"classes\.txt: not a UTF-8 text file \(invalid start byte at byte 4\)"):
        read_text(path)
    with pytest.raises(DataError, match=r"nowhere\.txt: missing; the layout needs it"):
        read_text(tmp_path / "nowhere.txt", "missing; the layout needs it")
    with pytest.raises(DataError, match="a folder, not a text file"):
        read_text(tmp_path)


class CountingRunner:
    """Doubles its input and records the batch size of every call."""

    def __init__(self):
        self.sizes: list[int] = []

    def run(self, graph, feeds):
        assert graph == "model"
        self.sizes.append(len(feeds["x"]))
        return {"double": feeds["x"] * 2, "first": feeds["x"][:, :1]}


def test_run_in_batches_concatenates_what_one_call_would_give():
    items = [np.full(3, i, np.float32) for i in range(10)]
    runner = CountingRunner()
    out = run_in_batches(runner, "model", items, lambda part: {"x": np.stack(part)}, 4)
    assert runner.sizes == [4, 4, 2]
    assert np.array_equal(out["double"], np.stack(items) * 2) and out["first"].shape == (10, 1)
    assert run_in_batches(runner, "model", [], lambda part: {"x": np.stack(part)}, 4) == {}


def test_confusion_png_shows_the_most_frequent_classes_when_there_are_too_many(tmp_path, monkeypatch):
    counts = np.diag([5, 0, 3, 1])
    counts[0, 2] = 2
    path = write_confusion_png(counts, ["a", "b", "c", "d"], tmp_path / "plots" / "confusion.png", "test")
    image = cv2.imread(str(path))
    assert image is not None and image.shape[0] > 100 and image.shape[1] > 100
    shown: list[list[str]] = []
    import matplotlib.axes

    original = matplotlib.axes.Axes.set_yticks
    monkeypatch.setattr(matplotlib.axes.Axes, "set_yticks", lambda ax, ticks, labels, **kw: shown.append(list(labels)))
    write_confusion_png(counts, ["a", "b", "c", "d"], tmp_path / "two.png", max_classes=2)
    write_confusion_png(counts, ["a", "b", "c", "d"], tmp_path / "all.png")
    monkeypatch.setattr(matplotlib.axes.Axes, "set_yticks", original)
    assert shown == [["a", "c"], ["a", "b", "c", "d"]]  # the two most frequent, in label order; all four fit
