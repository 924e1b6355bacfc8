"""What a task's demo gets from the hub (``apptool.hub``): the :class:`DemoContext` its tab is built with.

Model calls run on ONNX Runtime through a :class:`~apptool.runtime.Predictor`
and share one queue concurrency id, so the hub never runs two model calls at
once on a small machine.  Errors a user can fix appear in the page as text.
"""

from __future__ import annotations

import functools
import logging
import re
import tempfile
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from apptool.errors import AppToolError

CONCURRENCY_ID = "model"
#: Output files (videos, plots) a context keeps: gradio copies each into its own cache as it serves it,
#: so only the newest few are still needed, and the work folder does not grow with every request.
KEPT_OUTPUTS = 8
log = logging.getLogger(__name__)


@dataclass
class DemoContext:
    """What a task's ``demo`` gets: its predictor, a place for output files, and the error guard.

    The hub may put a better model in ``predictor`` while the tab is served (a tiny model replaced by
    the preset's), so handlers read ``predictor`` and ``config`` when called, not when the demo is built.
    """

    predictor: Any  # apptool.runtime.Predictor
    refresh: Callable[[], Any] | None = None  # called before each handler: the hub swaps in a newer model here
    work_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="apptool-demo-")))
    concurrency_id: str = CONCURRENCY_ID
    kept_outputs: int = KEPT_OUTPUTS
    _outputs: deque = field(default_factory=deque, init=False, repr=False)

    @property
    def task(self):
        return self.predictor.task

    @property
    def config(self) -> dict[str, Any]:
        return self.predictor.config

    def example_files(self, images: list) -> list[str]:
        """RGB example images written as PNGs into the work folder: gradio's Examples take file paths."""
        import cv2

        paths = []
        for index, image in enumerate(images):
            path = Path(self.work_dir) / f"{self.task.name}_example_{index}.png"
            cv2.imwrite(str(path), image[:, :, ::-1])
            paths.append(str(path))
        return paths

    def api_name(self, action: str = "predict") -> str:
        """The endpoint name gradio_client calls: ``/<task>_<action>``."""
        return f"{self.task.name}_{action}"

    def guard(self, fn: Callable) -> Callable:
        """Wrap an event handler so user errors show as a readable message, never a traceback.

        Files the handler writes in ``work_dir`` are its outputs; all but the newest ``kept_outputs`` are deleted.
        """
        import gradio as gr

        @functools.wraps(fn)
        def guarded(*args, **kwargs):
            before = self._files()
            try:
                if self.refresh is not None:
                    self.refresh()
                return fn(*args, **kwargs)
            except AppToolError as exc:  # uploads live in gradio's cache: name them as the user did
                raise gr.Error(_without_paths(str(exc))) from None
            except gr.Error:
                raise
            except Exception as exc:  # an unexpected failure still reaches the page as one line
                log.exception("demo handler failed")
                raise gr.Error(f"{type(exc).__name__}: {exc}") from None
            finally:
                self._keep_newest_outputs(before)

        return guarded

    def _files(self) -> set[Path]:
        return {p for p in Path(self.work_dir).rglob("*") if p.is_file()}

    def _keep_newest_outputs(self, before: set[Path]) -> None:
        self._outputs.extend(sorted(self._files() - before, key=lambda p: p.stat().st_mtime))
        while len(self._outputs) > self.kept_outputs:
            self._outputs.popleft().unlink(missing_ok=True)


def _upload_name(payload: Any) -> str:
    """The user's name for an uploaded file (gradio renames uploads into its cache)."""
    for key in ("orig_name", "path"):
        value = payload.get(key) if isinstance(payload, dict) else getattr(payload, key, None)
        if value:
            return Path(str(value)).name
    return "the input"


def _without_paths(text: str) -> str:
    """An error message with server-side paths cut to their file names."""
    return re.sub(r"(?<![\w:./\\])(?:[A-Za-z]:)?[/\\][^\s'\"]*[/\\]([^/\\\s'\"]+)", r"\1", text)


def readable_inputs(container) -> None:
    """Make every input component under ``container`` report an unreadable upload as one readable line.

    Gradio decodes an upload (an image, a video...) before the handler, so a
    corrupt file never reaches ``guard``; without this the user reads gradio's
    internal "could not preprocess input component" report.
    """
    import gradio as gr

    for block in getattr(container, "children", []):
        readable_inputs(block)
        if not isinstance(block, gr.components.Component) or getattr(block, "_apptool_readable", False):
            continue
        decode = block.preprocess
        label = block.label or type(block).__name__.lower()

        def preprocess(payload, _decode=decode, _label=label):
            try:
                return _decode(payload)
            except gr.Error:
                raise
            except Exception as exc:
                reason = _without_paths(str(exc)) or type(exc).__name__
                raise gr.Error(
                    f"{_label}: could not read {_upload_name(payload)!r} ({reason}). "
                    "Upload a valid file of the kind this box expects."
                ) from None

        block.preprocess = preprocess
        block._apptool_readable = True
