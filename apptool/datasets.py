"""Where a task's data comes from: its own readers and generator, or a reader another plugin adds."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from apptool.errors import ConfigError, DataError, InputError
from apptool.paths import inside_data_folder
from apptool.task import Splits, Task


def read_text(path: Path, missing: str = "missing") -> str:
    """A data file's text as UTF-8 (a byte-order mark dropped); a missing or undecodable file is a DataError naming it.

    ``missing`` says, after the path, what a missing file means (e.g. which layout needs it).
    """
    path = Path(path)
    try:
        return path.read_bytes().decode("utf-8-sig")
    except (FileNotFoundError, NotADirectoryError):
        raise DataError(f"{path}: {missing}") from None
    except IsADirectoryError:
        raise DataError(f"{path}: a folder, not a text file") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not a UTF-8 text file ({exc.reason} at byte {exc.start})") from None


def plugin_readers(task_name: str) -> dict[str, Any]:
    """{format: (plugin, reader)} that plugins add for ``task_name`` through ``apptool_dataset_readers``."""
    from apptool.plugins import get_plugins

    readers: dict[str, Any] = {}
    for plugin, result in get_plugins().results("apptool_dataset_readers"):
        readers.update({fmt: (plugin, reader) for fmt, reader in (result or {}).get(task_name, {}).items()})
    return readers


def load_splits(task: Task, config: dict[str, Any], data_dir: Path | None) -> Splits:
    """``config["data"]["format"]`` picks a plugin's reader for ``data_dir``; otherwise the task reads it."""
    fmt = config.get("data", {}).get("format")
    if fmt and data_dir is not None:
        from apptool.plugins import get_plugins

        readers, plugins = plugin_readers(task.name), get_plugins()
        if fmt not in readers:
            raise ConfigError(
                f"data.format={fmt!r}: no reader for task {task.name!r}; plugins offer {sorted(readers) or 'none'}"
                + plugins.failure_note("apptool_dataset_readers", fmt)
            )
        plugin, reader = readers[fmt]
        return plugins.call(plugin, f"dataset reader {fmt!r}", reader, Path(data_dir), config)
    return task.load_data(config, data_dir)


# -- ImageFolder: DIR/train/<class>/<image>, DIR/test/<class>/<image> --------------------------
@dataclass
class ImageFolder:
    """The (image, label) samples of one ImageFolder split, decoded lazily; classes are sorted by name.

    Images go through :func:`apptool.images.read_image` (size guard before decoding).
    ``transform(image, index)`` turns the HxWx3 uint8 RGB array into what a model
    takes; the index lets an augmenting transform seed its draws per sample.
    ``labels`` is what the trainer's stratified validation split reads.
    """

    files: list[Path]
    labels: list[int]
    classes: list[str]
    transform: Callable[[np.ndarray, int], Any] | None = None

    def __len__(self) -> int:
        return len(self.files)

    def image(self, index: int) -> np.ndarray:
        """The RGB image of sample ``index``; an unreadable file is a DataError naming it."""
        from apptool.images import read_image

        try:
            return read_image(self.files[index])
        except InputError as exc:
            raise DataError(str(exc)) from None

    def set_epoch(self, epoch: int) -> None:
        """Pass the epoch (the trainer announces it) to an augmenting transform that seeds its draws by it."""
        if callable(getattr(self.transform, "set_epoch", None)):
            self.transform.set_epoch(epoch)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        image = self.image(index)
        return (self.transform(image, index) if self.transform else image), self.labels[index]


def _visible(path: Path) -> bool:
    return not path.name.startswith((".", "_"))


def _class_folders(split_dir: Path) -> dict[str, list[Path]]:
    """{class: image files} of one split folder; every class folder must hold an image."""
    from apptool.images import IMAGE_SUFFIXES

    kinds = ", ".join(sorted(IMAGE_SUFFIXES))
    if not split_dir.is_dir():
        raise DataError(f"{split_dir}: missing; the ImageFolder layout is {split_dir.name}/<class>/<images> ({kinds})")
    found: dict[str, list[Path]] = {}
    for entry in sorted(split_dir.iterdir()):
        if not _visible(entry):
            continue
        if not entry.is_dir():
            if entry.suffix.lower() in IMAGE_SUFFIXES:
                raise DataError(f"{entry}: image outside a class folder; expected {split_dir.name}/<class>/{entry.name}")
            continue
        files = sorted(
            inside_data_folder(p, split_dir.parent)  # a link out of the data folder is refused, as in every reader
            for p in entry.iterdir()
            if p.is_file() and _visible(p) and p.suffix.lower() in IMAGE_SUFFIXES
        )
        if not files:
            raise DataError(f"{entry}: class folder {entry.name!r} holds no images ({kinds})")
        found[entry.name] = files
    if not found:
        raise DataError(f"{split_dir}: no class folders; the ImageFolder layout is {split_dir.name}/<class>/<images>")
    return found


def read_image_folder(data_dir: Path, splits: tuple[str, str] = ("train", "test")) -> tuple[ImageFolder, ImageFolder]:
    """The train and test splits of ``data_dir``; the classes are those of ``train`` (at least two)."""
    data_dir = Path(data_dir)
    train_files, test_files = (_class_folders(data_dir / split) for split in splits)
    classes = sorted(train_files)
    if len(classes) < 2:
        raise DataError(f"{data_dir / splits[0]}: only the class {classes[0]!r}; a classifier needs at least two class folders")
    unknown = sorted(set(test_files) - set(train_files))
    if unknown:
        raise DataError(f"{data_dir / splits[1] / unknown[0]}: class {unknown[0]!r} has no folder in {data_dir / splits[0]}")

    def split(files: dict[str, list[Path]]) -> ImageFolder:
        pairs = [(path, classes.index(name)) for name, paths in files.items() for path in paths]
        return ImageFolder([p for p, _ in pairs], [label for _, label in pairs], classes)

    return split(train_files), split(test_files)
