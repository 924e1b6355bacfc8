"""Where a task's data comes from: its own readers and generator, or a reader another plugin adds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from apptool.errors import ConfigError
from apptool.task import Splits, Task


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
