"""Dark ink on light paper: the pixel DBN reads such scans inverted, decided once from the training split."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from apptool_dbn_hashing import model as dbn_model
from apptool_dbn_hashing.task import DbnHashingTask


def _scans(folder: Path, paper: int, ink: int) -> None:
    """Two classes of 8x8 strokes (a bar and a cross) drawn with ``ink`` on ``paper``."""
    for split, count in (("train", 3), ("test", 1)):
        for name, mask in (("bar", np.eye(8, dtype=bool)), ("cross", np.eye(8, dtype=bool)[::-1] | np.eye(8, dtype=bool))):
            (folder / split / name).mkdir(parents=True, exist_ok=True)
            for i in range(count):
                image = np.where(mask, ink, paper).astype(np.uint8)
                cv2.imwrite(str(folder / split / name / f"{i}.png"), image)


def test_dark_ink_on_light_paper_is_read_inverted_and_the_bundle_keeps_the_answer(tmp_path):
    task = DbnHashingTask()
    config = task.config("tiny", {"data": {"source": "folder", "image_size": 8}})
    answers = {}
    for name, paper, ink in (("scans", 230, 20), ("screen", 0, 255)):
        _scans(tmp_path / name, paper, ink)
        answers[name] = task.load_data(config, tmp_path / name).info["invert_pixels"]
    assert answers == {"scans": True, "screen": False}

    trained = {**config, **task.load_data(config, tmp_path / "scans").info}
    model = dbn_model.build(trained, (1, 8, 8), 2)
    image = torch.full((1, 1, 8, 8), 0.9)
    assert torch.allclose(model.visible(image), torch.full((1, 64), 0.1)), "the paper is off, the ink on"
    # evaluating a scans bundle on a bright folder keeps the bundle's reading, so its codes still match the index
    assert task.load_data(trained, tmp_path / "screen").info["invert_pixels"] is True
    assert dbn_model.build(config, (1, 8, 8), 2).invert_pixels is False, "bundles from before read pixels as they are"
