"""The hub's background trainer: tiny models first, then the preset's, each swapped in only when complete."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from apptool.background import DONE, FAILED, BackgroundTrainer

FAKE_TRAIN = """
import json, os, sys, time
from pathlib import Path
args = sys.argv[sys.argv.index("train") + 1:]
task, preset, out = args[0], args[args.index("--preset") + 1], Path(args[args.index("--out") + 1])
if task == "broken":
    sys.exit("broken: no such task")
meeting = os.environ.get("MEETING")  # a folder where runs that should overlap wait up to 20 s for each other
if meeting:
    (Path(meeting) / task).touch()
    deadline = time.time() + 20
    while len(list(Path(meeting).iterdir())) < 2 and time.time() < deadline:
        time.sleep(0.05)
out.mkdir(parents=True, exist_ok=True)
(out / "weights.safetensors").write_text(preset)
(out / "config.json").write_text(json.dumps({"task": task, "preset": preset, "threads": os.environ["OMP_NUM_THREADS"],
    "met": len(list(Path(meeting).iterdir())) if meeting else 0}))
"""


def fake_python(tmp_path: Path) -> str:
    """An interpreter stand-in whose `-m apptool train` writes a bundle naming its preset at once."""
    script = tmp_path / "fake_train.py"
    script.write_text(FAKE_TRAIN)
    wrapper = tmp_path / "python"
    wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} {script} "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


def wait_idle(trainer: BackgroundTrainer, seconds: float = 60) -> None:
    trainer.start()
    deadline = time.time() + seconds
    while not trainer.idle() and time.time() < deadline:
        time.sleep(0.05)
    trainer.stop()


def preset_of(bundle: Path) -> str:
    return json.loads((bundle / "config.json").read_text())["preset"]


def test_tiny_models_come_first_then_the_preset_replaces_them(tmp_path):
    bundles = tmp_path / "bundles"
    trainer = BackgroundTrainer.for_missing(bundles, ["a", "b"], "quick", python=fake_python(tmp_path), niceness=0)
    order = [(job.task, job.preset) for job in [*trainer.jobs.values(), *trainer.upgrades.values()]]
    assert order == [("a", "tiny"), ("b", "tiny"), ("a", "quick"), ("b", "quick")]
    assert trainer.current("a") is trainer.jobs["a"] and trainer.generation("a") == 0
    wait_idle(trainer)
    for name in ("a", "b"):
        assert preset_of(bundles / name) == "quick" and (bundles / name / "weights.safetensors").read_text() == "quick"
        assert trainer.generation(name) == 2 and trainer.current(name) is trainer.upgrades[name]
    assert not list((bundles / ".staging").iterdir()) and not list(bundles.glob(".retired-*"))


def test_train_first_trains_every_first_model_two_at_a_time_and_leaves_the_upgrades_queued(tmp_path):
    bundles = tmp_path / "bundles"
    trainer = BackgroundTrainer.for_missing(bundles, ["a", "b", "broken"], "quick", python=fake_python(tmp_path), niceness=0)
    ended = {job.task: job.state for job in trainer.train_first()}
    assert ended == {"a": DONE, "b": DONE, "broken": FAILED}
    assert preset_of(bundles / "a") == "tiny" and preset_of(bundles / "b") == "tiny"
    assert all(job.state == "queued" for job in trainer.upgrades.values()) and not trainer.busy("a")
    wait_idle(trainer)  # the background thread trains only the upgrades
    assert preset_of(bundles / "a") == "quick" and trainer.generation("a") == 2
    assert trainer.upgrades["broken"].state == FAILED and "first model failed" in trainer.upgrades["broken"].error


def test_upgrades_train_two_at_a_time_with_a_share_of_the_cores_each(tmp_path, monkeypatch):
    bundles, meeting = tmp_path / "bundles", tmp_path / "meeting"
    meeting.mkdir()
    for name in ("a", "b"):  # both on their tiny models already: only the two upgrades run
        (bundles / name).mkdir(parents=True)
        (bundles / name / "config.json").write_text(json.dumps({"task": name, "preset": "tiny"}))
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    env = {"PATH": "/usr/bin:/bin", "MEETING": str(meeting)}
    trainer = BackgroundTrainer.for_missing(bundles, ["a", "b"], "quick", python=fake_python(tmp_path), niceness=0, env=env)
    wait_idle(trainer)
    for name in ("a", "b"):
        config = json.loads((bundles / name / "config.json").read_text())
        assert config["preset"] == "quick" and config["met"] == 2, "the two upgrades ran one after the other"
        assert config["threads"] == "4", "each of two runs gets half of the 8 cores"


def test_a_hub_restarted_on_tiny_models_only_upgrades_them(tmp_path):
    bundles = tmp_path / "bundles"
    for name, preset in (("on_tiny", "tiny"), ("on_quick", "quick")):
        (bundles / name).mkdir(parents=True)
        (bundles / name / "config.json").write_text(json.dumps({"task": name, "preset": preset}))
    trainer = BackgroundTrainer.for_missing(bundles, ["on_tiny", "on_quick", "new"], "quick", python=fake_python(tmp_path))
    assert sorted(trainer.jobs) == ["new"] and sorted(trainer.upgrades) == ["new", "on_tiny"]
    assert not trainer.busy("on_tiny"), "a task on its tiny model is served while it upgrades"


def test_a_failed_upgrade_keeps_the_served_model(tmp_path):
    bundles = tmp_path / "bundles"
    (bundles / "broken").mkdir(parents=True)
    (bundles / "broken" / "config.json").write_text(json.dumps({"task": "broken", "preset": "tiny"}))
    trainer = BackgroundTrainer.for_missing(bundles, ["broken"], "quick", python=fake_python(tmp_path), niceness=0)
    wait_idle(trainer)
    assert trainer.upgrades["broken"].state == FAILED and "no such task" in trainer.upgrades["broken"].error
    assert preset_of(bundles / "broken") == "tiny" and trainer.generation("broken") == 0


def test_one_preset_trains_once(tmp_path):
    trainer = BackgroundTrainer.for_missing(tmp_path, ["a"], "tiny", python=fake_python(tmp_path), niceness=0)
    assert not trainer.upgrades
    wait_idle(trainer)
    assert trainer.jobs["a"].state == DONE and preset_of(tmp_path / "a") == "tiny"


def test_the_hub_swaps_to_the_upgraded_bundle_and_keeps_the_old_one_for_requests_in_flight(
    scaffold_task, scaffold_bundle, tmp_path
):
    import shutil

    from apptool.background import promote
    from apptool.hub import Models

    name = scaffold_task.name
    bundles = tmp_path / "bundles"
    shutil.copytree(scaffold_bundle, bundles / name)
    trainer = BackgroundTrainer.for_missing(bundles, [name], "quick")
    models = Models(bundles, {name: scaffold_task}, trainer)
    tiny = models.context(name)
    assert tiny is not None and models.version(name) == 0 and not models.settled(name) and models.waiting()
    assert "queued" in models.pending_markdown(name) and "runs the model it has" in models.pending_markdown(name)

    upgrade = trainer.upgrades[name]
    shutil.copytree(scaffold_bundle, upgrade.target)
    config = json.loads((upgrade.target / "config.json").read_text())
    (upgrade.target / "config.json").write_text(json.dumps({**config, "preset": "quick"}))
    promote(upgrade.target, upgrade.replaces)
    upgrade.state = DONE
    held = tiny.predictor  # what a request in flight holds
    swapped = models.context(name)
    assert swapped is tiny, "one context per tab: a tab built on the tiny model runs the new one from its next call"
    assert swapped.predictor is not held and swapped.config["preset"] == "quick" and held.config["preset"] == "tiny"
    assert models.version(name) == 1 and models.settled(name) and not models.waiting()
    assert held.predict(scaffold_task.sample_inputs(held.config, 1))  # a request already holding it finishes
