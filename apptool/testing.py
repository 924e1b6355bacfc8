"""The conformance suite every task plugin runs against itself (a pytest plugin, entry point ``pytest11``).

Subclass :class:`TaskConformance` in your plugin's tests and set ``task_name``::

    from apptool.testing import TaskConformance

    class TestConformance(TaskConformance):
        task_name = "my_task"

It checks the contract on the task's ``tiny`` bundle (trained once per test run,
see :func:`shared_bundle`):
the task builds, a few steps on a fixed batch lower the loss, the bundle
round-trips, export passes parity, predict runs without torch, the demo tab
builds and answers through gradio_client, and bad inputs give clear errors.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from apptool.errors import AppToolError, InputError

NO_TORCH_PREDICT = textwrap.dedent("""
    import importlib, json, sys
    sys.modules["torch"] = None  # importing torch now fails, as on a deployment without it
    sys.path.insert(0, {root!r})
    module = importlib.import_module({module!r})
    task = getattr(module, {cls!r})()
    from apptool.runtime import Predictor
    from apptool.testing import load_items
    items = load_items({items_file!r})
    predictor = Predictor({bundle!r}, task=task)
    print(json.dumps({{"n": len(predictor.predict(items)), "provider": predictor.provider,
                       "torch": "torch" in sys.modules and sys.modules["torch"] is not None}}))
""")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def connect_client(url: str, timeout: float = 120.0):
    """A gradio_client Client for a hub that may still be starting (retried until ``timeout`` seconds)."""
    import time

    from gradio_client import Client

    deadline = time.monotonic() + timeout
    while True:
        try:
            return Client(url, verbose=False)
        except Exception:  # not listening yet: connection refused, or a half-started app
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _run_folder(tmp_path_factory) -> Path:
    """A folder all pytest-xdist workers of this run share (the run's temporary root); the session's own without xdist."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def shared_bundle(tmp_path_factory):
    """``shared_bundle(task, preset="tiny")``: the task's bundle of that preset, trained once per test run.

    Every test module and every pytest-xdist worker gets the same folder: the first to ask trains it while
    the others wait on a file lock, so a suite that needs a task's model does not train its own copy.
    Treat it as read-only; copy it before changing it.
    """
    from filelock import FileLock  # a dependency of torch, which training needs anyway

    from apptool.bundle import CONFIG
    from apptool.engine import train

    root = _run_folder(tmp_path_factory) / "shared-bundles"
    root.mkdir(exist_ok=True)

    def get(task, preset: str = "tiny") -> Path:
        out = root / f"{task.name}-{preset}"
        with FileLock(f"{out}.lock"):
            if not (out / CONFIG).is_file():  # config.json is written last: a bundle without it is unfinished
                train(task, task.config(preset), out, progress=False)
        return out

    return get


def one_batch(task, config, size: int = 8):
    """A fixed training batch, collated as the trainer collates it."""
    splits = task.load_data(config, None)
    samples = [splits.train[i] for i in range(min(size, len(splits.train)))]
    return task.collate(samples)


class TaskConformance:
    """Contract tests for one task; subclasses set ``task_name`` (or override the ``task`` fixture)."""

    task_name: str = ""
    preset: str = "tiny"
    loss_steps: int = 5

    @pytest.fixture(scope="class")
    @classmethod
    def task(cls):
        from apptool.plugins import get_plugins

        return get_plugins().task(cls.task_name)

    @pytest.fixture(scope="class")
    @classmethod
    def config(cls, task):
        return task.config(cls.preset)

    @pytest.fixture(scope="class")
    @classmethod
    def bundle(cls, task, shared_bundle):
        return shared_bundle(task, cls.preset)

    # -- the task itself ---------------------------------------------------------
    def test_task_declares_its_contract(self, task, config):
        assert task.name and task.metrics and task.primary_metric in task.metrics
        assert {"tiny", "quick", "full"} <= set(task.presets)
        assert config["task"] == task.name and "train" in config
        json.dumps(config)  # configs travel inside bundles and ONNX files as JSON

    def test_a_few_steps_lower_the_loss_on_a_fixed_batch(self, task, config):
        import torch

        torch.manual_seed(0)
        model = task.build_model(config).train()
        batch = one_batch(task, config)
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=float(config["train"]["lr"]))
        with torch.no_grad():
            model.eval()
            before = task.loss(model, batch).item()
        model.train()
        for _ in range(self.loss_steps):
            optimizer.zero_grad()
            task.loss(model, batch).backward()
            optimizer.step()
        with torch.no_grad():
            model.eval()
            after = task.loss(model, batch).item()
        assert np.isfinite(before) and after < before

    # -- the bundle ----------------------------------------------------------------
    def test_bundle_has_every_part_and_the_metrics(self, task, bundle):
        from apptool.bundle import CARD, CONFIG, METRICS, WEIGHTS, read_config, read_metrics

        names = {p.name for p in Path(bundle).iterdir()}
        config = read_config(bundle)
        assert {CONFIG, WEIGHTS, METRICS, CARD} <= names
        assert {f"{g}.onnx" for g in config["graphs"]} <= names
        assert "checkpoint.safetensors" not in names
        test = read_metrics(bundle)["test"]
        missing = set(task.metrics) - set(test)
        assert not missing, f"evaluate() did not report {missing}"

    def test_bundle_round_trips(self, bundle):
        import torch

        from apptool.bundle import WEIGHTS, load_model, load_state

        model, _, _ = load_model(bundle)
        saved, _ = load_state(Path(bundle) / WEIGHTS)
        for key, value in model.state_dict().items():
            assert torch.equal(value, saved[key]), key

    def test_export_parity_within_tolerance(self, task, bundle, tmp_path):
        from apptool.bundle import load_model, read_metrics
        from apptool.onnx_export import export_onnx

        recorded = read_metrics(bundle)["export"]["parity_max_abs_diff"]
        model, config, _ = load_model(bundle)
        fresh = export_onnx(task, model, dict(config), tmp_path)["parity_max_abs_diff"]
        for graph, diff in {**recorded, **fresh}.items():
            tolerance = next(g.atol for g in task.graphs(model, config) if g.name == graph)
            assert diff <= tolerance, f"graph {graph}: {diff} > {tolerance}"

    def test_eval_reports_the_metrics_on_onnx_runtime(self, task, bundle):
        from apptool.evaluation import evaluate_bundle

        metrics = evaluate_bundle(bundle)
        assert set(task.metrics) <= set(metrics) and metrics["provider"]

    # -- the deployment path -----------------------------------------------------
    def test_predict_runs_without_torch(self, task, config, bundle, tmp_path):
        cls = type(task)
        module = sys.modules[cls.__module__]
        items_file = _save_items(task.sample_inputs(config, 2, seed=3), tmp_path)
        script = NO_TORCH_PREDICT.format(
            root=_import_root(module), module=cls.__module__, cls=cls.__qualname__, bundle=str(bundle), items_file=str(items_file)
        )
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        report = json.loads(done.stdout.strip().splitlines()[-1])
        assert report == {"n": 2, "provider": report["provider"], "torch": False}

    def test_predict_output_is_json(self, task, config, bundle):
        from apptool.runtime import Predictor

        results = Predictor(bundle, task=task).predict(task.sample_inputs(config, 3, seed=4))
        assert len(results) == 3
        json.dumps(results)

    def test_bad_inputs_give_clear_errors(self, task, config, bundle, tmp_path):
        from apptool.runtime import Predictor

        empty = tmp_path / ("empty" + sorted(task.input_suffixes)[0])
        empty.write_bytes(b"")
        corrupt = tmp_path / ("corrupt" + sorted(task.input_suffixes)[0])
        corrupt.write_bytes(b"\x00\x01 this is not what the file claims to be \xff" * 10)
        for path in (empty, corrupt):
            with pytest.raises(AppToolError) as caught:
                list(task.read_input(path))
            assert path.name in str(caught.value)
        if task.input_kind == "image":
            predictor = Predictor(bundle, task=task)
            image = task.sample_inputs(config, 1)[0]
            gray, rgba = image[:, :, 0], np.dstack([image, np.full(image.shape[:2], 255, np.uint8)])
            assert len(predictor.predict([gray, rgba])) == 2
            with pytest.raises(InputError):
                predictor.predict([np.zeros((0, 0, 3), np.uint8)])

    # -- the demo ------------------------------------------------------------------
    def test_demo_tab_builds_and_answers(self, task, config, bundle, tmp_path):
        import gradio as gr
        from gradio_client import handle_file

        from apptool.demo_context import DemoContext
        from apptool.hub import launch_blocks
        from apptool.runtime import Predictor

        ctx = DemoContext(Predictor(bundle, task=task), work_dir=tmp_path)
        with gr.Blocks() as blocks, gr.Tab(task.title or task.name):
            task.demo(ctx)
        blocks.queue()
        port = free_port()
        launch_blocks(blocks, server_name="127.0.0.1", server_port=port, quiet=True)
        try:
            client = connect_client(f"http://127.0.0.1:{port}/")
            endpoints = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
            assert f"/{ctx.api_name()}" in endpoints
            if task.input_kind == "image":
                import cv2

                image_path = tmp_path / "input.png"
                cv2.imwrite(str(image_path), task.sample_inputs(config, 1, seed=5)[0][:, :, ::-1])
                result = client.predict(handle_file(str(image_path)), api_name=f"/{ctx.api_name()}")
                assert result is not None
        finally:
            blocks.close()


def _import_root(module) -> str:
    """The sys.path entry a module was imported from."""
    path = Path(module.__file__).resolve()
    for _ in module.__name__.split("."):
        path = path.parent
    return str(path)


def _save_items(items: list, folder: Path) -> Path:
    """Sample inputs as a file a subprocess reads back without pickle (.npz of arrays, else JSON)."""
    if all(isinstance(item, np.ndarray) for item in items):
        path = folder / "items.npz"
        np.savez(path, *items)
    else:
        path = folder / "items.json"
        path.write_text(json.dumps(items))
    return path


def load_items(path: str) -> list:
    if path.endswith(".npz"):
        with np.load(path, allow_pickle=False) as data:
            return [data[f"arr_{i}"] for i in range(len(data.files))]
    return json.loads(Path(path).read_text())


_TORCH_THREADS = pytest.StashKey[int]()  # the thread count torch is meant to run on in this session


def _configured_torch_threads(stash, torch) -> int:
    """OMP_NUM_THREADS when set (what torch reads at start-up), else torch's count when first seen."""
    if _TORCH_THREADS not in stash:
        asked = os.environ.get("OMP_NUM_THREADS", "")
        stash[_TORCH_THREADS] = int(asked) if asked.isdigit() and int(asked) > 0 else torch.get_num_threads()
    return stash[_TORCH_THREADS]


@pytest.fixture(autouse=True)
def _torch_threads_stay_as_configured(request):
    """Put torch's thread count back after a test that changed it.

    numba shares OpenMP with torch, so a numba search (dbn_hashing's index, aeon's DTW in gesture's
    baseline) sets torch's thread count too, even before torch is imported; every later test in that
    worker would then train on more threads than OMP_NUM_THREADS asks for, and on a busy machine spin
    far more CPU than it gains (10x on image_classification's fine-tuning test).
    """
    torch = sys.modules.get("torch")
    if torch is not None:
        _configured_torch_threads(request.config.stash, torch)
    yield
    torch = sys.modules.get("torch")
    if torch is not None:
        wanted = _configured_torch_threads(request.config.stash, torch)
        if torch.get_num_threads() != wanted:
            torch.set_num_threads(wanted)


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "conformance: apptool task conformance suite")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
