"""Whether a file a data set names or holds may be read: only if it really lies inside the data folder.

One rule for every reader: a path that leaves the data folder, whether by
``..`` or through a symbolic link (to a file or to a folder on the way), is
refused with a DataError naming the file and where it leads.  The data folder
itself is resolved first, so it may be a link (to a bigger disk, say); links
inside it that stay inside it are followed.  A downloaded archive can carry
links, and a training run should read only what the user handed it.
"""

from __future__ import annotations

import os
from pathlib import Path

from apptool.errors import DataError


def inside_data_folder(path: str | Path, root: str | Path, where: str | None = None) -> Path:
    """``path`` fully resolved, or a DataError (prefixed with ``where``, else the path) if it leads out of ``root``."""
    path, root = Path(path), Path(root)
    label = where or str(path)
    try:
        real, real_root = path.resolve(), root.resolve()
    except (OSError, ValueError, RuntimeError) as exc:  # a NUL byte, a link loop
        raise DataError(f"{label}: path {str(path)!r} cannot be resolved ({exc})") from None
    if real.is_relative_to(real_root):
        return real
    if Path(os.path.normpath(path.absolute())).is_relative_to(root.absolute()):
        raise DataError(
            f"{label}: {path} leads through a symbolic link to {real}, outside the data folder {root}; "
            "copy the file into the data folder (or make the whole data folder the link)"
        )
    raise DataError(f"{label}: path {str(path)!r} escapes the data folder {root}")
