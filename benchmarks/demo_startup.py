"""How soon `apptool demo --train-missing` is usable on a machine with no trained models.

Starts the hub as a subprocess over an empty bundles folder, then polls it with
gradio_client: the moment each tab first answers a call to its predict endpoint
(its first model is the seconds-long ``tiny`` preset), and the moment the hub
reports each tab on its final model (the preset's, or the task's ready-made one),
with no more training to come.  Times count from the hub answering at all.

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
            answered: dict[str, float] = {}
            answered_preset: dict[str, str] = {}
            final: dict[str, float] = {}
            final_status: dict[str, str] = {}
            errors: dict[str, str] = {}
            while len(final) < len(tasks) and time.monotonic() < deadline:
                client = connect_client(url)  # a fresh client sees the endpoints of tabs rendered since
                rows = {row["task"]: row for row in client.predict(api_name="/models")["models"]}
                for task in tasks:
                    row = rows[task]
                    if row["status"] == "ready" and task not in answered:
                        try:
                            request = request_for(client, task, Path(tmp))
                            if request is not None:
                                client.predict(*request[1], api_name=request[0])
                                answered[task] = time.monotonic() - up
                                answered_preset[task] = row["preset"]
                        except Exception as exc:  # reported, and tried again at the next poll
                            errors[task] = f"{type(exc).__name__}: {exc}"
                    settled = row["status"] == "ready" and row["settled"] and task in answered
                    if task not in final and (settled or row["status"] in ("failed", "broken")):
                        final[task] = time.monotonic() - up
                        final_status[task] = f"{row['status']} ({row.get('preset')})"
                time.sleep(2)
        finally:
            hub.terminate()
            hub.wait(timeout=60)
    report = {
        "hub_up_s": up - started,
        "first_answer_s": answered,
        "first_preset": answered_preset,
        "final_model_s": final,
        "final_model": final_status,
        "errors": errors,
        "all_answered_s": max(answered.values()) if len(answered) == len(tasks) else None,
        "all_final_s": max(final.values()) if len(final) == len(tasks) else None,
        "cpu_count": os.cpu_count(),
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"hub answered {report['hub_up_s']:.0f} s after start; times below from then ({os.cpu_count()} cores)")
    print("| task | first answer (s) | its model | final model (s) | final model |")
    print("|---|---|---|---|---|")
    for task in tasks:
        first, done = answered.get(task), final.get(task)
        print(
            f"| {task} | {'-' if first is None else f'{first:.0f}'} | {answered_preset.get(task, '-')} "
            f"| {'-' if done is None else f'{done:.0f}'} | {final_status.get(task, '-')} |"
        )
    for task, error in errors.items():
        print(f"{task}: a call failed before it answered: {error}")
    print(f"every tab answered after {report['all_answered_s']} s; every tab on its final model after {report['all_final_s']} s")


if __name__ == "__main__":
    main()
