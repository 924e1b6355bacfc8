"""Every hook a plugin can implement, grouped by what it extends.

Hooks are called on all plugins and their results collected in a list, unless
a docstring says *firstresult* (the first non-None answer wins).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:  # pragma: no cover
    import typer

    from apptool.engine.callbacks import Callback
    from apptool.task import Task

hookspec = pluggy.HookspecMarker("apptool")


# -- tasks --------------------------------------------------------------------
@hookspec
def apptool_tasks() -> list[Task]:
    """Return the Task instances this plugin provides; all plugins' lists are joined."""


# -- building blocks ------------------------------------------------------------
@hookspec
def apptool_backbones() -> dict[str, dict]:
    """Return extra encoders as {name: timm.create_model kwargs}; all plugins' dicts are merged."""


@hookspec
def apptool_dataset_readers() -> dict[str, dict]:
    """Return {task name: {format name: reader(data_dir, config) -> Splits}}; merged across plugins."""


@hookspec
def apptool_exporters() -> dict[str, object]:
    """Return {format name: exporter(bundle_dir, out_dir) -> Path}; merged across plugins."""


# -- training --------------------------------------------------------------------
@hookspec
def apptool_train_callbacks(config: dict) -> list[Callback]:
    """Return Callback objects for a training run with ``config``; all plugins' lists are joined after the built-ins."""


# -- command line ----------------------------------------------------------------
@hookspec
def apptool_cli_commands(app: typer.Typer) -> None:
    """Add commands to the ``apptool`` typer app; called once when the CLI is built."""
