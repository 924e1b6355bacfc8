"""How soon `apptool demo --train-missing` is usable on a machine with no trained models.

Starts the hub as a subprocess over an empty bundles folder, then polls it with
gradio_client: the moment each tab first answers a call to its predict endpoint
(its first model is the seconds-long ``tiny`` preset), and the moment the hub
reports each tab on its final model (the preset's, or the task's ready-made one),
with no more training to come.  Times count from the hub answering at all.

    python benchmarks/demo_startup.py                      # every installed task, quick preset
    python benchmarks/demo_startup.py --timeout 2400 --json
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
    args = parser.parse_args()

    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "apptool", "demo", "--bundles", f"{tmp}/bundles", "--port", str(port)]
        hub = subprocess.Popen(
            [*command, "--train-missing", "--preset", args.preset], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            url = f"http://127.0.0.1:{port}/"
            started = time.monotonic()
            deadline = started + args.timeout
            client = connect_client(url, args.timeout)
            up = time.monotonic()
            tasks = [row["task"] for row in client.predict(api_name="/models")["models"]]
            answered: dict[str, float] = {}
            final: dict[str, float] = {}
            while len(final) < len(tasks) and time.monotonic() < deadline:
                client = connect_client(url)  # a fresh client sees the endpoints of tabs rendered since
                rows = {row["task"]: row for row in client.predict(api_name="/models")["models"]}
                for task in tasks:
                    row = rows[task]
                    if row["status"] == "ready" and task not in answered:
                        request = request_for(client, task, Path(tmp))
                        if request is not None:
                            client.predict(*request[1], api_name=request[0])
                            answered[task] = time.monotonic() - up
                    if row["status"] == "ready" and row["settled"] and task not in final:
                        final[task] = time.monotonic() - up
                time.sleep(2)
        finally:
            hub.terminate()
            hub.wait(timeout=60)
    report = {
        "hub_up_s": up - started,
        "first_answer_s": answered,
        "final_model_s": final,
        "all_answered_s": max(answered.values()) if len(answered) == len(tasks) else None,
        "all_final_s": max(final.values()) if len(final) == len(tasks) else None,
        "cpu_count": os.cpu_count(),
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"hub answered {report['hub_up_s']:.0f} s after start; times below from then ({os.cpu_count()} cores)")
    print("| task | first answer (s) | final model (s) |")
    print("|---|---|---|")
    for task in tasks:
        first, done = answered.get(task), final.get(task)
        print(f"| {task} | {first and f'{first:.0f}' or '-'} | {done and f'{done:.0f}' or '-'} |")
    print(f"every tab answered after {report['all_answered_s']} s; every tab on its final model after {report['all_final_s']} s")


if __name__ == "__main__":
    main()
