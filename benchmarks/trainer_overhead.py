"""The Trainer against a bare PyTorch loop over the same model, data, batch size and optimizer, one run.

Both train the same task's model on the same training split with AdamW and
the task's own ``loss`` and ``collate``; the bare loop does nothing else, the
Trainer does everything it always does (LR schedule, per-epoch seeding,
finite-loss check, gradient clipping when asked, history, curves, the atomic
checkpoint after every epoch, best-weights tracking).  Runs alternate so a
background load hits both alike; the median seconds per epoch are compared.

Run from the repository root::

    python benchmarks/trainer_overhead.py                     # steering, 512 frames, 3 epochs × 3 rounds
    python benchmarks/trainer_overhead.py --task gesture --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from apptool.datasets import load_splits
from apptool.engine.trainer import Trainer, seed_everything
from apptool.plugins import get_plugins


def bare_epochs(task, config, dataset, epochs: int) -> list[float]:
    """Seconds per epoch of the plainest loop that trains the same thing."""
    seed_everything(int(config["seed"]))
    model = task.build_model(config).train()
    opts = config["train"]
    optimizer = torch.optim.AdamW(model.parameters(), lr=float(opts["lr"]), weight_decay=float(opts["weight_decay"]))
    loader = DataLoader(dataset, batch_size=int(opts["batch_size"]), shuffle=True, collate_fn=task.collate)
    seconds = []
    for _ in range(epochs):
        started = time.perf_counter()
        for batch in loader:
            loss = task.loss(model, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        seconds.append(time.perf_counter() - started)
    return seconds


def trainer_epochs(task, config, dataset) -> list[float]:
    """Seconds per epoch of the Trainer, checkpoints and history included."""
    with tempfile.TemporaryDirectory() as out:
        _, history = Trainer(task, config, Path(out), progress=False).fit(task.build_model(config), dataset)
    return [row["seconds"] for row in history]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="steering")
    parser.add_argument("--samples", type=int, default=512, help="training samples (data.n_train where the task has it)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    task = get_plugins().task(args.task)
    config = task.config("quick")
    if "n_train" in config.get("data", {}):
        config["data"]["n_train"] = args.samples
    # steps=0: the epochs below, not a preset's budget in steps
    config["train"].update(epochs=args.epochs, steps=0, val_fraction=0.0, patience=0, optimizer="adamw", grad_clip=0.0)
    dataset = load_splits(task, config, None).train
    bare, trainer = [], []
    for _ in range(args.rounds):
        bare += bare_epochs(task, config, dataset, args.epochs)
        trainer += trainer_epochs(task, config, dataset)
    bare_s, trainer_s = statistics.median(bare), statistics.median(trainer)
    print(
        f"{args.task}: {len(dataset)} samples, batch {config['train']['batch_size']}, {args.epochs} epochs × "
        f"{args.rounds} rounds, {args.threads} torch thread(s)"
    )
    print("| loop | median s/epoch |")
    print("|---|---|")
    print(f"| bare PyTorch | {bare_s:.3f} |")
    print(f"| apptool Trainer | {trainer_s:.3f} |")
    print(f"Trainer / bare = {trainer_s / bare_s:.3f} ({100 * (trainer_s / bare_s - 1):+.1f} % per epoch)")


if __name__ == "__main__":
    main()
