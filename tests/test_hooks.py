"""Extension points beyond tasks: a plugin adds a backbone, a dataset reader, an exporter and a command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from conftest import make_discoverable

EXTRAS_PLUGIN = textwrap.dedent('''
    """A third-party plugin that extends apptool without adding a task."""
    import json
    from pathlib import Path

    import apptool


    @apptool.hookimpl
    def apptool_backbones():
        return {"tiny_resnet": {"model_name": "resnet10t", "drop_rate": 0.0}}


    @apptool.hookimpl
    def apptool_dataset_readers():
        def halves(data_dir, config):
            from apptool.plugins import get_plugins

            splits = get_plugins().task("digits_demo").load_data(config, None)
            (Path(data_dir) / "reader-was-used").write_text("yes")
            return type(splits)(splits.train[:200], splits.test[:100], splits.info)

        return {"digits_demo": {"first_200": halves}}


    @apptool.hookimpl
    def apptool_exporters():
        def manifest(bundle_dir, out_dir):
            out_dir = Path(out_dir or Path(bundle_dir) / "manifest")
            out_dir.mkdir(parents=True, exist_ok=True)
            files = sorted(p.name for p in Path(bundle_dir).iterdir() if p.is_file())
            (out_dir / "manifest.json").write_text(json.dumps(files))
            return out_dir

        return {"manifest": manifest}


    @apptool.hookimpl
    def apptool_cli_commands(app):
        @app.command("hello")
        def hello(name: str = "world"):
            print(f"hello {name} from a plugin")
''')


@pytest.fixture(scope="module")
def env(scaffold_root, tmp_path_factory):
    root = tmp_path_factory.mktemp("extras")
    (root / "apptool_extras.py").write_text(EXTRAS_PLUGIN)
    make_discoverable(root, "apptool-extras", {"extras": "apptool_extras"})
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(scaffold_root)]), "APPTOOL_PLUGINS": "digits_demo,extras"}


def run(env, *args, ok=True):
    done = subprocess.run(
        [sys.executable, "-m", "apptool", *map(str, args)], env=env, capture_output=True, text=True, timeout=600
    )
    if ok:
        assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_plugin_command_is_added(env):
    assert "hello Ada from a plugin" in run(env, "hello", "--name", "Ada").stdout


def test_plugin_backbone_is_created_like_a_timm_model(env):
    script = "from apptool.backbones import create_encoder\ne = create_encoder('tiny_resnet')\nprint(e.feature_info.channels())"
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[64, 64, 128, 256, 512]"


def test_plugin_reader_and_exporter(env, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    bundle = tmp_path / "bundle"
    run(
        env,
        "train",
        "digits_demo",
        "--preset",
        "tiny",
        "--data",
        data,
        "--set",
        "data.format=first_200",
        "--quiet",
        "--out",
        bundle,
    )
    assert (data / "reader-was-used").read_text() == "yes"
    assert json.loads((bundle / "metrics.json").read_text())["training"]["train_samples"] == 200
    run(env, "export", bundle, "--format", "manifest", "--out", tmp_path / "m")
    assert "model.onnx" in json.loads((tmp_path / "m" / "manifest.json").read_text())
    missing = run(env, "train", "digits_demo", "--data", data, "--set", "data.format=parquet", "--out", tmp_path / "x", ok=False)
    assert "no reader for task 'digits_demo'" in missing.stderr and "first_200" in missing.stderr


def test_plugins_lists_the_extension_hooks(env):
    listing = json.loads(run(env, "plugins", "--json").stdout)
    extras = next(p for p in listing["plugins"] if p["name"] == "extras")
    assert extras["hooks"] == ["apptool_backbones", "apptool_cli_commands", "apptool_dataset_readers", "apptool_exporters"]
    assert extras["tasks"] == []
