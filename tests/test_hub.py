"""The hub, launched for real and driven with gradio_client: header, endpoints, errors, queue, upload limit."""

from __future__ import annotations

import json
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
    from apptool.hub import launch_blocks, launch_options

    port = free_port()
    launch_blocks(blocks, quiet=True, **{**launch_options("127.0.0.1", port), **options})
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

    from apptool.demo_context import CONCURRENCY_ID
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

    from apptool.demo_context import DemoContext
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


# -- resource limits: request bodies, files per upload, outputs, a broken bundle, stopping ----------------------
def test_files_per_upload_and_non_upload_bodies_are_capped(hub_url):
    from apptool.limits import MAX_FILES_PER_REQUEST, MAX_REQUEST_BYTES

    def upload(count: int) -> httpx.Response:
        files = [("files", (f"x{i}.png", b"tiny", "image/png")) for i in range(count)]
        return httpx.post(hub_url + "gradio_api/upload", files=files, timeout=60)

    assert upload(MAX_FILES_PER_REQUEST).status_code == 200
    refused = upload(MAX_FILES_PER_REQUEST + 1)
    assert refused.status_code == 413 and f"more than {MAX_FILES_PER_REQUEST} files in one upload" in refused.text, refused.text

    huge = b'{"data": ["' + b"1," * (MAX_REQUEST_BYTES // 2) + b'"], "fn_index": 0, "session_hash": "x"}'
    answer = httpx.post(hub_url + "gradio_api/queue/join", content=huge, headers={"content-type": "application/json"}, timeout=60)
    assert answer.status_code == 413 and "over the limit of 4,194,304 bytes" in answer.text

    def chunks():  # no Content-Length: the body is counted as it arrives
        for _ in range(MAX_REQUEST_BYTES // 65536 + 2):
            yield b"1" * 65536

    answer = httpx.post(hub_url + "gradio_api/queue/join", content=chunks(), timeout=60)
    assert answer.status_code == 413 and "over the limit" in answer.text


def test_a_text_input_over_the_cap_is_refused_through_gradio_client(tmp_path):
    """A 96 MB JSON stroke once took the hub to 4.7 GB: now the body is refused before it is read."""
    import gradio as gr
    from gradio_client import Client

    from apptool.hub import configure_queue
    from apptool.limits import MAX_REQUEST_BYTES

    with gr.Blocks() as blocks:
        box, out = gr.Textbox(), gr.Textbox()
        gr.Button().click(lambda text: str(len(text)), box, out, api_name="length")
    configure_queue(blocks)
    url = start(blocks)
    try:
        client = Client(url, verbose=False)
        assert client.predict("[[1, 2, 3, 0]]", api_name="/length") == "14"
        with pytest.raises(Exception, match="413|over the limit|Request Entity Too Large"):
            client.predict("1," * MAX_REQUEST_BYTES, api_name="/length")
        assert client.predict("still serving", api_name="/length") == "13"
    finally:
        blocks.close()


def test_json_text_is_capped_by_size_and_by_count_and_the_gesture_stroke_uses_the_caps():
    from apptool_gesture.stroke import parse_points

    from apptool.errors import InputError
    from apptool.limits import parse_json

    assert parse_json('{"points": [[1, 2, 3]]}', "box") == {"points": [[1, 2, 3]]}
    with pytest.raises(InputError, match=r"box: 41 characters, more than the limit of 40"):
        parse_json("[" + "1," * 19 + "1]", "box", max_chars=40)
    with pytest.raises(InputError, match=r"box: more than the limit of 10 values"):
        parse_json("[" + ",".join(["[]"] * 10) + "]", "box", max_values=10)
    with pytest.raises(InputError, match=r"box: not valid JSON"):
        parse_json("[" * 100_000, "box")
    stroke = '{"width": 400, "height": 400, "points": [' + ",".join(["[1, 2, 3, 0]"] * 200_000) + "]}"
    with pytest.raises(InputError, match=r"stroke points: .*more than the limit"):
        parse_points(stroke)


def test_outputs_are_pruned_and_files_that_were_there_before_stay(scaffold_bundle, tmp_path):
    from apptool.demo_context import KEPT_OUTPUTS, DemoContext
    from apptool.runtime import Predictor

    ctx = DemoContext(Predictor(scaffold_bundle), work_dir=tmp_path)
    (tmp_path / "example.png").write_bytes(b"an example written when the tab was built")
    write = ctx.guard(lambda i: (tmp_path / f"drive-{i}.mp4").write_bytes(b"video"))
    for i in range(KEPT_OUTPUTS + 5):
        write(i)
    kept = sorted(p.name for p in tmp_path.iterdir())
    assert kept == sorted(["example.png", *(f"drive-{i}.mp4" for i in range(5, KEPT_OUTPUTS + 5))])


def test_a_broken_bundle_shows_its_error_in_its_tab_and_the_other_tabs_work(
    scaffold_task, scaffold_bundle, tmp_path, monkeypatch
):
    from gradio_client import Client

    import apptool.hub as hub_module
    from apptool.hub import build_hub

    bundles = tmp_path / "bundles"
    shutil.copytree(scaffold_bundle, bundles / TASK)
    shutil.copytree(scaffold_bundle, bundles / "steering")
    (bundles / "steering" / "config.json").write_text('{"task": "steering", ')
    (bundles / "gesture").mkdir()
    real = hub_module.Predictor
    attempts = []

    def predictor(path, task=None):  # a failure no loader check foresees: once, invalid ONNX metadata JSON
        if Path(path).name == "gesture":
            attempts.append(path)
            raise ValueError("Expecting ',' delimiter: line 1 column 9 (char 8)")
        return real(path, task=task)

    monkeypatch.setattr(hub_module, "Predictor", predictor)
    hub = build_hub(bundles, tasks=[TASK, "steering", "gesture"])
    url = start(hub)
    try:
        client = Client(url, verbose=False)
        rows = {row["task"]: row for row in client.predict(api_name="/models")["models"]}
        assert rows[TASK]["status"] == "ready"
        assert rows["steering"]["status"] == rows["gesture"]["status"] == "broken"
        assert "config.json" in rows["steering"]["error"] and "\n" not in rows["steering"]["error"]
        assert "gesture: cannot be loaded (ValueError: Expecting ','" in rows["gesture"]["error"]
        tries = len(attempts)
        client.predict(api_name="/models")
        assert len(attempts) == tries, "an unchanged broken bundle is not loaded again at every poll"
        (bundles / "gesture" / "config.json").write_text("{}")
        client.predict(api_name="/models")
        assert len(attempts) == tries + 1, "a changed bundle folder is tried again"
        texts = [c.get("props", {}).get("value") for c in httpx.get(url + "config", timeout=30).json()["components"]]
        assert any(isinstance(t, str) and "No usable model" in t and "ValueError" in t for t in texts)
        digit = tmp_path / "digit.png"
        cv2.imwrite(str(digit), scaffold_task.sample_inputs(scaffold_task.config("tiny"), 1, seed=2)[0][:, :, ::-1])
        from gradio_client import handle_file

        assert client.predict(handle_file(str(digit)), api_name=f"/{TASK}_predict")["label"] in [str(d) for d in range(10)]
    finally:
        hub.close()


SERVE_SCRIPT = """
import sys, time
from pathlib import Path
from apptool.hub import build_hub, launch_options, serve
hub = build_hub(Path(sys.argv[1]), tasks=[sys.argv[2]])
print("PORT", sys.argv[3], flush=True)
serve(hub, None, **launch_options("127.0.0.1", int(sys.argv[3])))
print("STOPPED", time.time(), flush=True)
"""


def test_sigint_stops_the_hub_at_once_and_its_work_folder_goes(scaffold_env, tmp_path):
    """With a browser's event stream open, gradio's own shutdown waited 5 s; the work folder stayed in /tmp."""
    import signal
    import subprocess
    import sys

    from apptool.testing import free_port

    port, scratch = free_port(), tmp_path / "tmp"
    scratch.mkdir()
    env = {**scaffold_env, "TMPDIR": str(scratch), "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-c", SERVE_SCRIPT, str(tmp_path / "bundles"), TASK, str(port)]
    hub = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        url = f"http://127.0.0.1:{port}/"
        deadline = time.time() + 180
        while time.time() < deadline:
            try:
                httpx.get(url, timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.5)
        assert len(list(scratch.glob("apptool-hub-*"))) == 1

        def listen():  # what an open browser tab holds: the heartbeat event stream
            try:
                with httpx.stream("GET", url + "gradio_api/heartbeat/test-session", timeout=60) as stream:
                    for _ in stream.iter_bytes():
                        pass
            except httpx.HTTPError:
                pass

        threading.Thread(target=listen, daemon=True).start()
        time.sleep(1.0)
        sent = time.time()
        hub.send_signal(signal.SIGINT)
        out, _ = hub.communicate(timeout=120)
    finally:
        hub.kill()
    stopped = float(next(line for line in out.splitlines() if line.startswith("STOPPED")).split()[1])
    assert stopped - sent < 3.0, f"the server took {stopped - sent:.1f} s to stop"
    assert hub.returncode == 0 and not list(scratch.glob("apptool-hub-*"))


def test_a_tab_on_a_tiny_model_has_its_endpoint_and_answers_with_the_upgrade_once_it_is_in_place(
    scaffold_task, scaffold_bundle, digit_png, tmp_path
):
    from gradio_client import Client, handle_file

    from apptool.background import DONE, BackgroundTrainer, promote
    from apptool.hub import build_hub

    bundles = tmp_path / "bundles"
    shutil.copytree(scaffold_bundle, bundles / TASK)
    trainer = BackgroundTrainer.for_missing(bundles, [TASK], "quick")  # never started: the test plays its part
    hub = build_hub(bundles, tasks=[TASK], trainer=trainer)
    try:
        client = Client(start(hub), verbose=False)
        assert client.predict(handle_file(str(digit_png)), api_name=f"/{TASK}_predict")["label"] in list("0123456789")
        upgrade = trainer.upgrades[TASK]
        shutil.copytree(scaffold_bundle, upgrade.target)
        config = json.loads((upgrade.target / "config.json").read_text())
        relabelled = {**config, "preset": "quick", "labels": [f"digit {label}" for label in config["labels"]]}
        (upgrade.target / "config.json").write_text(json.dumps(relabelled))
        promote(upgrade.target, upgrade.replaces)
        upgrade.state = DONE
        # the endpoint itself picks the new model up: no page, header poll or status call in between
        assert client.predict(handle_file(str(digit_png)), api_name=f"/{TASK}_predict")["label"].startswith("digit ")
    finally:
        hub.close()


def test_launch_retries_only_gradios_false_alarm_about_localhost():
    from apptool.hub import launch_blocks

    class Blocks:
        def __init__(self, errors):
            self.errors, self.launched, self.closed = list(errors), 0, 0

        def launch(self, **options):
            self.launched += 1
            if self.errors:
                raise ValueError(self.errors.pop(0))

        def close(self, verbose=True):
            self.closed += 1

    busy = Blocks(["When localhost is not accessible, a shareable link must be created."] * 2)
    launch_blocks(busy, server_port=1)
    assert (busy.launched, busy.closed) == (3, 2)
    with pytest.raises(ValueError, match="port"):
        launch_blocks(Blocks(["bad port"]))
    with pytest.raises(ValueError, match="localhost"):
        launch_blocks(Blocks(["localhost is not accessible"] * 3))
