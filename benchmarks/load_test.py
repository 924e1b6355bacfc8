"""Load test of the demo hub: many concurrent requests to each tab's predict endpoint, through gradio_client.

    python benchmarks/load_test.py --bundles bundles             # launches the hub over these bundles
    python benchmarks/load_test.py --url http://127.0.0.1:7860/  # or a hub that is already running
        [--requests 40] [--concurrency 8] [--tasks steering,captioning] [--json]

Each endpoint gets the input its tab offers as its first example (fetched through the tab's own example
endpoint, so any component layout works) or, for an image tab without examples, the task's sample input
as a PNG.  Latency includes the queue wait (the hub runs one model call at a time, so p95 grows with
the concurrency); the report gives p50/p95/max, throughput and the errors, of which there should be none.
The exit status is 1 when any request failed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np


def example_value(client, input_id: int) -> Any:
    """The first example a tab offers for component ``input_id``, as a value gradio_client can send."""
    from gradio_client import handle_file

    config = client.config
    for component in config["components"]:
        props = component.get("props", {})
        if component.get("type") != "dataset" or input_id not in props.get("component_ids", []):
            continue
        for dep in config["dependencies"]:
            if [component["id"], "click"] in [list(t) for t in dep.get("targets", [])] and dep.get("api_name"):
                value = client.predict(0, api_name=f"/{dep['api_name']}")
                values = value if isinstance(value, (list, tuple)) and len(props["component_ids"]) > 1 else [value]
                value = values[props["component_ids"].index(input_id)]
                if isinstance(value, dict) and value.get("__type__") == "update":  # examples load as updates
                    value = value.get("value")
                if isinstance(value, dict) and "path" in value:
                    value = value["path"]
                return handle_file(value) if isinstance(value, str) and Path(value).is_file() else value
    return None


def sample_png(task_name: str, folder: Path) -> Any:
    """The task's own sample input as a PNG (image tasks), when the hub runs in this process's environment."""
    import cv2
    from gradio_client import handle_file

    from apptool.plugins import get_plugins

    task = get_plugins().tasks.get(task_name)
    if task is None or task.input_kind != "image":
        return None
    path = folder / f"{task_name}.png"
    cv2.imwrite(str(path), task.sample_inputs(task.config("tiny"), 1, seed=5)[0][:, :, ::-1])
    return handle_file(str(path))


def request_for(client, task: str, folder: Path) -> tuple[str, list] | None:
    """(endpoint, arguments) for the task's tab: ``/<task>_predict`` first, else its other predict endpoints."""
    config = client.config
    api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    names = sorted((n for n in api if n.startswith(f"/{task}_predict")), key=lambda n: (n != f"/{task}_predict", n))
    for name in names:
        dep = next(d for d in config["dependencies"] if f"/{d.get('api_name')}" == name)
        first = example_value(client, dep["inputs"][0]) if dep["inputs"] else None
        if first is None and name == f"/{task}_predict":
            first = sample_png(task, folder)
        if first is None:
            continue
        rest = [p.get("parameter_default") for p in api[name]["parameters"][1:]]
        return name, [first, *rest]
    return None


def hammer(url: str, endpoint: str, args: list, requests: int, concurrency: int) -> dict[str, Any]:
    """``requests`` calls from ``concurrency`` clients at once; latencies and errors."""
    from gradio_client import Client

    # Output files stay on the server: gradio rewrites a cached output in place, so downloading the same
    # output (same input) while another request rewrites it can truncate the download; that is a client-side
    # artefact of sending one input many times, not a failed model call.
    clients = [Client(url, verbose=False, download_files=False) for _ in range(concurrency)]
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        started = time.perf_counter()
        try:
            clients[i % concurrency].predict(*args, api_name=endpoint)
            failed = None
        except Exception as exc:  # the report counts every failure, whatever its kind
            failed = f"{type(exc).__name__}: {exc}"
        with lock:
            (errors.append(failed) if failed else latencies.append(time.perf_counter() - started))

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(one, range(requests)))
    wall = time.perf_counter() - started
    ms = np.array(latencies) * 1000 if latencies else np.array([np.nan])
    return {
        "endpoint": endpoint,
        "requests": requests,
        "concurrency": concurrency,
        "ok": len(latencies),
        "errors": len(errors),
        "error_samples": sorted(set(errors))[:3],
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
        "max_ms": float(np.max(ms)),
        "requests_per_s": len(latencies) / wall,
    }


def launch_hub(bundles: Path) -> tuple[str, Any]:
    from apptool.hub import build_hub, launch_options
    from apptool.testing import free_port

    hub = build_hub(bundles)
    port = free_port()
    hub.launch(prevent_thread_lock=True, quiet=True, **launch_options("127.0.0.1", port))
    return f"http://127.0.0.1:{port}/", hub


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--url", help="a running hub")
    where.add_argument("--bundles", type=Path, default=Path("bundles"), help="launch the hub over this folder")
    parser.add_argument("--requests", type=int, default=40, help="requests per endpoint")
    parser.add_argument("--concurrency", type=int, default=8, help="clients sending at once")
    parser.add_argument("--tasks", help="comma-separated tasks (default: every ready tab)")
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args(argv)
    from gradio_client import Client

    url, hub = (options.url, None) if options.url else launch_hub(options.bundles)
    try:
        client = Client(url, verbose=False)
        ready = [row["task"] for row in client.predict(api_name="/models")["models"] if row["status"] == "ready"]
        chosen = options.tasks.split(",") if options.tasks else ready
        rows = []
        with tempfile.TemporaryDirectory() as tmp:
            for task in chosen:
                found = request_for(client, task, Path(tmp)) if task in ready else None
                if found is None:
                    rows.append(
                        {"task": task, "endpoint": None, "errors": 1, "error_samples": ["no ready tab with an example to send"]}
                    )
                    continue
                rows.append({"task": task, **hammer(url, *found, options.requests, options.concurrency)})
    finally:
        if hub is not None:
            hub.close()
    if options.json:
        print(json.dumps(rows, indent=2))
    else:
        print(f"{'task':16} {'endpoint':28} {'ok':>4} {'err':>4} {'p50 ms':>9} {'p95 ms':>9} {'max ms':>9} {'req/s':>7}")
        for r in rows:
            if r["endpoint"] is None:
                print(f"{r['task']:16} {'-':28} {'-':>4} {r['errors']:>4}  {r['error_samples'][0]}")
                continue
            print(
                f"{r['task']:16} {r['endpoint']:28} {r['ok']:>4} {r['errors']:>4} {r['p50_ms']:>9.1f} {r['p95_ms']:>9.1f} "
                f"{r['max_ms']:>9.1f} {r['requests_per_s']:>7.2f}"
            )
            for sample in r["error_samples"]:
                print(f"{'':16} error: {sample[:200]}")
    return 1 if any(r["errors"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
