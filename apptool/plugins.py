"""The one plugin manager: loads the ``apptool`` entry points, built-in and third-party alike.

Every hook is called through :meth:`Plugins.results`, which calls each plugin's
implementation itself, so a failure is attributed to the plugin that raised,
recorded for ``apptool plugins`` and skipped: the other plugins keep working.
A plugin that fails to import, declares an API version this core does not
implement, or names a hook that does not exist (``apptool_backbone``) is
recorded and skipped at load.  Errors carry the file:line of the plugin's own
code.  ``APPTOOL_PLUGINS=a,b`` loads only the named entry points.
"""

from __future__ import annotations

import difflib
import functools
import importlib.util
import inspect
import os
import re
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

import pluggy

from apptool import API_VERSION, hookspecs
from apptool.errors import AppToolError, ConfigError
from apptool.task import Task

GROUP = "apptool"
#: Modules of the core that are plugins themselves (datasette's DEFAULT_PLUGINS): registered before any entry
#: point, whatever APPTOOL_PLUGINS says, and not listed among the installed plugins.
BUILTIN_PLUGINS = ("apptool.export_formats",)
HOOKS = tuple(name for name, _ in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("apptool_"))
#: Hooks whose every answer must be a dict (their spec says so); any other answer is recorded as the plugin's error.
DICT_HOOKS = frozenset(h for h in HOOKS if str(inspect.signature(getattr(hookspecs, h)).return_annotation).startswith("dict"))


class PluginError(AppToolError):
    """A plugin failed while doing what the user asked; the message names the plugin and its file:line."""


class PluginDefect(Exception):
    """A plugin breaks the contract at a known place in its own code (API version, hook name or signature)."""

    def __init__(self, label: str, message: str, where: str) -> None:
        super().__init__(message)
        self.label, self.where = label, where


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
    """A plugin, or one of its hooks or commands, that was skipped, and why (one line ending in file:line)."""

    name: str
    distribution: str
    error: str
    hook: str = ""  # "" when the plugin failed to load at all


class Plugins:
    """Loaded plugins, their tasks and the errors of those that were skipped."""

    def __init__(self, only: list[str] | None = None) -> None:
        self.pm = pluggy.PluginManager(GROUP)
        self.pm.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}
        self.load_errors: list[LoadError] = []
        self.tasks: dict[str, Task] = {}
        self.skipped_commands: dict[str, str] = {}  # command name -> why it was not added
        self._roots: dict[str, Path] = {}  # plugin name -> its source file or package folder
        self._distributions: dict[str, str] = {}
        for module in BUILTIN_PLUGINS:
            self.pm.register(importlib.import_module(module), name=module)
        self._load_entry_points(only)

    # -- loading ---------------------------------------------------------------
    def register(self, module: object, name: str, distribution: str = "", version: str = "") -> None:
        """Register one plugin (an entry point's module, or one a test builds) and collect its tasks.

        Raises, leaving nothing registered, if the plugin's API version, hook names or tasks are unusable.
        """
        self._distributions[name] = distribution
        self._roots.setdefault(name, source_root(getattr(module, "__name__", "")) or Path(_file_of(module)))
        api = _declared_api(module)
        if API_VERSION not in api:
            raise PluginDefect(
                "API version mismatch",
                f"plugin supports apptool API {list(api)}, this apptool implements API {API_VERSION}",
                _api_line(module),
            )
        _check_hook_names(module)
        self.pm.register(module, name=name)
        try:
            tasks = self._tasks_of(name)
        except Exception:
            self.pm.unregister(module)
            raise
        hooks = sorted(h.name for h in self.pm.get_hookcallers(module) or [])
        self.infos[name] = PluginInfo(name, distribution, version, api, [t.name for t in tasks], hooks)
        self.tasks.update({t.name: t for t in tasks})

    def _tasks_of(self, plugin: str) -> list[Task]:
        tasks = []
        for impl in self.impls("apptool_tasks", plugin):
            where = code_location(impl.function)
            for task in impl.function() or []:
                if not isinstance(task, Task):
                    raise PluginDefect(
                        "bad task", f"apptool_tasks returned {type(task).__name__}, not an apptool.task.Task", where
                    )
                if task.name in self.tasks:
                    raise PluginDefect("duplicate task", f"task {task.name!r} is already provided by another plugin", where)
                tasks.append(task)
        return tasks

    def _load_entry_points(self, only: list[str] | None) -> None:
        for ep in entry_points(group=GROUP):
            if only is None or ep.name in only:
                self.load(ep)

    def load(self, ep: EntryPoint) -> None:
        """Import and register one entry point; a failure is recorded with the plugin's own file:line, never raised."""
        dist = ep.dist.name if ep.dist else ""
        self._distributions[ep.name] = dist
        root = source_root(ep.module)
        if root is not None:
            self._roots[ep.name] = root
        try:
            self.register(ep.load(), ep.name, dist, ep.dist.version if ep.dist else "")
        except Exception as exc:  # a broken plugin must never take the others down
            self.record(ep.name, "", exc)

    # -- calling hooks -----------------------------------------------------------
    def impls(self, hook_name: str, plugin: str | None = None) -> list:
        """pluggy's HookImpl objects of ``hook_name`` (of one plugin, if named), in the order they are merged."""
        return [i for i in getattr(self.pm.hook, hook_name).get_hookimpls() if plugin is None or i.plugin_name == plugin]

    def results(self, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """(plugin name, result) of every plugin's ``hook_name``; a raising plugin is recorded and skipped."""
        out = []
        for impl in self.impls(hook_name):
            try:
                result = impl.function(*(kwargs[arg] for arg in impl.argnames))
                if hook_name in DICT_HOOKS and not isinstance(result, (dict, type(None))):
                    raise PluginDefect(
                        "bad answer", f"{hook_name} returned {type(result).__name__}, not a dict", code_location(impl.function)
                    )
            except Exception as exc:
                self.record(impl.plugin_name, hook_name, exc)
                continue
            out.append((impl.plugin_name, result))
        return out

    def provided(self, hook_name: str, **kwargs: Any) -> dict[str, tuple[str, Any]]:
        """{key: (plugin, value)} merged from a dict-returning hook, later plugins overriding earlier ones."""
        merged: dict[str, tuple[str, Any]] = {}
        for plugin, result in self.results(hook_name, **kwargs):
            merged.update({key: (plugin, value) for key, value in (result or {}).items()})
        return merged

    def probe(self) -> None:
        """Call every dict-returning hook once, so a plugin whose hook raises is listed before anyone relies on it."""
        for hook_name in sorted(DICT_HOOKS):
            self.results(hook_name)

    def merged(self, hook_name: str, **kwargs: Any) -> dict:
        """The dicts every plugin returns from a dict-returning hook, merged; a raising plugin is recorded."""
        return {key: value for key, (_, value) in self.provided(hook_name, **kwargs).items()}

    def call(self, plugin: str, action: str, fn: Callable, *args: Any, **kwargs: Any) -> Any:
        """Run ``fn`` that ``plugin`` provided for the user's request; its failure becomes one line naming the plugin."""
        try:
            return fn(*args, **kwargs)
        except AppToolError:
            raise
        except Exception as exc:
            raise PluginError(f"plugin {plugin!r} failed in {action}: {self.describe(plugin, exc)}") from exc

    def record(self, plugin: str, hook: str, exc: BaseException, where: str = "") -> None:
        """Keep a plugin's failure for ``apptool plugins`` (once, however often the hook is called)."""
        error = LoadError(plugin, self._distributions.get(plugin, ""), self.describe(plugin, exc, where), hook)
        if error not in self.load_errors:
            self.load_errors.append(error)

    def describe(self, plugin: str, exc: BaseException, where: str = "") -> str:
        """``Type: message (file:line)``, the location being the deepest frame in the plugin's own code."""
        if isinstance(exc, PluginDefect):
            return f"{exc.label}: {exc} ({exc.where})"
        message = " ".join(str(exc).split())
        return f"{type(exc).__name__}: {message} ({plugin_frame(exc, self._roots.get(plugin)) or where or last_frame(exc)})"

    def failure_note(self, hook_name: str, key: str) -> str:
        """Why ``key`` may be missing from ``hook_name``'s results: the failed plugins that mention it, or could provide it."""
        notes = []
        for error in self.load_errors:
            if error.hook not in ("", hook_name):
                continue
            root = self._roots.get(error.name)
            if root is not None and _mentions(root, key):
                return f"; {key!r} comes from plugin {error.name!r}, which failed: {error.error}"
            notes.append(f"{error.name!r} ({error.error})")
        return f"; plugins that failed to load and may provide it: {', '.join(notes)}" if notes else ""

    # -- the command line --------------------------------------------------------
    def add_cli_commands(self, app: Any) -> None:
        """Add each plugin's commands to ``app``, each built on its own first; one that typer cannot build is skipped."""
        import typer

        taken = {command_name(info) for info in app.registered_commands + app.registered_groups}
        for plugin, scratch in self._command_apps():
            for info in scratch.registered_commands + scratch.registered_groups:
                name = command_name(info)
                try:
                    if name in taken:
                        raise ValueError(f"command {name!r} already exists")
                    probe = typer.Typer()
                    (probe.registered_groups if hasattr(info, "typer_instance") else probe.registered_commands).append(info)
                    typer.main.get_command(probe)  # resolves annotations and option types now, not when the user runs it
                except Exception as exc:
                    self.record(plugin, "apptool_cli_commands", exc, code_location(_callback(info)))
                    self.skipped_commands[name] = f"command {name!r} of plugin {plugin!r} could not be built: " + self.describe(
                        plugin, exc, code_location(_callback(info))
                    )
                    continue
                taken.add(name)
                if not hasattr(info, "typer_instance"):
                    info.callback = self._guarded_command(plugin, name, info.callback)
                (app.registered_groups if hasattr(info, "typer_instance") else app.registered_commands).append(info)

    def _guarded_command(self, plugin: str, name: str, callback: Callable) -> Callable:
        """The command's callback, its unexpected failures turned into one line naming the plugin."""
        import click

        @functools.wraps(callback)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                return callback(*args, **kwargs)
            except (AppToolError, click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
                raise
            except Exception as exc:
                raise PluginError(f"plugin {plugin!r} failed in command {name!r}: {self.describe(plugin, exc)}") from exc

        return guarded

    def _command_apps(self) -> list[tuple[str, Any]]:
        """(plugin, a scratch typer app holding only that plugin's commands) for every plugin that adds commands."""
        import typer

        apps = []
        for impl in self.impls("apptool_cli_commands"):
            scratch = typer.Typer()
            try:
                impl.function(*({"app": scratch}[arg] for arg in impl.argnames))
            except Exception as exc:
                self.record(impl.plugin_name, "apptool_cli_commands", exc)
                continue
            apps.append((impl.plugin_name, scratch))
        return apps

    # -- lookups ------------------------------------------------------------------
    def task(self, name: str) -> Task:
        """The task called ``name``, or a ConfigError listing the installed ones."""
        try:
            return self.tasks[name]
        except KeyError:
            raise ConfigError(
                f"no task {name!r}; installed tasks: {', '.join(sorted(self.tasks)) or 'none'}"
                + self.failure_note("apptool_tasks", name)
            ) from None


def _declared_api(module: object) -> tuple[int, ...]:
    api = getattr(module, "APPTOOL_API", API_VERSION)
    return tuple(api) if isinstance(api, (tuple, list)) else (int(api),)


def _check_hook_names(module: object) -> None:
    """Every ``apptool_*`` function is a known hook marked with ``@apptool.hookimpl``, with the spec's arguments."""
    for attr in dir(module):
        value = getattr(module, attr, None)
        if not attr.startswith("apptool_") or not callable(value):
            continue
        where = code_location(value)
        if attr not in HOOKS:
            nearest = difflib.get_close_matches(attr, HOOKS, n=1)
            hint = f"; did you mean {nearest[0]}?" if nearest else f"; hooks are {', '.join(HOOKS)}"
            raise PluginDefect("unknown hook", f"{attr} is not an apptool hook{hint}", where)
        if not hasattr(value, f"{GROUP}_impl"):
            raise PluginDefect("hook not marked", f"{attr} is not decorated with @apptool.hookimpl, so it is never called", where)
        spec_args = set(inspect.signature(getattr(hookspecs, attr)).parameters)
        extra = [a for a in inspect.signature(value).parameters if a not in spec_args]
        if extra:
            raise PluginDefect(
                "hook signature",
                f"{attr}({', '.join(inspect.signature(value).parameters)}) takes {', '.join(extra)}, "
                f"which the hook does not pass; it passes ({', '.join(spec_args) or 'nothing'})",
                where,
            )
        if getattr(value, f"{GROUP}_impl", {}).get("wrapper") or getattr(value, f"{GROUP}_impl", {}).get("hookwrapper"):
            raise PluginDefect("hook wrapper", f"{attr}: apptool hooks do not support wrappers", where)


def _api_line(module: object) -> str:
    """file:line of the plugin's ``APPTOOL_API = ...`` assignment."""
    path = _file_of(module)
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return path
    number = next((i for i, line in enumerate(lines, 1) if re.match(r"\s*APPTOOL_API\s*[:=]", line)), 0)
    return f"{path}:{number}" if number else path


def _file_of(module: object) -> str:
    return str(getattr(module, "__file__", "") or getattr(module, "__name__", "") or type(module).__name__)


def source_root(module_name: str) -> Path | None:
    """The plugin's own code: its top-level package folder, or its single module file (found without importing it)."""
    top = module_name.split(".")[0]
    if not top:
        return None
    loaded = sys.modules.get(top)
    try:
        spec = loaded.__spec__ if loaded is not None and loaded.__spec__ else importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0]).resolve()
    return Path(spec.origin).resolve() if spec.origin and spec.origin not in ("built-in", "frozen") else None


def plugin_frame(exc: BaseException, root: Path | None) -> str:
    """file:line of the deepest traceback frame inside ``root`` (a syntax error's own line when that is where it is)."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{exc.filename}:{exc.lineno}"
    frames = traceback.extract_tb(exc.__traceback__) if exc.__traceback__ else []
    mine = [f for f in frames if root is not None and _inside(Path(f.filename), root)]
    return f"{mine[-1].filename}:{mine[-1].lineno}" if mine else ""


def last_frame(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__) if exc.__traceback__ else []
    return f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "unknown location"


def _inside(path: Path, root: Path) -> bool:
    try:
        path = path.resolve()
    except OSError:
        return False
    return path == root or root in path.parents


def _mentions(root: Path, key: str) -> bool:
    """Whether the plugin's source names ``key`` as a string literal (how a failed plugin is linked to what it offers)."""
    files = [root] if root.is_file() else sorted(root.rglob("*.py"))
    pattern = re.compile(rf"""["']{re.escape(key)}["']""")
    for path in files[:200]:
        try:
            if pattern.search(path.read_text(encoding="utf-8", errors="replace")):
                return True
        except OSError:
            continue
    return False


def code_location(fn: Any) -> str:
    """file:line where ``fn`` is defined, or '' if it has no source."""
    fn = inspect.unwrap(fn) if callable(fn) else fn
    code = getattr(fn, "__code__", None)
    return f"{code.co_filename}:{code.co_firstlineno}" if code else ""


def _callback(info: Any) -> Any:
    return getattr(info, "callback", None) or getattr(getattr(info, "typer_instance", None), "registered_callback", None)


def command_name(info: Any) -> str:
    """The name typer gives a registered command or group."""
    from typer.main import get_command_name

    if getattr(info, "name", None):
        return info.name
    typer_instance = getattr(info, "typer_instance", None)
    if typer_instance is not None:
        return typer_instance.info.name or ""
    return get_command_name(info.callback.__name__) if info.callback else ""


@functools.lru_cache(maxsize=1)
def get_plugins() -> Plugins:
    """The process-wide plugin set, honouring ``APPTOOL_PLUGINS``."""
    only = os.environ.get("APPTOOL_PLUGINS")
    return Plugins([n.strip() for n in only.split(",") if n.strip()] if only else None)
