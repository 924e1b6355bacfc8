"""Bundles and checkpoints: safetensors and JSON only; a pickle is refused and never executed."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import stat
from pathlib import Path

import onnx
import pytest
import torch

from apptool.bundle import (
    BUILT_IN_DATA,
    CONFIG,
    WEIGHTS,
    atomic_write_bytes,
    atomic_write_json,
    load_model,
    load_state,
    read_config,
    read_json,
    save_state,
)
from apptool.engine import data_origin
from apptool.errors import BundleError
from apptool.runtime import METADATA_KEY, Predictor, read_onnx_config


class Exploit:
    """Unpickling this writes a file: proof that a loader unpickled."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_malicious_pickle_as_checkpoint_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "pwned"
    payload = tmp_path / "weights.safetensors"
    payload.write_bytes(pickle.dumps(Exploit(marker)))
    with pytest.raises(BundleError, match="not a valid safetensors"):
        load_state(payload)
    torch_file = tmp_path / "weights.pt"
    torch_file.write_bytes(pickle.dumps(Exploit(marker)))
    with pytest.raises(BundleError, match="pickle"):
        load_state(torch_file)
    assert not marker.exists()


def test_bundle_with_a_pickle_file_is_refused(scaffold_bundle, tmp_path):
    copy = shutil.copytree(scaffold_bundle, tmp_path / "bundle")
    (copy / "model.pth").write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(BundleError, match="refusing pickle-based files"):
        read_config(copy)


def test_round_trip_of_tensors_and_metadata(tmp_path):
    tensors = {"a": torch.arange(6.0).reshape(2, 3), "b": torch.tensor([1, 2], dtype=torch.int64)}
    save_state(tmp_path / "x.safetensors", tensors, {"epoch": 3, "nested": {"k": [1, 2]}})
    loaded, meta = load_state(tmp_path / "x.safetensors")
    assert meta == {"epoch": 3, "nested": {"k": [1, 2]}}
    assert all(torch.equal(loaded[k], v) for k, v in tensors.items())


def test_atomic_json_leaves_no_temporary_files_and_writes_valid_json(tmp_path):
    atomic_write_json(tmp_path / "m.json", {"nan": float("nan"), "x": 1.5})
    assert read_json(tmp_path / "m.json") == {"nan": None, "x": 1.5}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_directory_without_config_is_not_a_bundle(tmp_path):
    with pytest.raises(BundleError, match="config.json: missing"):
        read_config(tmp_path)
    with pytest.raises(BundleError, match="not a bundle directory"):
        read_config(tmp_path / "nowhere")


def test_corrupt_config_names_the_file(scaffold_bundle, tmp_path):
    copy = shutil.copytree(scaffold_bundle, tmp_path / "bundle")
    (copy / "config.json").write_text("{not json")
    with pytest.raises(BundleError, match="config.json: not valid JSON"):
        read_config(copy)


def test_weights_that_do_not_fit_the_model_are_refused(scaffold_bundle, tmp_path):
    copy = shutil.copytree(scaffold_bundle, tmp_path / "bundle")
    _, meta = load_state(copy / "weights.safetensors")
    save_state(copy / "weights.safetensors", {"unrelated": torch.zeros(2)}, meta)
    with pytest.raises(BundleError, match="does not match the model"):
        load_model(copy)


# -- one run per bundle, checked once on load ---------------------------------------------------
def copy_bundle(scaffold_bundle, tmp_path) -> Path:
    return Path(shutil.copytree(scaffold_bundle, tmp_path / "bundle"))


def edit_config(bundle: Path, **changes) -> None:
    """Change config.json's fields (a value of None removes the field)."""
    config = json.loads((bundle / CONFIG).read_text())
    config.update(changes)
    (bundle / CONFIG).write_text(json.dumps({k: v for k, v in config.items() if v is not None}))


def set_onnx_metadata(path: Path, value: str) -> None:
    proto = onnx.load(path)
    for prop in proto.metadata_props:
        if prop.key == METADATA_KEY:
            prop.value = value
    onnx.save(proto, path)


def test_a_tensor_of_the_wrong_shape_is_one_error_naming_file_and_tensor(scaffold_bundle, tmp_path):
    copy = copy_bundle(scaffold_bundle, tmp_path)
    tensors, meta = load_state(copy / WEIGHTS)
    name = next(k for k, v in tensors.items() if v.ndim and v.is_floating_point())
    tensors[name] = torch.zeros(*(s + 1 for s in tensors[name].shape))
    save_state(copy / WEIGHTS, tensors, meta)
    with pytest.raises(BundleError, match=rf"weights.safetensors: does not match the model \(.*size mismatch for {name}"):
        load_model(copy)


def test_weights_metadata_that_is_not_json_is_refused(scaffold_bundle, tmp_path):
    from safetensors.torch import save

    copy = copy_bundle(scaffold_bundle, tmp_path)
    tensors, _ = load_state(copy / WEIGHTS)
    (copy / WEIGHTS).write_bytes(save(tensors, metadata={"json": "{not json"}))
    with pytest.raises(BundleError, match="weights.safetensors: its metadata is not valid JSON"):
        load_model(copy)


@pytest.mark.parametrize("value, message", [("{oops", "is not valid JSON"), ("[1, 2]", "must be a JSON object, got list")])
def test_onnx_config_metadata_that_is_not_a_json_object_is_refused(scaffold_bundle, tmp_path, value, message):
    copy = copy_bundle(scaffold_bundle, tmp_path)
    set_onnx_metadata(copy / "model.onnx", value)
    with pytest.raises(BundleError, match=f"model.onnx: metadata 'apptool.config' {message}"):
        Predictor(copy)


def test_files_of_another_run_do_not_load_as_one_bundle(scaffold_bundle, tmp_path):
    copy = copy_bundle(scaffold_bundle, tmp_path)
    run_id = read_config(copy)["run_id"]
    assert load_state(copy / WEIGHTS)[1]["run_id"] == run_id == read_onnx_config(copy / "model.onnx")["run_id"]
    edit_config(copy, run_id="0123abcd")
    with pytest.raises(BundleError, match=f"model.onnx is from run {run_id}, but config.json from run 0123abcd: a mixed bundle"):
        Predictor(copy)
    with pytest.raises(BundleError, match=f"weights.safetensors is from run {run_id}, but config.json from run 0123abcd"):
        load_model(copy)


def test_a_config_the_task_cannot_use_is_one_error_naming_the_field(scaffold_task, scaffold_bundle, tmp_path):
    copy = copy_bundle(scaffold_bundle, tmp_path)
    run_id = read_config(copy)["run_id"]
    (copy / CONFIG).write_text(json.dumps({"task": "digits_demo", "graphs": ["model"], "run_id": run_id}))
    predictor = Predictor(copy)  # missing settings take the task's defaults (a bundle of an older plugin)
    with pytest.raises(BundleError, match="config.json \\(task 'digits_demo'\\) lacks field 'labels', which the task reads"):
        predictor.predict(scaffold_task.sample_inputs(predictor.config, 1))
    edit_config(copy, model={"width": "wide"})
    with pytest.raises(BundleError, match="config.json: model.width = 'wide': expected an integer"):
        Predictor(copy)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"bundle_format": 99}, "bundle format 99 is newer than apptool"),
        ({"bundle_format": None, "apptool_version": "99.0"}, "written by apptool 99.0, newer than this"),
        ({"apptool_version": "banana"}, "apptool_version 'banana' is not a version"),
        ({"plugin_version": "99.0"}, "made with the digits_demo plugin 99.0, newer than the installed 0.1.0"),
    ],
)
def test_a_newer_bundle_format_is_refused(scaffold_task, scaffold_bundle, tmp_path, changes, message):
    copy = copy_bundle(scaffold_bundle, tmp_path)
    edit_config(copy, **changes)
    with pytest.raises(BundleError, match=message):
        Predictor(copy)


def test_an_older_bundle_loads(scaffold_task, scaffold_bundle, tmp_path):
    copy = copy_bundle(scaffold_bundle, tmp_path)
    edit_config(copy, bundle_format=None, apptool_version="0.0.1", plugin_version="0.0.1")
    predictor = Predictor(copy)
    assert len(predictor.predict(scaffold_task.sample_inputs(predictor.config, 2))) == 2


def test_the_training_folder_is_data_dir_and_older_bundles_get_it_from_their_label(scaffold_bundle, tmp_path):
    assert read_config(scaffold_bundle)["data_dir"] is None  # trained on the built-in generator
    assert data_origin(Path("rel/data")) == {"data_dir": str(Path("rel/data").resolve()), "data_source": "rel/data"}
    copy = copy_bundle(scaffold_bundle, tmp_path)
    edit_config(copy, bundle_format=2, data_dir=None, data_source=str(tmp_path))  # None removes data_dir
    assert read_config(copy)["data_dir"] == str(tmp_path)  # format 2 kept the folder only in the label
    edit_config(copy, data_source=BUILT_IN_DATA)
    assert read_config(copy)["data_dir"] is None


def test_bundle_files_are_created_with_the_users_umask(scaffold_bundle, tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    for name in (CONFIG, WEIGHTS, "model.onnx", "metrics.json", "card.md", "metrics.csv"):
        assert stat.S_IMODE((scaffold_bundle / name).stat().st_mode) == 0o666 & ~umask, name
    previous = os.umask(0o027)
    try:
        atomic_write_bytes(tmp_path / "x.json", b"{}")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "x.json").stat().st_mode) == 0o640


def test_a_retrain_killed_part_way_leaves_no_bundle_and_resume_finishes_one_run(scaffold_task, tmp_path, monkeypatch):
    from apptool.engine import train
    from apptool.engine.trainer import Trainer

    out = tmp_path / "bundle"
    config = scaffold_task.config("tiny", {"train": {"epochs": 2}})
    train(scaffold_task, config, out, progress=False)
    first = read_config(out)["run_id"]
    (out / ".draft.tmp").write_text("the user's")
    (out / ".apptool-metrics.json.dead.tmp").write_text("")  # what a killed write of this tool leaves

    original, calls = Trainer._validate, {"n": 0}

    def validate_then_die_in_epoch_2(self, *args):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(self, *args)

    monkeypatch.setattr(Trainer, "_validate", validate_then_die_in_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        train(scaffold_task, scaffold_task.config("tiny", {"train": {"epochs": 3}}), out, progress=False)
    with pytest.raises(BundleError, match="config.json: missing"):
        Predictor(out)  # the old config.json no longer vouches for the new weights
    monkeypatch.setattr(Trainer, "_validate", original)
    train(scaffold_task, scaffold_task.config("tiny", {"train": {"epochs": 3}}), out, resume=True, progress=False)
    run_id = read_config(out)["run_id"]
    assert run_id != first
    assert load_state(out / WEIGHTS)[1]["run_id"] == run_id == read_onnx_config(out / "model.onnx")["run_id"]
    assert (out / ".draft.tmp").read_text() == "the user's" and not list(out.glob(".apptool-*"))
    assert len(Predictor(out).predict(scaffold_task.sample_inputs(read_config(out), 1))) == 1


def test_a_users_config_json_in_out_is_never_replaced(scaffold_task, tmp_path):
    from apptool.engine import train
    from apptool.errors import ConfigError

    (tmp_path / CONFIG).write_text('{"theme": "dark"}')
    with pytest.raises(ConfigError, match="config.json: not the config of an apptool bundle; refusing to replace it"):
        train(scaffold_task, scaffold_task.config("tiny"), tmp_path, progress=False)
    assert (tmp_path / CONFIG).read_text() == '{"theme": "dark"}'
