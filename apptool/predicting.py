"""``apptool predict``: ONNX Runtime over files, folders and videos; no torch on this path."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import cv2

from apptool.errors import InputError
from apptool.images import VIDEO_SUFFIXES, list_inputs, video_fps, write_video
from apptool.runtime import Predictor


def _batches(iterator: Iterator, size: int) -> Iterator[list]:
    while batch := list(islice(iterator, size)):
        yield batch


def predict_paths(bundle_dir: Path, inputs: list[Path], out_dir: Path | None = None, batch_size: int = 16) -> dict[str, Any]:
    """Predictions for every item of every input; annotated images/videos written to ``out_dir``."""
    predictor = Predictor(bundle_dir)
    task = predictor.task
    files = list_inputs(inputs, set(task.input_suffixes))
    if not files:
        raise InputError(f"no input files with suffixes {sorted(task.input_suffixes)} in {', '.join(map(str, inputs))}")
    if out_dir:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    written: list[str] = []
    for path in files:
        frames = []
        for batch in _batches(task.read_input(path), batch_size):
            results = predictor.predict([item for _, item in batch])
            for (name, item), result in zip(batch, results):
                rows.append({"input": str(path) if name == path.name else f"{path}:{name}", "result": result})
                if out_dir and (drawn := task.render(item, result)) is not None:
                    if path.suffix.lower() in VIDEO_SUFFIXES:
                        frames.append(drawn)
                    else:
                        target = Path(out_dir) / f"{Path(name).stem}.png"
                        cv2.imwrite(str(target), drawn[:, :, ::-1])
                        written.append(str(target))
        if frames:
            written.append(str(write_video(Path(out_dir) / f"{path.stem}.mp4", frames, video_fps(path))))
    return {"bundle": str(bundle_dir), "task": task.name, "provider": predictor.provider, "predictions": rows, "outputs": written}
