"""Bundles and checkpoints: safetensors and JSON only; a pickle is refused and never executed."""

from __future__ import annotations

import pickle
import shutil

import pytest
import torch

from apptool.bundle import atomic_write_json, load_model, load_state, read_config, read_json, save_state
from apptool.errors import BundleError


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
    save_state(copy / "weights.safetensors", {"unrelated": torch.zeros(2)})
    with pytest.raises(BundleError, match="does not match the model"):
        load_model(copy)
