"""The hub, launched for real and driven with gradio_client: header, endpoints, errors, queue, upload limit."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import cv2
import httpx
import pytest

from apptool.testing import free_port

TASK = "digits_demo"


def start(blocks, **options):
    from apptool.hub import launch_options

    port = free_port()
    blocks.launch(prevent_thread_lock=True, quiet=True, **{**launch_options("127.0.0.1", port), **options})
    return f"http://127.0.0.1:{port}/"


@pytest.fixture(scope="module")
def hub_url(scaffold_task, scaffold_bundle, tmp_path_factory):
    from apptool.hub import build_hub

    bundles = tmp_path_factory.mktemp("bundles")
    shutil.copytree(scaffold_bundle, bundles / TASK)
    hub = build_hub(bundles, tasks=[TASK])
    yield start(hub)
    hub.close()


@pytest.fixture(scope="module")
def client(hub_url):
    from gradio_client import Client

    return Client(hub_url, verbose=False)


@pytest.fixture
def digit_png(scaffold_task, tmp_path) -> Path:
    path = tmp_path / "digit.png"
    cv2.imwrite(str(path), scaffold_task.sample_inputs(scaffold_task.config("tiny"), 1, seed=2)[0][:, :, ::-1])
    return path


def test_header_lists_the_models_their_metrics_and_the_provider(client, hub_url):
    status = client.predict(api_name="/models")
    (row,) = status["models"]
    assert row["task"] == TASK and row["status"] == "ready" and row["preset"] == "tiny"
    assert 0 <= row["metrics"]["accuracy"] <= 1 and row["provider"].endswith("ExecutionProvider")
    config = httpx.get(hub_url + "config", timeout=30).json()
    texts = [c.get("props", {}).get("value") for c in config["components"] if c.get("type") == "markdown"]
    header = next(t for t in texts if isinstance(t, str) and t.startswith("# apptool demo hub"))
    assert f"`{TASK}`" in header and "accuracy" in header and row["provider"] in header


def test_a_tab_endpoint_answers(client, digit_png):
    from gradio_client import handle_file

    result = client.predict(handle_file(str(digit_png)), api_name=f"/{TASK}_predict")
    assert result["label"] in [str(d) for d in range(10)]


def test_a_bad_upload_gets_a_readable_message_not_a_traceback(client, tmp_path):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    bad = tmp_path / "holiday.png"
    bad.write_bytes(b"this is a text file wearing a .png name\n" * 10)
    with pytest.raises(AppError) as caught:
        client.predict(handle_file(str(bad)), api_name=f"/{TASK}_predict")
    message = str(caught.value)
    assert "holiday.png" in message and "could not read" in message
    assert "Traceback" not in message and "/tmp/" not in message and "preprocess" not in message


def test_an_oversized_upload_is_refused(hub_url, tmp_path):
    from apptool.hub import MAX_UPLOAD

    limit = int(MAX_UPLOAD.removesuffix("mb")) * 1024 * 1024
    big = tmp_path / "huge.png"
    with open(big, "wb") as handle:
        handle.truncate(limit + 1024 * 1024)
    with open(big, "rb") as handle:
        answer = httpx.post(hub_url + "gradio_api/upload", files={"files": ("huge.png", handle, "image/png")}, timeout=120)
    assert answer.status_code == 413, answer.text[:300]
    assert "exceeded maximum allowed size" in answer.text


def test_a_full_queue_answers_busy_instead_of_growing(tmp_path):
    """Queue of 1 and a slow handler: one request runs, one waits, the rest are told the queue is full."""
    import gradio as gr
    from gradio_client import Client

    from apptool.demo import CONCURRENCY_ID
    from apptool.hub import configure_queue

    with gr.Blocks() as blocks:
        box = gr.Textbox()
        out = gr.Textbox()
        gr.Button().click(lambda text: time.sleep(3) or text, box, out, concurrency_id=CONCURRENCY_ID, api_name="slow")
    configure_queue(blocks, max_size=1)
    url = start(blocks)
    try:
        outcomes: list[str] = []
        lock = threading.Lock()

        def call(i):
            try:
                answer = Client(url, verbose=False).predict(str(i), api_name="/slow")
            except Exception as exc:  # the client's QueueError, or an AppError carrying the server's message
                answer = f"error: {exc}"
            with lock:
                outcomes.append(answer)

        threads = [threading.Thread(target=call, args=(i,)) for i in range(5)]
        for thread in threads:
            thread.start()
            time.sleep(0.3)  # the first request is running before the others arrive
        for thread in threads:
            thread.join(60)
    finally:
        blocks.close()
    served = [o for o in outcomes if not o.startswith("error")]
    busy = [o for o in outcomes if o.startswith("error")]
    assert 1 <= len(served) <= 2 and len(busy) >= 3, outcomes
    assert all("queue is full" in o.lower() for o in busy), busy


def test_a_missing_model_trains_in_the_background_and_the_tab_becomes_ready(scaffold_task, scaffold_env, tmp_path):
    from gradio_client import Client

    from apptool.background import BackgroundTrainer
    from apptool.hub import build_hub

    trainer = BackgroundTrainer.for_missing(tmp_path / "bundles", [TASK], preset="tiny", env=scaffold_env, niceness=0)
    hub = build_hub(tmp_path / "bundles", tasks=[TASK], trainer=trainer)
    url = start(hub)
    trainer.start()
    try:
        client = Client(url, verbose=False)
        seen = {client.predict(api_name="/models")["models"][0]["status"]}
        assert seen <= {"queued", "training"}
        deadline = time.time() + 240
        while time.time() < deadline:
            row = client.predict(api_name="/models")["models"][0]
            seen.add(row["status"])
            if row["status"] in ("ready", "failed", "missing"):
                break
            time.sleep(2)
        assert row["status"] == "ready", (seen, trainer.jobs[TASK].error)
        assert row["preset"] == "tiny" and "accuracy" in row["metrics"]
        assert (tmp_path / "bundles" / TASK / "config.json").exists()
        assert (tmp_path / "bundles" / ".training-logs" / f"{TASK}.log").exists()
    finally:
        trainer.stop()
        hub.close()


def test_a_failed_training_is_reported_in_its_tab(scaffold_task, tmp_path):
    from apptool.background import BackgroundTrainer
    from apptool.hub import Models

    # without the scaffold on its path, the training subprocess does not know the task and exits with an error
    trainer = BackgroundTrainer(tmp_path / "bundles", [TASK], preset="tiny", env={"PATH": "/usr/bin:/bin"})
    trainer.start()
    deadline = time.time() + 120
    while trainer.busy(TASK) and time.time() < deadline:
        time.sleep(0.5)
    text = Models(tmp_path / "bundles", {TASK: scaffold_task}, trainer).pending_markdown(TASK)
    assert trainer.jobs[TASK].state == "failed"
    assert "Training Digits demo failed" in text and "apptool train digits_demo" in text
    assert "digits_demo" in trainer.jobs[TASK].error, "the log's last lines say why"


def test_guard_shows_user_errors_as_one_line_without_server_paths(scaffold_bundle):
    import gradio as gr

    from apptool.demo import DemoContext
    from apptool.errors import InputError
    from apptool.runtime import Predictor

    ctx = DemoContext(Predictor(scaffold_bundle))

    def handler(path):
        raise InputError(f"{path}: not a UTF-8 text file (see http://example.org/formats/ts.html)")

    with pytest.raises(gr.Error) as caught:
        ctx.guard(handler)("/tmp/gradio/0123abcd/walk.csv")
    assert caught.value.message == "walk.csv: not a UTF-8 text file (see http://example.org/formats/ts.html)"
    with pytest.raises(gr.Error, match="ZeroDivisionError: division by zero"):
        ctx.guard(lambda: 1 / 0)()


def test_a_demo_that_fails_to_build_is_reported_in_its_tab_and_the_hub_still_serves(
    scaffold_task, scaffold_bundle, tmp_path, monkeypatch
):
    from apptool.hub import build_hub

    shutil.copytree(scaffold_bundle, tmp_path / TASK)

    def broken_demo(ctx):
        raise RuntimeError("this plugin's demo has a bug")

    monkeypatch.setattr(scaffold_task, "demo", broken_demo)
    hub = build_hub(tmp_path, tasks=[TASK])
    texts = [getattr(block, "value", "") for block in hub.blocks.values()]
    assert any(isinstance(t, str) and "demo failed to build" in t and "has a bug" in t for t in texts)


def test_the_load_test_script_reports_latency_and_no_errors(hub_url, capsys):
    import importlib.util
    import json

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "load_test.py"
    spec = importlib.util.spec_from_file_location("load_test", path)
    load_test = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(load_test)
    assert load_test.main(["--url", hub_url, "--requests", "6", "--concurrency", "3", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["task"] == TASK and row["endpoint"] == f"/{TASK}_predict"
    assert row["ok"] == 6 and row["errors"] == 0 and 0 < row["p50_ms"] <= row["p95_ms"]
