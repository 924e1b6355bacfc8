"""Extension points beyond tasks: a plugin adds a backbone, a dataset reader, an exporter and a command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from broken_plugins import HOOK_TYPO, RAISING_EXTRAS
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


# -- isolation and attribution, in process ------------------------------------------------------------------
RAISING_AT_USE = textwrap.dedent("""
    import apptool


    @apptool.hookimpl
    def apptool_exporters():
        def needs_a_key(bundle_dir, out_dir):
            return {}["a key this exporter expected"]

        return {"needs_a_key": needs_a_key}


    @apptool.hookimpl
    def apptool_dataset_readers():
        def unreadable(data_dir, config):
            raise ValueError(f"cannot read {data_dir}")

        return {"digits_demo": {"unreadable": unreadable}}
""")
LABEL_ORDER_READERS = textwrap.dedent("""
    import apptool
    from apptool.plugins import get_plugins
    from apptool.task import Splits


    @apptool.hookimpl
    def apptool_dataset_readers():
        def builtin(data_dir, config):
            return get_plugins().task("digits_demo").load_data(config, None)

        def classes_reversed(data_dir, config):
            splits = builtin(data_dir, config)
            labels = splits.info["labels"]
            flip = lambda pairs: [(image, len(labels) - 1 - label) for image, label in pairs]
            return Splits(flip(splits.train), flip(splits.test), {**splits.info, "labels": labels[::-1]})

        return {"digits_demo": {"builtin": builtin, "classes_reversed": classes_reversed}}
""")


@pytest.fixture
def plugins_with(monkeypatch, tmp_path, scaffold_task):
    """A fresh plugin manager, used as the process-wide one, holding the scaffold task and plugins loaded from sources."""
    import importlib.metadata

    from apptool import plugins as plugins_module

    def make(**sources: str):
        fresh = plugins_module.Plugins(only=[])
        fresh.register(sys.modules[type(scaffold_task).__module__.rsplit(".", 1)[0] + ".plugin"], "digits_demo")
        monkeypatch.syspath_prepend(str(tmp_path))
        for name, source in sources.items():
            (tmp_path / f"{name}.py").write_text(source)
            monkeypatch.delitem(sys.modules, name, raising=False)
            fresh.load(importlib.metadata.EntryPoint(name, name, "apptool"))
        monkeypatch.setattr(plugins_module, "get_plugins", lambda: fresh)
        return fresh

    return make


def test_an_exporter_failing_at_export_time_is_one_line_naming_the_plugin(plugins_with, scaffold_bundle, tmp_path):
    from apptool.export_formats import run_exporter
    from apptool.plugins import PluginError

    plugins_with(raising_at_use=RAISING_AT_USE)
    with pytest.raises(PluginError) as caught:
        run_exporter("needs_a_key", scaffold_bundle, tmp_path / "out")
    message = str(caught.value)
    assert "\n" not in message and "'raising_at_use'" in message and "KeyError" in message
    line = next(i for i, text in enumerate(RAISING_AT_USE.splitlines(), 1) if "return {}[" in text)
    assert message.endswith(f"raising_at_use.py:{line})")


def test_a_failing_reader_is_one_line_and_a_raising_readers_hook_spares_the_others(plugins_with, scaffold_task, tmp_path):
    from apptool.datasets import load_splits, plugin_readers
    from apptool.errors import ConfigError
    from apptool.plugins import PluginError

    plugins = plugins_with(raising_at_use=RAISING_AT_USE, raising_extras=RAISING_EXTRAS)
    assert list(plugin_readers("digits_demo")) == ["unreadable"]
    assert [(e.name, e.hook) for e in plugins.load_errors] == [("raising_extras", "apptool_dataset_readers")]
    config = scaffold_task.config("tiny", {"data": {"format": "unreadable"}})
    with pytest.raises(PluginError, match=r"plugin 'raising_at_use' failed in dataset reader 'unreadable': ValueError"):
        load_splits(scaffold_task, config, tmp_path)
    with pytest.raises(ConfigError, match="'raising_extras' .*readers exploded"):
        load_splits(scaffold_task, {**config, "data": {"format": "parquet"}}, tmp_path)


def test_a_backbone_from_a_plugin_that_failed_names_that_plugin(plugins_with):
    from apptool.backbones import create_encoder
    from apptool.errors import ConfigError

    plugins_with(hook_typo=HOOK_TYPO)
    with pytest.raises(ConfigError, match=r"'typo_net' comes from plugin 'hook_typo', which failed: unknown hook"):
        create_encoder("typo_net")


def test_eval_refuses_data_whose_classes_are_in_another_order(plugins_with, scaffold_bundle, tmp_path):
    from apptool.bundle import read_metrics
    from apptool.errors import DataError
    from apptool.evaluation import evaluate_bundle

    plugins_with(label_order=LABEL_ORDER_READERS)
    same = evaluate_bundle(scaffold_bundle, tmp_path, data_options={"format": "builtin"})
    assert same["accuracy"] == pytest.approx(read_metrics(scaffold_bundle)["test"]["accuracy"])
    with pytest.raises(DataError, match="labels differ from the bundle's .the same names in another order"):
        evaluate_bundle(scaffold_bundle, tmp_path, data_options={"format": "classes_reversed"})


def test_cli_refuses_what_it_would_otherwise_ignore_or_leave_behind(scaffold_task, scaffold_bundle, tmp_path):
    from typer.testing import CliRunner

    from apptool.cli import app
    from apptool.errors import ConfigError, DataError

    runner = CliRunner()
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "new-bundle"
    failed = runner.invoke(app, ["train", "digits_demo", "--data", str(empty), "--out", str(out), "--quiet"])
    assert isinstance(failed.exception, DataError) and not out.exists()
    refused = runner.invoke(app, ["train", "digits_demo", "--backbone", "resnet10t", "--out", str(out)])
    assert isinstance(refused.exception, ConfigError) and "uses no pretrained encoder" in str(refused.exception)
    not_data = runner.invoke(app, ["eval", str(scaffold_bundle), "--set", "train.lr=0.1"])
    assert isinstance(not_data.exception, ConfigError) and "data.* keys only" in str(not_data.exception)
    for option, why in (
        ("data.fromat=csv", "unknown config key 'data.fromat'"),
        ("data.test_fraction=big", "data.test_fraction = 'big'"),
    ):
        bad = runner.invoke(app, ["eval", str(scaffold_bundle), "--set", option])
        assert isinstance(bad.exception, ConfigError) and why in str(bad.exception), option


def test_model_card_names_the_bundle_folder(scaffold_bundle):
    card = (scaffold_bundle / "card.md").read_text()
    assert "{this folder}" not in card and f"apptool eval {scaffold_bundle} --json" in card


CALLBACKS_PLUGIN = textwrap.dedent("""
    import apptool
    from apptool.engine.callbacks import Callback

    EVENTS = []
    FAIL = False


    class Recorder(Callback):
        def on_epoch_start(self, trainer, epoch):
            EVENTS.append(f"start {epoch}")
            if epoch == 1:  # a custom schedule: the last epoch trains at a learning rate of 0
                for group in trainer.optimizer.param_groups:
                    group["base_lr"] = 0.0

        def on_validation_end(self, trainer, epoch, val_loss):
            EVENTS.append(f"validated {epoch}")

        def on_checkpoint(self, trainer, path):
            EVENTS.append(f"checkpoint {path.name}")

        def on_epoch_end(self, trainer, epoch, history):
            EVENTS.append(f"end {epoch} csv={(trainer.out_dir / 'metrics.csv').exists()}")

        def on_train_end(self, trainer, history):
            EVENTS.append(f"done {len(history)}")


    class Failing(Callback):
        def on_epoch_end(self, trainer, epoch, history):
            raise KeyError("missing")


    @apptool.hookimpl
    def apptool_train_callbacks(config):
        return [Failing()] if FAIL else [Recorder()]
""")


def fit_tiny(task, out_dir, **train):
    from apptool.engine.trainer import Trainer

    config = task.config("tiny", {"train": {"epochs": 2, **train}})
    trainer = Trainer(task, config, out_dir, progress=False)
    return trainer.fit(task.build_model(config), task.load_data(config, None).train)[1]


def test_train_callbacks_see_every_event_after_the_builtin_writer_and_can_set_the_schedule(plugins_with, tmp_path):
    plugins = plugins_with(callbacks_plugin=CALLBACKS_PLUGIN)
    history = fit_tiny(plugins.task("digits_demo"), tmp_path)
    events = sys.modules["callbacks_plugin"].EVENTS
    assert events == [
        "start 0",
        "validated 0",
        "checkpoint checkpoint.safetensors",
        "end 0 csv=True",
        "start 1",
        "validated 1",
        "checkpoint checkpoint.safetensors",
        "end 1 csv=True",
        "done 2",
    ]
    assert history[0]["lr"] > 0 and history[1]["lr"] == 0.0
    assert (tmp_path / "curves.png").is_file()


def test_a_failing_train_callback_is_one_line_naming_the_plugin(plugins_with, tmp_path, monkeypatch):
    from apptool.plugins import PluginError

    plugins = plugins_with(callbacks_plugin=CALLBACKS_PLUGIN)
    monkeypatch.setattr(sys.modules["callbacks_plugin"], "FAIL", True)
    with pytest.raises(
        PluginError, match=r"plugin 'callbacks_plugin' failed in training callback Failing.on_epoch_end: KeyError"
    ):
        fit_tiny(plugins.task("digits_demo"), tmp_path)


def test_tensorboard_logging_when_asked(plugins_with, tmp_path):
    import importlib.util

    from apptool.errors import ConfigError

    task = plugins_with().task("digits_demo")
    if importlib.util.find_spec("tensorboard") is None:
        with pytest.raises(ConfigError, match="needs the tensorboard package"):
            fit_tiny(task, tmp_path, tensorboard=True)
    else:
        fit_tiny(task, tmp_path, tensorboard=True)
        assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
