"""How soon `apptool demo --train-missing` is usable on a machine with no trained models.

Starts the hub as a subprocess over an empty bundles folder, then polls it with
gradio_client: the moment the hub first serves a model in each tab (the
seconds-long ``tiny`` preset), the moment the tab first answers a call to its
predict endpoint, and the moment the hub reports each tab on its final model (the
preset's, or the task's ready-made one), with no more training to come.  Times
count from the command's start: the hub first trains the missing tasks' seconds-long
models (two at a time), then comes up with every tab.

    python benchmarks/demo_startup.py                      # every installed task, quick preset
    python benchmarks/demo_startup.py --timeout 2400 --json
    python benchmarks/demo_startup.py --keep /tmp/demo     # keep the bundles it trained (DIR must not exist)

A call that fails is retried at the next poll (its error is reported); a tab whose
training failed counts as settled, on no model.  The hub's own output goes to
``<bundles>/.training-logs/hub.log``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from load_test import request_for

from apptool.testing import connect_client, free_port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for every final model")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--keep", type=Path, help="train into this new folder and leave the bundles there")
    args = parser.parse_args()
    if args.keep is not None and args.keep.exists():
        parser.error(f"--keep {args.keep}: already exists; the hub must start from no bundles")

    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        bundles = args.keep or Path(tmp) / "bundles"
        logs = bundles / ".training-logs"
        logs.mkdir(parents=True)
        command = [sys.executable, "-m", "apptool", "demo", "--bundles", str(bundles), "--port", str(port)]
        with open(logs / "hub.log", "wb") as hub_log:
            hub = subprocess.Popen(
                [*command, "--train-missing", "--preset", args.preset], stdout=hub_log, stderr=subprocess.STDOUT
            )
        try:
            url = f"http://127.0.0.1:{port}/"
            started = time.monotonic()
            deadline = started + args.timeout
            client = connect_client(url, args.timeout)
            up = time.monotonic()
            tasks = [row["task"] for row in client.predict(api_name="/models")["models"]]
            ready: dict[str, tuple[float, str]] = {}  # the hub serves a model: (seconds, its preset)
            answered: dict[str, tuple[float, str]] = {}  # a gradio_client call answered: (seconds, preset)
            final: dict[str, tuple[float, str]] = {}  # no more training to come: (seconds, status and preset)
            errors: dict[str, str] = {}
            while len(final) < len(tasks) and time.monotonic() < deadline:
                client = connect_client(url)  # a fresh client sees the endpoints of tabs rendered since
                rows = {row["task"]: row for row in client.predict(api_name="/models")["models"]}
                for task in tasks:
                    row, now = rows[task], time.monotonic() - started
                    if row["status"] == "ready":
                        ready.setdefault(task, (now, row["preset"]))
                    if row["status"] == "ready" and task not in answered:
                        try:
                            request = request_for(client, task, Path(tmp))
                            if request is None:
                                errors[task] = f"served, but gradio_client lists no /{task}_predict endpoint"
                            else:
                                client.predict(*request[1], api_name=request[0])
                                answered[task] = (time.monotonic() - started, row["preset"])
                                errors.pop(task, None)
                        except Exception as exc:  # reported, and tried again at the next poll
                            errors[task] = f"{type(exc).__name__}: {exc}"
                    if task not in final and (
                        row["status"] == "ready" and row["settled"] or row["status"] in ("failed", "broken")
                    ):
                        final[task] = (now, f"{row['status']} ({row.get('preset')})")
                time.sleep(2)
        finally:
            hub.terminate()
            hub.wait(timeout=60)

    def slowest(times: dict[str, tuple[float, str]]) -> float | None:
        return max(t for t, _ in times.values()) if len(times) == len(tasks) else None

    report = {
        "hub_up_s": up - started,
        "ready": ready,
        "answered": answered,
        "final": final,
        "errors": errors,
        "all_ready_s": slowest(ready),
        "all_answered_s": slowest(answered),
        "all_final_s": slowest(final),
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg(),
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return

    def cell(times: dict[str, tuple[float, str]], task: str) -> str:
        return f"{times[task][0]:.0f} ({times[task][1]})" if task in times else "-"

    print(f"hub answered {report['hub_up_s']:.0f} s after start; times below from the start too ({os.cpu_count()} cores)")
    print("| task | served (s, preset) | answered a call (s, preset) | final model (s) |")
    print("|---|---|---|---|")
    for task in tasks:
        print(f"| {task} | {cell(ready, task)} | {cell(answered, task)} | {cell(final, task)} |")
    for task, error in errors.items():
        print(f"{task}: {error}")
    print(
        f"every tab served after {report['all_ready_s']} s, answered after {report['all_answered_s']} s, "
        f"on its final model after {report['all_final_s']} s; load average at the end {report['load_average']}"
    )


if __name__ == "__main__":
    main()
