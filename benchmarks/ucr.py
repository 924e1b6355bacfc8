"""The gesture task's default preset on every UCR/UEA classification set that aeon's wheel ships, against DTW-1NN and MiniRocket.

Each set's ``<Name>_TRAIN.ts`` and ``<Name>_TEST.ts`` are copied into a
folder of their own and trained with ``apptool train gesture --data DIR``,
exactly as a user would, with no per-set settings.  The test accuracy comes
from the bundle's metrics (ONNX Runtime).  On the same train/test split, from
the same raw files:

* DTW-1NN: one nearest neighbour under full-window dynamic time warping
  (aeon), the UCR archive's reference classifier;
* MiniRocket (aeon, 10,000 kernels, ridge classifier, ``random_state`` 0);
  unequal-length sets are linearly resampled to their longest training length.

Skipped, with the reason printed: regression sets (``@targetLabel true``),
aeon's ``UnitTest`` fixture (a 20-case cut of Chinatown), the ``*_eq``
equal-length copies of sets already in the table, and folders without
``.ts`` files (forecasting and anomaly CSVs).

Run from the repository root (needs ``pip install 'apptool-gesture[benchmark]'``)::

    python benchmarks/ucr.py                                 # every set, default preset
    python benchmarks/ucr.py --datasets GunPoint,BasicMotions --threads 2
    python benchmarks/ucr.py --jobs 2                        # two sets training at once, one thread each
    python benchmarks/ucr.py --report                        # the table of the bundles a run left in --out
    python benchmarks/ucr.py --set data.series_norm=false    # a config override, for every set

Baselines are cached in ``--out``/baselines.json (they depend only on the data).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from apptool.bundle import CONFIG, METRICS

NOT_A_SET = {"UnitTest": "aeon's unit-test fixture, a 20-case cut of Chinatown, not an archive set"}


def shipped_sets() -> tuple[dict[str, Path], dict[str, str]]:
    """Classification sets in aeon's wheel (name -> folder) and the skipped folders with why."""
    import aeon.datasets

    root = Path(aeon.datasets.__file__).parent / "data"
    found, skipped = {}, {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        name = folder.name
        train, test = folder / f"{name}_TRAIN.ts", folder / f"{name}_TEST.ts"
        if name in NOT_A_SET:
            skipped[name] = NOT_A_SET[name]
        elif not (train.is_file() and test.is_file()):
            skipped[name] = "no <name>_TRAIN.ts/_TEST.ts pair (forecasting, anomaly or segmentation data)"
        elif "@targetlabel true" in train.read_text(errors="replace")[:4000].lower():
            skipped[name] = "regression (@targetLabel true), not classification"
        else:
            found[name] = folder
            for variant in sorted(folder.glob(f"{name}_*_TRAIN.ts")):
                skipped[variant.name[: -len("_TRAIN.ts")]] = f"an equal-length copy of {name}"
    return found, skipped


def raw_split(folder: Path) -> tuple[list, np.ndarray, list, np.ndarray]:
    """(T, D) train/test sequences and labels, read by the gesture plugin's own .ts reader."""
    from apptool_gesture.tsformat import read_ts

    name = folder.name
    train, test = read_ts(folder / f"{name}_TRAIN.ts"), read_ts(folder / f"{name}_TEST.ts")
    return train.series, np.array(train.labels), test.series, np.array(test.labels)


def baselines(folder: Path, threads: int) -> dict[str, float]:
    """DTW-1NN and MiniRocket test accuracy on the raw split."""
    from aeon.classification.convolution_based import MiniRocketClassifier
    from apptool_gesture.baselines import nearest_dtw, resample

    train, train_y, test, test_y = raw_split(folder)
    started = time.perf_counter()
    dtw = float(np.mean(train_y[nearest_dtw(train, test)] == test_y))
    dtw_s = time.perf_counter() - started
    length = max(len(s) for s in train)
    as_array = lambda seqs: np.stack([resample(s, length).T for s in seqs]).astype(np.float64)  # noqa: E731
    started = time.perf_counter()
    rocket = MiniRocketClassifier(n_jobs=threads, random_state=0).fit(as_array(train), train_y)
    minirocket = float(np.mean(rocket.predict(as_array(test)) == test_y))
    lengths = sorted({len(s) for s in train + test})
    return {
        "dtw_1nn": dtw,
        "dtw_seconds": dtw_s,
        "minirocket": minirocket,
        "minirocket_seconds": time.perf_counter() - started,
        "length": f"{lengths[0]}-{lengths[-1]}" if len(lengths) > 1 else str(lengths[0]),
    }


def train_gesture(folder: Path, out: Path, preset: str, overrides: list[str], threads: int) -> dict:
    """``apptool train gesture --data`` on a copy of the set's two files; the bundle's metrics, config and CPU time."""
    data = out / "data" / folder.name
    data.mkdir(parents=True, exist_ok=True)
    for part in ("TRAIN", "TEST"):
        shutil.copy(folder / f"{folder.name}_{part}.ts", data)
    bundle, log = out / "bundles" / folder.name, out / "logs" / f"{folder.name}.log"
    shutil.rmtree(bundle, ignore_errors=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "apptool", "train", "gesture", "--data", str(data), "--preset", preset]
    command += [arg for o in overrides for arg in ("--set", o)] + ["--out", str(bundle), "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    with log.open("w") as stream:
        process = subprocess.Popen(command, env=env, stdout=stream, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)  # this child's own CPU time, also while others run beside it
    process.returncode = os.waitstatus_to_exitcode(status)
    text = log.read_text(errors="replace")
    if process.returncode:
        raise SystemExit(f"{folder.name}: apptool train failed ({process.returncode}), see {log}:\n{text[-2000:]}")
    print(f"{folder.name}: " + next((line for line in text.splitlines() if line.startswith("gesture: budget")), ""))
    cpu = usage.ru_utime + usage.ru_stime  # train, export and eval: load-independent
    (out / "logs" / f"{folder.name}.cpu_seconds").write_text(f"{cpu:.1f}\n")
    return bundle_metrics(out, folder.name)


def bundle_metrics(out: Path, name: str) -> dict | None:
    """A trained set's metrics, bundle config and CPU seconds (None when its bundle is not finished)."""
    bundle, cpu = out / "bundles" / name, out / "logs" / f"{name}.cpu_seconds"
    if not (bundle / METRICS).is_file():
        return None
    metrics = json.loads((bundle / METRICS).read_text())
    seconds = float(cpu.read_text()) if cpu.is_file() else None
    return {**metrics, "config": json.loads((bundle / CONFIG).read_text()), "cpu_seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="", help="comma-separated subset (default: every shipped set)")
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--set", action="append", default=[], dest="overrides", help="config override KEY=VALUE")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for training and MiniRocket")
    parser.add_argument("--report", action="store_true", help="train nothing: the table of the bundles already in --out")
    parser.add_argument("--jobs", type=int, default=1, help="sets trained at once, each in its own process")
    parser.add_argument("--out", type=Path, default=Path("runs/ucr"))
    args = parser.parse_args()
    console = Console(width=160)  # the table whole, also when the output goes to a file
    found, skipped = shipped_sets()
    chosen = [n.strip() for n in args.datasets.split(",") if n.strip()] or list(found)
    unknown = sorted(set(chosen) - set(found))
    if unknown:
        raise SystemExit(f"--datasets: {', '.join(unknown)} not among the shipped sets ({', '.join(found)})")
    for name, why in skipped.items():
        console.print(f"skipped {name}: {why}")
    args.out.mkdir(parents=True, exist_ok=True)
    cache_path = args.out / "baselines.json"
    table = Table(title=f"gesture --preset {args.preset} {' '.join(args.overrides)} vs baselines, {args.threads} thread(s)")
    for column in (
        "set",
        "train",
        "test",
        "classes",
        "dims",
        "length",
        "pool",
        "epochs",
        "train s",
        "CPU s",
        "model",
        "1-NN Eucl.",
        "DTW-1NN",
        "MiniRocket",
    ):
        table.add_column(column, justify="left" if column == "set" else "right")
    if args.report:
        trained = [bundle_metrics(args.out, n) for n in chosen]
    else:
        with ThreadPoolExecutor(max(1, args.jobs)) as pool:  # the training is in child processes; baselines run meanwhile
            trained = pool.map(lambda n: train_gesture(found[n], args.out, args.preset, args.overrides, args.threads), chosen)
            for name in sorted(chosen, key=lambda n: (found[n] / f"{n}_TRAIN.ts").stat().st_size):  # cheap ones first
                cache = json.loads(cache_path.read_text()) if cache_path.is_file() else {}  # another run may have added some
                if name not in cache:
                    cache[name] = baselines(found[name], args.threads)
                    cache_path.write_text(json.dumps(cache, indent=1))
    cache = json.loads(cache_path.read_text()) if cache_path.is_file() else {}
    rows = []
    for name, metrics in zip(chosen, trained):
        if metrics is None or name not in cache:
            console.print(f"{name}: no finished bundle or no baselines in {args.out}")
            continue
        test, training, dataset = metrics["test"], metrics["training"], metrics["config"]["dataset"]
        rows.append((test["accuracy"], test["baseline_1nn_euclidean"], cache[name]["dtw_1nn"], cache[name]["minirocket"]))
        cpu = metrics.get("cpu_seconds")
        table.add_row(
            name,
            str(dataset["train_size"]),
            str(dataset["test_size"]),
            str(len(metrics["config"]["labels"])),
            str(metrics["config"]["input"]["raw_dims"]),
            cache[name]["length"],
            str(metrics["config"]["input"].get("pool", 1)),  # frames averaged into one (data.target_frames)
            str(training.get("epochs", training["epochs_run"])),
            f"{training['seconds']:.0f}",
            "–" if cpu is None else f"{cpu:.0f}",
            f"{test['accuracy']:.3f}" + (" *" if test["accuracy"] < cache[name]["dtw_1nn"] else ""),
            f"{test['baseline_1nn_euclidean']:.3f}",  # the bundle's own, on the model's inputs
            f"{cache[name]['dtw_1nn']:.3f}",
            f"{cache[name]['minirocket']:.3f}",
        )
        console.print(
            f"{name}: model {test['accuracy']:.3f}, DTW-1NN {cache[name]['dtw_1nn']:.3f}, MiniRocket {cache[name]['minirocket']:.3f}"
        )
    if not rows:
        raise SystemExit(f"no finished set in {args.out}")
    model, euclidean, dtw, rocket = np.mean(rows, 0)
    table.add_section()
    table.add_row("mean", *[""] * 9, f"{model:.3f}", f"{euclidean:.3f}", f"{dtw:.3f}", f"{rocket:.3f}")
    console.print(table)
    wins = sum(m >= d for m, _, d, _ in rows)
    console.print(
        f"model >= DTW-1NN on {wins}/{len(rows)} sets (* marks the others); mean gap to MiniRocket {model - rocket:+.3f}"
    )


if __name__ == "__main__":
    main()
