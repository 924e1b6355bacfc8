"""The CUDA paths, run where a GPU is (`make test-gpu`); skipped in one line anywhere else.

On one GPU: AMP training of every installed task's tiny preset, a bit-exact
resume of an AMP run, ONNX Runtime on the CUDA provider (and TensorRT when it
loads) against torch, GPU latency and the ONNX Runtime/torch ratio at batch 1
and 64, and the hub answering a request on CUDA.  A summary table is printed at
the end.  Designed to finish in under 8 minutes on one GPU.
"""

from __future__ import annotations

import os

os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS, before CUDA starts: the resume is bit-exact

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

if not torch.cuda.is_available():
    pytest.skip(
        "no CUDA device (torch.cuda.is_available() is False); make test-gpu runs these checks where one is",
        allow_module_level=True,
    )

from apptool.plugins import get_plugins  # noqa: E402

pytestmark = pytest.mark.gpu
TASKS = sorted(name for name, task in get_plugins().tasks.items() if "tiny" in task.presets)
FP32_PARITY, FP16_PARITY = 1e-4, 1e-3
BENCH_BATCH = 64
GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")
TRT_TASK = "steering" if "steering" in TASKS else TASKS[0]


@pytest.fixture(scope="module")
def gpu_bundles(tmp_path_factory, gpu_summary):
    """Every task's tiny preset trained once on the GPU (AMP on), shared by the checks below."""
    import time

    from apptool.bundle import read_metrics
    from apptool.engine import train

    bundles: dict[str, object] = {}
    for name in TASKS:
        task = get_plugins().task(name)
        started = time.perf_counter()
        try:
            bundles[name] = train(task, task.config("tiny"), tmp_path_factory.mktemp(name), progress=False)
        except Exception as exc:  # one task's failure is that task's tests' failure, not every task's
            bundles[name] = exc
            continue
        value = read_metrics(bundles[name]).get("test", {}).get(task.primary_metric)
        value = f"{value:.4g}" if isinstance(value, (int, float)) else str(value)
        seconds = time.perf_counter() - started
        gpu_summary.append({"check": "train tiny (AMP)", "task": name, "figure": task.primary_metric, "value": value})
        gpu_summary.append({"check": "train tiny (AMP)", "task": name, "figure": "seconds", "value": f"{seconds:.1f}"})
    return bundles


def bundle_of(bundles: dict, name: str):
    if isinstance(bundles[name], Exception):
        raise bundles[name]
    return bundles[name]


@pytest.mark.parametrize("name", TASKS)
def test_amp_training_runs_on_the_gpu(name, gpu_bundles):
    from apptool.bundle import load_state, read_metrics
    from apptool.engine.checkpoint import CHECKPOINT

    training = read_metrics(bundle_of(gpu_bundles, name))["training"]
    assert training["device"].startswith("cuda"), training
    checkpoint = bundle_of(gpu_bundles, name) / CHECKPOINT
    if checkpoint.exists():  # tasks trained by the shared trainer: the loss scale is saved for resume
        _, meta = load_state(checkpoint)
        assert meta["grad_scaler"]["scale"] > 0
        assert all(np.isfinite(row["train_loss"]) for row in meta["progress"]["history"])


def test_an_amp_run_resumes_bit_exact(scaffold_task, tmp_path, monkeypatch, gpu_summary):
    from test_resume import EPOCHS, KILLED_AT, run_process

    from apptool.bundle import load_state
    from apptool.engine.checkpoint import CHECKPOINT

    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)
    torch.use_deterministic_algorithms(True)
    try:
        config = scaffold_task.config("tiny", {"train": {"epochs": EPOCHS}})
        assert run_process(scaffold_task, config, None, tmp_path / "whole", False, None, monkeypatch) == list(range(EPOCHS))
        run_process(scaffold_task, config, None, tmp_path / "split", False, KILLED_AT, monkeypatch)
        assert run_process(scaffold_task, config, None, tmp_path / "split", True, None, monkeypatch) == list(
            range(KILLED_AT, EPOCHS)
        )
    finally:
        torch.use_deterministic_algorithms(False)
    whole, whole_meta = load_state(tmp_path / "whole" / CHECKPOINT)
    split, split_meta = load_state(tmp_path / "split" / CHECKPOINT)
    assert whole_meta["grad_scaler"] == split_meta["grad_scaler"], "the resumed run must continue on the saved loss scale"
    differing = [key for key in whole if not torch.equal(whole[key], split[key])]
    gpu_summary.append(
        {"check": "AMP resume", "task": scaffold_task.name, "figure": "tensors differing", "value": len(differing)}
    )
    assert not differing


def _max_diff(expected: dict, got: dict, scaled: bool) -> float:
    worst = 0.0
    for name, reference in expected.items():
        reference = reference.astype(np.float64)
        diff = float(np.max(np.abs(reference - got[name].astype(np.float64)), initial=0.0))
        worst = max(worst, diff / max(1.0, float(np.max(np.abs(reference), initial=0.0))) if scaled else diff)
    return worst


@pytest.mark.parametrize("name", TASKS)
def test_onnx_runtime_on_the_gpu_matches_torch(name, gpu_bundles, gpu_summary):
    """fp32 graphs on CUDA within 1e-4 of torch; the fp16 variant, and TensorRT (TF32 by default), within 1e-3 of torch's scale."""
    from apptool.bundle import load_model
    from apptool.export_formats import run_exporter
    from apptool.onnx_export import TorchRunner
    from apptool.runtime import open_session

    bundle = bundle_of(gpu_bundles, name)
    model, config, task = load_model(bundle)
    graphs = task.graphs(model, config)
    reference = TorchRunner(graphs)
    checks = [
        ("CUDAExecutionProvider", bundle, "fp32", FP32_PARITY),
        ("CUDAExecutionProvider", run_exporter("fp16", bundle, None), "fp16", FP16_PARITY),
    ]
    if name == TRT_TASK:  # engines are built per graph and shape: one task keeps the run short
        checks.append(("TensorrtExecutionProvider", bundle, "fp32", FP16_PARITY))
    for provider, folder, precision, tolerance in checks:
        worst, scaled = 0.0, tolerance == FP16_PARITY
        for graph in graphs:
            session = open_session(folder / f"{graph.name}.onnx", [provider, "CUDAExecutionProvider", "CPUExecutionProvider"])
            if session.get_providers()[0] != provider:
                assert provider == "TensorrtExecutionProvider", f"{name}/{graph.name}: {provider} did not load"
                gpu_summary.append({"check": "ONNX parity", "task": name, "figure": "TensorRT", "value": "does not load here"})
                return
            for feeds in graph.examples:
                got = dict(zip(graph.output_names, session.run(list(graph.output_names), feeds)))
                worst = max(worst, _max_diff(reference.run(graph.name, feeds), got, scaled))
        label = f"{provider.removesuffix('ExecutionProvider')} {precision} |diff|{' / max(1, |torch|)' if scaled else ''}"
        gpu_summary.append({"check": "ONNX parity", "task": name, "figure": label, "value": f"{worst:.2e}"})
        assert worst <= tolerance, f"{name} on {provider} ({precision}): {worst:.3g} > {tolerance:g}"


@pytest.mark.parametrize("name", TASKS)
def test_bench_reports_gpu_latency_and_the_ratio(name, gpu_bundles, gpu_summary):
    from apptool.benchmark import bench_bundle

    report = bench_bundle(bundle_of(gpu_bundles, name), BENCH_BATCH, repeats=10)
    assert report["provider"] in GPU_PROVIDERS
    for row in report["rows"]:
        if row["runtime"] == "onnxruntime":
            gpu_summary.append(
                {"check": "bench", "task": name, "figure": f"ORT ms, batch {row['batch']}", "value": f"{row['median_ms']:.2f}"}
            )
    for size, ratio in report["speedup"].items():
        gpu_summary.append(
            {"check": "bench", "task": name, "figure": f"torch eager/ORT time, batch {size}", "value": f"{ratio:.2f}"}
        )
        assert ratio > 0


def test_the_hub_answers_on_cuda(scaffold_task, scaffold_bundle, tmp_path, gpu_summary):
    import shutil

    import cv2
    from gradio_client import Client, handle_file

    from apptool.hub import build_hub, launch_options
    from apptool.testing import free_port

    shutil.copytree(scaffold_bundle, tmp_path / "bundles" / scaffold_task.name)
    hub = build_hub(tmp_path / "bundles", tasks=[scaffold_task.name])
    port = free_port()
    hub.launch(prevent_thread_lock=True, quiet=True, **launch_options("127.0.0.1", port))
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        (row,) = client.predict(api_name="/models")["models"]
        image = tmp_path / "digit.png"
        cv2.imwrite(str(image), scaffold_task.sample_inputs(scaffold_task.config("tiny"), 1, seed=2)[0][:, :, ::-1])
        result = client.predict(handle_file(str(image)), api_name=f"/{scaffold_task.name}_predict")
    finally:
        hub.close()
    gpu_summary.append({"check": "hub", "task": scaffold_task.name, "figure": "provider", "value": row["provider"]})
    assert row["provider"] in GPU_PROVIDERS and result["label"] in [str(d) for d in range(10)]
