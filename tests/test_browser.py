"""End to end in a real browser: Debian's Chromium, headless, driven by Playwright, against the launched hub.

Every installed task gets its ``tiny`` model (trained once for the run), then
its tab is driven the way a user would: load an example, upload a file (image
tasks), run the tab's button, read the result on the page, and upload a broken
file to see a readable error.  The scaffold task's model is left missing, so
its tab trains in the background and must turn into the working demo in place.
Screenshots go to ``screenshots/`` at the repository root.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import cv2
import pytest

from apptool.plugins import get_plugins
from apptool.testing import free_port

pytestmark = pytest.mark.browser
playwright = pytest.importorskip("playwright.sync_api")

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SCREENSHOTS = Path(__file__).resolve().parents[1] / "screenshots"
SCAFFOLD = "digits_demo"
INSTALLED = sorted(name for name in get_plugins().tasks if name != SCAFFOLD)
RESULT_TIMEOUT = 120.0  # seconds for one model call on a busy two-core machine
TRAIN_TIMEOUT = 900


def chromium_path() -> str:
    """Debian's Chromium; without it the module is skipped, or fails under CI=true (a CI must test the browser)."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        message = "Debian's chromium is not installed (`make test` installs it: apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message, allow_module_level=True)
    return path


CHROMIUM = chromium_path()  # checked before any model is trained for these tests


@pytest.fixture(scope="session")
def tiny_bundles(tmp_path_factory, shared_bundle) -> tuple[Path, dict[str, str]]:
    """Every installed task's tiny bundle (``shared_bundle``: trained once per run) in one folder: (folder, errors by task).

    A task whose training fails fails its own tab's test, not the hub's.  ``APPTOOL_TEST_BUNDLES=DIR`` keeps
    the bundles in DIR and trains only those missing there (for repeated local runs).
    """
    kept = os.environ.get("APPTOOL_TEST_BUNDLES")
    bundles = Path(kept) if kept else tmp_path_factory.mktemp("tiny-bundles")
    errors = {}
    for name in INSTALLED:
        errors[name] = ""
        if (bundles / name / "config.json").exists():
            continue
        try:
            shutil.copytree(shared_bundle(get_plugins().task(name)), bundles / name)
        except Exception as exc:  # any failure of one task's training, reported in that task's test
            errors[name] = f"{type(exc).__name__}: {exc}"[-3000:]
    return bundles, errors


@pytest.fixture(scope="module")
def background(tiny_bundles, scaffold_env):
    """The background trainer of the hub below: the scaffold task's model is missing and trains in it."""
    from apptool.background import BackgroundTrainer

    bundles, _ = tiny_bundles
    shutil.rmtree(bundles / SCAFFOLD, ignore_errors=True)
    trainer = BackgroundTrainer.for_missing(bundles, [SCAFFOLD], preset="tiny", env=scaffold_env, niceness=0)
    yield trainer
    trainer.stop()


@pytest.fixture(scope="module")
def hub_url(tiny_bundles, scaffold_task, background):
    """The hub over the tiny bundles; the scaffold task has none yet and trains in the background."""
    from apptool.hub import build_hub, launch_blocks, launch_options

    bundles, _ = tiny_bundles
    hub = build_hub(bundles, tasks=[*INSTALLED, SCAFFOLD], trainer=background)
    port = free_port()
    launch_blocks(hub, quiet=True, **launch_options("127.0.0.1", port))
    background.start()
    yield f"http://127.0.0.1:{port}/"
    hub.close()


@pytest.fixture(scope="module")
def browser(hub_url):
    with playwright.sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def watcher(browser):
    """A page kept open on the training tab from the first test to the last, never reloaded."""
    page = browser.new_page(viewport={"width": 1600, "height": 1200})
    yield page
    page.close()


@pytest.fixture
def page(browser):
    page = browser.new_page(viewport={"width": 1600, "height": 1200})
    yield page
    page.close()


def open_tab(page, url: str, title: str):
    """Load the hub, select the tab by its title (from the overflow menu if it does not fit) and return its panel."""
    page.goto(url)
    page.wait_for_selector("[role=tab]", timeout=60_000)
    tab = page.get_by_role("tab", name=title, exact=True)
    if tab.count() and tab.is_visible():
        tab.click()
    else:
        page.get_by_label("More tabs").click()
        page.locator(".overflow-dropdown button", has_text=title).first.click()
    page.wait_for_selector(f"[role=tab][aria-selected=true]:text-is('{title}')", timeout=10_000)
    return page.locator("[role=tabpanel]:visible").first


def snapshot(panel) -> str:
    """What the panel shows: its text and the sources of its images and videos."""
    return panel.evaluate("e => e.innerText + '|' + [...e.querySelectorAll('img,video')].map(x => x.src).join(',')")


def busy(panel) -> bool:
    """True while some component of the panel shows gradio's pending/progress overlay."""
    return panel.locator("[data-testid=status-tracker]:not(.hide)").count() > 0


def error_toasts(page) -> list[str]:
    return [t.inner_text() for t in page.locator(".toast-body.error").all() if t.is_visible()]


def settle(panel, seconds: float = 30.0) -> None:
    deadline = time.time() + seconds
    while busy(panel) and time.time() < deadline:
        time.sleep(0.2)


def prepare(panel):
    """Mark the tab's input and the button that runs it; return (button, input block) locators.

    The input is the block of the first upload; the button is the first gradio Button after it, else
    the primary one.  Call it on a fresh tab, before any value is loaded.
    """
    found = panel.evaluate("""panel => {
        panel.querySelectorAll('[data-apptool-run], [data-apptool-input]').forEach(e => {
            e.removeAttribute('data-apptool-run'); e.removeAttribute('data-apptool-input'); });
        const buttons = [...panel.querySelectorAll('button.primary, button.secondary')].filter(b => b.offsetParent);
        const upload = panel.querySelector('input[type=file]');
        const button = (upload && buttons.find(b => upload.compareDocumentPosition(b) & Node.DOCUMENT_POSITION_FOLLOWING))
            || buttons.find(b => b.classList.contains('primary'));
        if (button) button.setAttribute('data-apptool-run', '1');
        const block = upload && upload.closest('.block');
        if (block) block.setAttribute('data-apptool-input', '1');
        return [button ? button.innerText : null, Boolean(block)];
    }""")
    assert found[0], "the tab has no button to run"
    assert found[1], "the tab has no file or image input"
    return panel.locator("[data-apptool-run]"), panel.locator("[data-apptool-input]")


WATCH_BUSY = """panel => {
    window.apptoolBusySeen = false;
    const watch = () => { if (panel.querySelector('[data-testid=status-tracker]:not(.hide)')) window.apptoolBusySeen = true; };
    new MutationObserver(watch).observe(panel, {attributes: true, childList: true, subtree: true});
}"""


def run_and_wait(page, panel, button, shot: str, must_change: bool = True) -> str:
    """Click the run button and wait until the call has come back; return what the panel shows then.

    Done means: gradio's progress overlay came and went (a MutationObserver sees it even when the call is
    quicker than polling), or the panel changed and nothing is pending.  An error toast fails the test.
    """
    settle(panel)
    before = snapshot(panel)
    panel.evaluate(WATCH_BUSY)
    button.click()
    deadline = time.time() + RESULT_TIMEOUT
    while time.time() < deadline:
        errors = error_toasts(page)
        assert not errors, f"the tab showed an error: {errors}"
        after = snapshot(panel)
        returned = page.evaluate("window.apptoolBusySeen") or after != before
        if returned and not busy(panel) and (after != before or not must_change):
            page.screenshot(path=str(SCREENSHOTS / f"{shot}.png"), full_page=True)
            return after
        time.sleep(0.3)
    page.screenshot(path=str(SCREENSHOTS / f"{shot}-timeout.png"), full_page=True)
    raise AssertionError(f"no result within {RESULT_TIMEOUT} s")


def filled(block, before: str, seconds: float = 30.0) -> None:
    """Wait until the input block shows its new value (an image preview, a file name) and nothing is pending."""
    deadline = time.time() + seconds
    while (snapshot(block) == before or busy(block)) and time.time() < deadline:
        time.sleep(0.2)
    assert snapshot(block) != before, "the input did not take the value"


def upload(block, path: Path) -> None:
    before = snapshot(block)
    block.locator("input[type=file]").first.set_input_files(str(path))
    filled(block, before)


def load_first_example(panel, block) -> None:
    examples = panel.locator("button.gallery-item:visible, tr.tr-body:visible")
    assert examples.count() > 0, "the tab has no examples"
    before = snapshot(block)
    examples.first.click()
    filled(block, before)
    panel.page.wait_for_timeout(3000)  # the preview can show before gradio has finished processing the example


def exercise_tab(page, url: str, task, config: dict | None, shot: str) -> None:
    """Example → result; upload → result (image tasks); broken upload → a readable error."""
    SCREENSHOTS.mkdir(exist_ok=True)
    title = task.title or task.name
    panel = open_tab(page, url, title)
    button, block = prepare(panel)
    load_first_example(panel, block)
    run_and_wait(page, panel, button, f"{shot}-example")
    if task.input_kind == "image" and config is not None:
        panel = open_tab(page, url, title)
        button, block = prepare(panel)
        picture = SCREENSHOTS / f"{task.name}-input.png"
        cv2.imwrite(str(picture), task.sample_inputs(config, 1, seed=21)[0][:, :, ::-1])
        upload(block, picture)
        run_and_wait(page, panel, button, f"{shot}-upload")
    panel = open_tab(page, url, title)
    button, block = prepare(panel)
    suffix = ".png" if task.input_kind == "image" else sorted(task.input_suffixes)[0]
    broken = SCREENSHOTS / f"{task.name}-broken{suffix}"
    broken.write_bytes(b"\x00\x01 not what the name says \xff" * 40)
    upload(block, broken)
    button.click()
    page.wait_for_selector(".toast-body.error", timeout=RESULT_TIMEOUT * 1000)
    message = " ".join(error_toasts(page))
    page.screenshot(path=str(SCREENSHOTS / f"{shot}-bad-upload.png"), full_page=True)
    assert broken.name in message, f"the error should name the file: {message}"
    assert "Traceback" not in message and 'File "' not in message and "/tmp/" not in message, message


def test_a_tab_without_its_model_shows_the_training_progress(watcher, hub_url, background, scaffold_task):
    """The first test, run while the scaffold's model is still training behind the hub."""
    SCREENSHOTS.mkdir(exist_ok=True)
    page = watcher
    panel = open_tab(page, hub_url, scaffold_task.title)
    panel.get_by_text("Digits demo", exact=False).first.wait_for(timeout=30_000)
    text, state = panel.inner_text(), background.jobs[SCAFFOLD].state
    page.screenshot(path=str(SCREENSHOTS / f"{SCAFFOLD}-pending.png"), full_page=True)
    if state in ("queued", "training"):
        assert "Training Digits demo" in text or "queued for training" in text, text
        assert "becomes usable when it is done" in text or "exporting to ONNX" in text, text
    else:
        assert state == "done", background.jobs[SCAFFOLD].error


def test_the_header_lists_every_model_and_the_provider(page, hub_url, tiny_bundles):
    SCREENSHOTS.mkdir(exist_ok=True)
    page.goto(hub_url)
    header = page.locator("[data-testid=markdown]", has_text="apptool demo hub").first
    header.wait_for(timeout=60_000)
    text = header.inner_text()
    page.screenshot(path=str(SCREENSHOTS / "hub-header.png"))
    _, errors = tiny_bundles
    for name in INSTALLED:
        assert f"{name}" in text
        if not errors[name]:
            assert "tiny preset" in text.split(f"({name})")[1].splitlines()[0]
    assert "ExecutionProvider" in text


@pytest.mark.parametrize("name", INSTALLED)
def test_tab_runs_examples_uploads_and_reports_bad_files(page, hub_url, tiny_bundles, name):
    from apptool.bundle import read_config

    bundles, errors = tiny_bundles
    assert not errors[name], f"tiny training of {name} failed:\n{errors[name]}"
    exercise_tab(page, hub_url, get_plugins().task(name), read_config(bundles / name), name)


def test_a_missing_model_trains_while_the_hub_serves_and_its_tab_comes_alive(watcher, hub_url, scaffold_task):
    """The last test: the page the first test left on the training tab turns into the demo, without a reload."""
    page = watcher
    panel = page.locator("[role=tabpanel]:visible").first
    panel.locator("button.primary").first.wait_for(timeout=TRAIN_TIMEOUT * 1000)
    assert "trained and loaded" in panel.inner_text()
    button, block = prepare(panel)
    load_first_example(panel, block)
    result = run_and_wait(page, panel, button, f"{SCAFFOLD}-trained-in-background")
    deadline = time.time() + RESULT_TIMEOUT  # a re-rendered tab's output can show its timer before the label
    while "%" not in result and time.time() < deadline:
        time.sleep(0.3)
        result = panel.inner_text()
    assert "%" in result, result  # the label's class probabilities
