"""Plugin isolation: a plugin broken in any way is reported with its own file:line, and the rest keep working.

Each kind of breakage has a plugin here: an import error (also one raised inside
a library the plugin imports), a raising hook of every data kind, a command
typer cannot build, a hook-name typo, a wrong API version, a non-Task answer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from broken_plugins import HOOK_TYPO, RAISING_EXTRAS
from conftest import make_discoverable

BROKEN_IMPORT = "import this_module_does_not_exist\n"
IMPORT_FAILS_IN_A_LIBRARY = "import numpy\nnumpy.this_attribute_does_not_exist\n"  # raised by numpy's __getattr__
BROKEN_HOOK = textwrap.dedent("""
    import apptool

    @apptool.hookimpl
    def apptool_tasks():
        raise RuntimeError("hook exploded")
""")
WRONG_API = textwrap.dedent("""
    import apptool
    APPTOOL_API = 99

    @apptool.hookimpl
    def apptool_tasks():
        return []
""")
NOT_A_TASK = textwrap.dedent("""
    import apptool

    @apptool.hookimpl
    def apptool_tasks():
        return ["not a task"]
""")
BAD_COMMANDS = textwrap.dedent("""
    from __future__ import annotations

    import apptool

    @apptool.hookimpl
    def apptool_cli_commands(app):
        from pathlib import Path

        @app.command("unbuildable")
        def unbuildable(where: Path):
            print(where)

        @app.command("explode")
        def explode():
            return {}["missing"]

        @app.command("fine")
        def fine():
            print("fine command ran")
""")
BROKEN = {
    "broken_import": BROKEN_IMPORT,
    "library_import": IMPORT_FAILS_IN_A_LIBRARY,
    "broken_hook": BROKEN_HOOK,
    "wrong_api": WRONG_API,
    "not_a_task": NOT_A_TASK,
    "hook_typo": HOOK_TYPO,
    "bad_commands": BAD_COMMANDS,
    "raising_extras": RAISING_EXTRAS,
}


def line_of(source: str, text: str) -> int:
    """1-based number of the first line of ``source`` containing ``text``."""
    return next(i for i, line in enumerate(source.splitlines(), 1) if text in line)


@pytest.fixture(scope="module")
def plugin_path(scaffold_root, tmp_path_factory):
    """A sys.path folder holding the good scaffold plugin and the broken ones, all discoverable."""
    root = tmp_path_factory.mktemp("plugins")
    for name, source in BROKEN.items():
        (root / f"{name}.py").write_text(source)
        make_discoverable(root, f"apptool-{name.replace('_', '-')}", {name: name})
    return os.pathsep.join([str(root), str(scaffold_root)])


def apptool(path: str, *args: str, only: str | None = None, columns: int = 80) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": path, "COLUMNS": str(columns)}
    env.pop("APPTOOL_PLUGINS", None)
    if only is not None:
        env["APPTOOL_PLUGINS"] = only
    return subprocess.run([sys.executable, "-m", "apptool", *args], env=env, capture_output=True, text=True, timeout=600)


def list_plugins(path: str, only: str | None = None) -> dict:
    done = apptool(path, "plugins", "--json", only=only)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def listing(plugin_path) -> dict:
    return list_plugins(plugin_path)


def test_broken_plugins_are_reported_and_the_rest_work(listing):
    errors = {e["name"]: e["error"] for e in listing["errors"] if not e["hook"]}
    assert "ModuleNotFoundError" in errors["broken_import"] and "this_module_does_not_exist" in errors["broken_import"]
    assert "hook exploded" in errors["broken_hook"]
    assert "API [99]" in errors["wrong_api"]
    assert "not an apptool.task.Task" in errors["not_a_task"]
    assert "digits_demo" in listing["tasks"]
    good = next(p for p in listing["plugins"] if p["name"] == "digits_demo")
    assert good["distribution"] == "apptool-digits-demo" and good["version"] == "0.1.0"
    assert good["hooks"] == ["apptool_tasks"] and good["api"] == [1]


def test_each_failure_points_at_the_plugins_own_line(listing, plugin_path):
    errors = {(e["name"], e["hook"]): e["error"] for e in listing["errors"]}
    root = plugin_path.split(os.pathsep)[0]

    def at(name: str, text: str, below: int = 0) -> str:
        return f"({os.path.join(root, name)}.py:{line_of(BROKEN[name], text) + below})"

    assert errors[("library_import", "")].endswith(at("library_import", "this_attribute_does_not_exist"))
    assert errors[("broken_import", "")].endswith(at("broken_import", "import"))
    assert errors[("broken_hook", "")].endswith(at("broken_hook", "raise"))
    assert errors[("wrong_api", "")].startswith("API version mismatch:")
    assert errors[("wrong_api", "")].endswith(at("wrong_api", "APPTOOL_API"))
    assert "did you mean apptool_backbones?" in errors[("hook_typo", "")]
    assert errors[("hook_typo", "")].endswith(at("hook_typo", "@apptool.hookimpl"))
    for hook in ("apptool_backbones", "apptool_exporters", "apptool_dataset_readers"):
        assert errors[("raising_extras", hook)].endswith(at("raising_extras", f"def {hook}(", below=1))
    assert "NameError" in errors[("bad_commands", "apptool_cli_commands")]
    assert errors[("bad_commands", "apptool_cli_commands")].endswith(at("bad_commands", '@app.command("unbuildable")'))
    assert {p["name"] for p in listing["plugins"]} >= {"bad_commands", "raising_extras", "digits_demo"}


def test_a_command_typer_cannot_build_is_skipped_and_the_others_run(plugin_path):
    assert "fine command ran" in apptool(plugin_path, "fine").stdout
    for args, error in ((("unbuildable", "x"), "NameError"), (("explode",), "KeyError")):
        done = apptool(plugin_path, *args)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1, done.stderr
        assert "'bad_commands'" in lines[0] and args[0] in lines[0] and error in lines[0] and "bad_commands.py:" in lines[0]


def test_plugins_check_names_every_problem_and_fails(plugin_path):
    done = apptool(plugin_path, "plugins", "--check", only=",".join([*BROKEN, "digits_demo"]))
    assert done.returncode == 1
    for name in BROKEN:
        assert name in done.stderr, name
    assert "digits_demo" in done.stdout and "check: ok" in done.stdout
    clean = apptool(plugin_path, "plugins", "--check", only="digits_demo")
    assert clean.returncode == 0 and "check: ok" in clean.stdout, clean.stderr


def test_apptool_plugins_env_loads_only_the_named(plugin_path):
    listing = list_plugins(plugin_path, only="digits_demo")
    assert [p["name"] for p in listing["plugins"]] == ["digits_demo"]
    assert listing["errors"] == []


def test_plugins_listing_wraps_at_80_columns_and_names_the_failures(plugin_path):
    done = apptool(plugin_path, "plugins", columns=80)
    assert done.returncode == 0
    assert "failed to load" in done.stderr and "broken_hook" in done.stderr
    assert "apptool_cli_commands" in done.stdout and "apptool-digits-demo" in done.stdout
    assert "…" not in done.stdout + done.stderr


def test_unknown_task_lists_installed_ones(scaffold_task):
    from apptool.errors import ConfigError
    from apptool.plugins import get_plugins

    with pytest.raises(ConfigError, match="digits_demo"):
        get_plugins().task("no_such_task")
