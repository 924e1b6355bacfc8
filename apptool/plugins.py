"""The one plugin manager: loads the ``apptool`` entry points, built-in and third-party alike.

A plugin that fails to import, declares an API version this core does not
implement, or raises from a hook is recorded in ``load_errors`` and skipped;
the rest keep working.  ``APPTOOL_PLUGINS=a,b`` loads only the named entry points.
"""

from __future__ import annotations

import functools
import os
import traceback
from dataclasses import dataclass, field
from importlib.metadata import entry_points

import pluggy

from apptool import API_VERSION, hookspecs
from apptool.errors import ConfigError
from apptool.task import Task

GROUP = "apptool"


@dataclass
class PluginInfo:
    """What ``apptool plugins`` shows about one loaded plugin."""

    name: str
    distribution: str
    version: str
    api: tuple[int, ...]
    tasks: list[str] = field(default_factory=list)
    hooks: list[str] = field(default_factory=list)


@dataclass
class LoadError:
    """A plugin that was skipped, and why."""

    name: str
    distribution: str
    error: str


class Plugins:
    """Loaded plugins, their tasks and the errors of those that were skipped."""

    def __init__(self, only: list[str] | None = None) -> None:
        self.pm = pluggy.PluginManager(GROUP)
        self.pm.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}
        self.load_errors: list[LoadError] = []
        self.tasks: dict[str, Task] = {}
        self._load_entry_points(only)

    def register(self, module: object, name: str, distribution: str = "", version: str = "") -> None:
        """Register one plugin (an entry point's module, or one a test builds) and collect its tasks.

        Raises, leaving nothing registered, if the plugin's API version or tasks are unusable.
        """
        api = _declared_api(module)
        if API_VERSION not in api:
            raise ImportError(f"plugin supports apptool API {list(api)}, this apptool implements API {API_VERSION}")
        self.pm.register(module, name=name)
        try:
            tasks = self._tasks_of(module)
        except Exception:
            self.pm.unregister(module)
            raise
        hooks = sorted(h.name for h in self.pm.get_hookcallers(module) or [])
        self.infos[name] = PluginInfo(name, distribution, version, api, [t.name for t in tasks], hooks)
        self.tasks.update({t.name: t for t in tasks})

    def _tasks_of(self, module: object) -> list[Task]:
        impl = getattr(module, "apptool_tasks", None)
        tasks = list(impl() or []) if impl else []
        for task in tasks:
            if not isinstance(task, Task):
                raise TypeError(f"apptool_tasks returned {type(task).__name__}, not an apptool.task.Task")
            if task.name in self.tasks:
                raise ValueError(f"task {task.name!r} is already provided by another plugin")
        return tasks

    def _load_entry_points(self, only: list[str] | None) -> None:
        for ep in entry_points(group=GROUP):
            if only is not None and ep.name not in only:
                continue
            dist = ep.dist.name if ep.dist else ""
            version = ep.dist.version if ep.dist else ""
            try:
                self.register(ep.load(), ep.name, dist, version)
            except Exception as exc:  # a broken plugin must never take the others down
                self.load_errors.append(LoadError(ep.name, dist, _describe(exc)))

    def task(self, name: str) -> Task:
        """The task called ``name``, or a ConfigError listing the installed ones."""
        try:
            return self.tasks[name]
        except KeyError:
            raise ConfigError(f"no task {name!r}; installed tasks: {', '.join(sorted(self.tasks)) or 'none'}") from None

    def merged(self, hook_name: str) -> dict:
        """Merge the dicts every plugin returns from a dict-returning hook; a raising plugin is reported."""
        result: dict = {}
        for name, plugin in self.pm.list_name_plugin():
            impl = getattr(plugin, hook_name, None)
            if impl is None:
                continue
            try:
                result.update(impl() or {})
            except Exception as exc:
                self.load_errors.append(LoadError(name, self.infos[name].distribution, f"{hook_name}: {_describe(exc)}"))
        return result


def _declared_api(module: object) -> tuple[int, ...]:
    api = getattr(module, "APPTOOL_API", API_VERSION)
    return tuple(api) if isinstance(api, (tuple, list)) else (int(api),)


def _describe(exc: BaseException) -> str:
    frame = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" ({frame[0].filename}:{frame[0].lineno})" if frame else ""
    return f"{type(exc).__name__}: {exc}{where}"


@functools.lru_cache(maxsize=1)
def get_plugins() -> Plugins:
    """The process-wide plugin set, honouring ``APPTOOL_PLUGINS``."""
    only = os.environ.get("APPTOOL_PLUGINS")
    return Plugins([n.strip() for n in only.split(",") if n.strip()] if only else None)
