"""Running ``apptool`` in this process (no second torch import) and making the file system fail under it.

Tests run as root in CI containers, where ``chmod`` does not stop a write, so a
read-only mount or a full disk is simulated at the system-call wrappers the
tool's writers go through (``os.open``, ``open``, ``os.mkdir``, ``os.fsync``).
"""

from __future__ import annotations

import builtins
import errno
import os
import sys
from pathlib import Path

import pytest


def run_cli(monkeypatch, capsys, *args) -> tuple[int, str, str]:
    """``apptool ARGS`` through the console entry point: exit code, stdout, stderr."""
    from apptool import cli

    monkeypatch.setattr(sys, "argv", ["apptool", *map(str, args)])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    out, err = capsys.readouterr()
    return exited.value.code or 0, out, err


def _fail(code: int, path) -> None:
    raise OSError(code, os.strerror(code), os.fsdecode(path))


def make_read_only(monkeypatch, folder: Path) -> None:
    """Creating or writing anything under ``folder`` fails with EROFS, as on a read-only mount."""
    root = os.path.abspath(folder)
    real_open, real_os_open, real_mkdir = builtins.open, os.open, os.mkdir

    def inside(path) -> bool:
        return isinstance(path, (str, bytes, os.PathLike)) and os.path.abspath(os.fsdecode(path)).startswith(root)

    def os_open(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and inside(path):
            _fail(errno.EROFS, path)
        return real_os_open(path, flags, *args, **kwargs)

    def open_(file, mode="r", *args, **kwargs):
        if any(c in mode for c in "wax+") and inside(file):
            _fail(errno.EROFS, file)
        return real_open(file, mode, *args, **kwargs)

    def mkdir(path, *args, **kwargs):
        if inside(path) and not os.path.exists(path):  # an existing folder still says EEXIST
            _fail(errno.EROFS, path)
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr(builtins, "open", open_)
    monkeypatch.setattr(os, "mkdir", mkdir)


def make_disk_full(monkeypatch) -> None:
    """Every flush to disk fails with ENOSPC, as on a full disk (the error names no file)."""

    def fsync(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", fsync)
