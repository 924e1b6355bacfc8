"""Plugin loading: good, broken-on-import, raising-hook and wrong-API plugins, and APPTOOL_PLUGINS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from conftest import make_discoverable

BROKEN_IMPORT = "import this_module_does_not_exist\n"
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


@pytest.fixture(scope="module")
def plugin_path(scaffold_root, tmp_path_factory):
    """A sys.path folder holding the good scaffold plugin and four broken ones, all discoverable."""
    root = tmp_path_factory.mktemp("plugins")
    for name, source in {
        "broken_import": BROKEN_IMPORT,
        "broken_hook": BROKEN_HOOK,
        "wrong_api": WRONG_API,
        "not_a_task": NOT_A_TASK,
    }.items():
        (root / f"{name}.py").write_text(source)
        make_discoverable(root, f"apptool-{name.replace('_', '-')}", {name: name})
    return os.pathsep.join([str(root), str(scaffold_root)])


def list_plugins(path: str, only: str | None = None) -> dict:
    env = {**os.environ, "PYTHONPATH": path}
    env.pop("APPTOOL_PLUGINS", None)
    if only is not None:
        env["APPTOOL_PLUGINS"] = only
    done = subprocess.run(
        [sys.executable, "-m", "apptool", "plugins", "--json"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_broken_plugins_are_reported_and_the_rest_work(plugin_path):
    listing = list_plugins(plugin_path)
    errors = {e["name"]: e["error"] for e in listing["errors"]}
    assert "ModuleNotFoundError" in errors["broken_import"] and "this_module_does_not_exist" in errors["broken_import"]
    assert "hook exploded" in errors["broken_hook"]
    assert "API [99]" in errors["wrong_api"]
    assert "not an apptool.task.Task" in errors["not_a_task"]
    assert "digits_demo" in listing["tasks"]
    good = next(p for p in listing["plugins"] if p["name"] == "digits_demo")
    assert good["distribution"] == "apptool-digits-demo" and good["version"] == "0.1.0"
    assert good["hooks"] == ["apptool_tasks"] and good["api"] == [1]


def test_apptool_plugins_env_loads_only_the_named(plugin_path):
    listing = list_plugins(plugin_path, only="digits_demo")
    assert [p["name"] for p in listing["plugins"]] == ["digits_demo"]
    assert listing["errors"] == []


def test_plugins_table_names_the_failures(plugin_path):
    env = {**os.environ, "PYTHONPATH": plugin_path}
    done = subprocess.run([sys.executable, "-m", "apptool", "plugins"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0
    assert "failed to load" in done.stderr and "broken_hook" in done.stderr
    assert "digits_demo" in done.stdout


def test_unknown_task_lists_installed_ones(scaffold_task):
    from apptool.errors import ConfigError
    from apptool.plugins import get_plugins

    with pytest.raises(ConfigError, match="digits_demo"):
        get_plugins().task("no_such_task")
