"""ONNX Runtime path: provider choice, task tags in the ONNX metadata, and no torch on the deployment path."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import onnx
import pytest

from apptool import runtime
from apptool.errors import BundleError

NO_TORCH_IMPORTS = """
import sys
from importlib.metadata import entry_points
sys.modules["torch"] = None
import apptool.runtime, apptool.predicting, apptool.images, apptool.demo_context, apptool.hub
for ep in entry_points(group="apptool"):
    plugin = ep.load()
    for task in plugin.apptool_tasks():
        __import__(type(task).__module__)
        print(task.name)
"""


def test_providers_filtered_by_what_loads(monkeypatch):
    monkeypatch.setattr(
        runtime._ort(),
        "get_available_providers",
        lambda: ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
    )
    monkeypatch.setattr(runtime, "_library_loads", lambda p: p == "TensorrtExecutionProvider")
    assert runtime.candidate_providers() == ["CPUExecutionProvider"]  # TensorRT needs CUDA underneath
    monkeypatch.setattr(runtime, "_library_loads", lambda p: True)
    assert runtime.candidate_providers() == ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]


def test_session_reports_the_provider_it_really_got(scaffold_bundle):
    session = runtime.open_session(scaffold_bundle / "model.onnx")
    assert session.get_providers()[-1] == "CPUExecutionProvider"
    assert runtime.OnnxRunner(scaffold_bundle, "digits_demo", ["model"]).provider in session.get_providers()


def test_onnx_file_of_another_task_is_refused(scaffold_bundle, tmp_path):
    copy = shutil.copytree(scaffold_bundle, tmp_path / "bundle")
    proto = onnx.load(copy / "model.onnx")
    for prop in proto.metadata_props:
        if prop.key == runtime.METADATA_KEY:
            prop.value = json.dumps({**json.loads(prop.value), "task": "steering"})
    onnx.save(proto, copy / "model.onnx")
    with pytest.raises(BundleError, match="for task 'steering', not 'digits_demo'"):
        runtime.OnnxRunner(copy, "digits_demo", ["model"])


def test_config_travels_inside_the_onnx_file(scaffold_bundle):
    config = runtime.read_onnx_config(scaffold_bundle / "model.onnx")
    assert config["task"] == "digits_demo" and config["labels"][0] == "0" and config["graphs"] == ["model"]


def test_deployment_path_and_every_installed_task_import_without_torch(scaffold_env):
    done = subprocess.run([sys.executable, "-c", NO_TORCH_IMPORTS], env=scaffold_env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "digits_demo" in done.stdout.split()


def test_a_runner_uses_the_threads_it_is_given_and_every_graph_optimisation(scaffold_bundle):
    ort = runtime._ort()
    options = runtime.OnnxRunner(scaffold_bundle, "digits_demo", ["model"], threads=1).sessions["model"].get_session_options()
    assert options.intra_op_num_threads == 1 and options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL


def test_bench_gives_both_runtimes_torchs_threads_and_splits_graph_from_numpy_time(scaffold_bundle):
    import torch

    from apptool.benchmark import bench_bundle

    report = bench_bundle(scaffold_bundle, batch=3, repeats=2)
    assert report["torch_threads"] == report["onnxruntime_threads"] == torch.get_num_threads()
    assert set(report["speedup"]) == set(report["cpu_speedup"]) == {"1", "3"}
    for row in report["rows"]:
        assert 0 < row["graphs_ms"] <= row["median_ms"] and row["numpy_ms"] >= 0 and row["cpu_ms"] > 0
