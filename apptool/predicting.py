"""``apptool predict``: ONNX Runtime over files, folders and videos; no torch on this path.

Drawings go to ``--out`` as ``<stem>.pred.png`` (a video's as ``<stem>.pred.mp4``)
at the input's path below the folder the inputs share, so ``a/x.png`` and
``b/x.png`` give ``a/x.pred.png`` and ``b/x.pred.png``.  No drawing ever
replaces an input or another drawing: such a clash is refused before anything
runs, and every file is written whole or not at all.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from apptool.bundle import atomic_write_bytes
from apptool.errors import ConfigError, InputError
from apptool.images import VIDEO_SUFFIXES, list_inputs, video_fps, write_video
from apptool.runtime import Predictor

PRED = ".pred"


def _batches(iterator: Iterator, size: int) -> Iterator[list]:
    while batch := list(islice(iterator, size)):
        yield batch


class Outputs:
    """Where each input's drawings go, and the guard that no drawing lands on an input or on another drawing."""

    def __init__(self, out_dir: Path, inputs: list[Path], files: list[Path]):
        roots = [Path(os.path.abspath(p if Path(p).is_dir() else Path(p).parent)) for p in inputs]
        self.base = Path(os.path.commonpath(roots))
        self.out_dir = Path(out_dir)
        self.inputs = {f.resolve(): f for f in files}
        self.written: dict[Path, Path] = {}  # resolved drawing -> its input
        self.paths: list[str] = []
        planned: dict[Path, Path] = {}
        for path in files:  # refuse every clash of the first drawing of each file before predicting anything
            self._check(self.target(path), path, planned)
            planned[self.target(path).resolve()] = path

    def target(self, path: Path, item: int | None = None) -> Path:
        """``<out>/<relative folder>/<stem>[.<item>].pred.png|mp4`` for an input file (or its ``item``-th drawing)."""
        relative = Path(os.path.abspath(path)).relative_to(self.base)
        suffix = ".mp4" if path.suffix.lower() in VIDEO_SUFFIXES else ".png"
        stem = relative.stem if item is None else f"{relative.stem}.{item}"
        return self.out_dir / relative.with_name(f"{stem}{PRED}{suffix}")

    def _check(self, target: Path, source: Path, taken: dict[Path, Path]) -> None:
        resolved = target.resolve()
        if resolved in self.inputs:
            raise ConfigError(f"--out {self.out_dir}: the drawing of {source} would replace the input {self.inputs[resolved]}")
        if resolved in taken:
            raise ConfigError(f"{taken[resolved]} and {source} would both be drawn to {target}; predict them separately")

    def write_image(self, target: Path, source: Path, rgb: np.ndarray) -> None:
        self._check(target, source, self.written)
        ok, encoded = cv2.imencode(".png", np.ascontiguousarray(rgb[:, :, ::-1]))
        if not ok:
            raise InputError(f"{source}: the task's drawing could not be encoded as PNG")
        atomic_write_bytes(target, encoded.tobytes())
        self._record(target, source)

    def write_video(self, target: Path, source: Path, frames: list[np.ndarray]) -> None:
        self._check(target, source, self.written)
        with tempfile.TemporaryDirectory(prefix="apptool-video-") as scratch:  # OpenCV picks the container by suffix
            encoded = write_video(Path(scratch) / f"video{target.suffix}", frames, video_fps(source))
            if not encoded.is_file() or encoded.stat().st_size == 0:
                raise InputError(f"{source}: OpenCV could not encode the annotated video {target}")
            atomic_write_bytes(target, encoded.read_bytes())
        self._record(target, source)

    def _record(self, target: Path, source: Path) -> None:
        self.written[target.resolve()] = source
        self.paths.append(str(target))


def _predict(predictor: Predictor, batch: list[tuple[Path, int, str, Any]]) -> list[dict[str, Any]]:
    """Predictions for one batch; an unusable item is named by its file (and frame), not by its place in the batch."""
    try:
        return predictor.predict([item for *_, item in batch])
    except InputError:
        for path, _, name, item in batch:
            try:
                predictor.predict([item])
            except InputError as exc:
                raise InputError(f"{path if name == path.name else f'{path}:{name}'}: {exc}") from None
        raise


def predict_paths(bundle_dir: Path, inputs: list[Path], out_dir: Path | None = None, batch_size: int = 16) -> dict[str, Any]:
    """Predictions for every item of every input; annotated images/videos written to ``out_dir``."""
    if batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {batch_size}")
    predictor = Predictor(bundle_dir)
    task = predictor.task
    files = list_inputs(inputs, set(task.input_suffixes))
    if not files:
        raise InputError(f"no input files with suffixes {sorted(task.input_suffixes)} in {', '.join(map(str, inputs))}")
    outputs = Outputs(out_dir, inputs, files) if out_dir else None
    rows: list[dict[str, Any]] = []
    frames: dict[Path, list[np.ndarray]] = {}  # drawn frames of the videos not yet written

    def write_videos(unless: Path | None = None) -> None:
        for video in [v for v in frames if v != unless]:
            outputs.write_video(outputs.target(video), video, frames.pop(video))

    # one stream over all files, so a batch spans files: a folder of images fills every batch too
    stream = ((path, index, name, item) for path in files for index, (name, item) in enumerate(task.read_input(path), 1))
    for batch in _batches(stream, batch_size):
        for (path, index, name, item), result in zip(batch, _predict(predictor, batch)):
            single = name == path.name
            rows.append({"input": str(path) if single else f"{path}:{name}", "result": result})
            if outputs and (drawn := task.render(item, result, predictor.config)) is not None:
                if path.suffix.lower() in VIDEO_SUFFIXES:
                    frames.setdefault(path, []).append(drawn)
                else:  # a file of several items (a .ts of many series) numbers its drawings
                    outputs.write_image(outputs.target(path, None if single else index), path, drawn)
        write_videos(unless=batch[-1][0])  # the last file may go on in the next batch
    write_videos()
    written = outputs.paths if outputs else []
    return {"bundle": str(bundle_dir), "task": task.name, "provider": predictor.provider, "predictions": rows, "outputs": written}
