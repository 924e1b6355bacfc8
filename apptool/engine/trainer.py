"""One trainer for every task: the task supplies data, model and loss; this loop does the rest.

Seeding makes a run reproducible, and the shuffling of each epoch is seeded by
(seed, epoch), so a run resumed from a checkpoint continues exactly as an
uninterrupted one would.  AMP and DDP switch on by themselves on CUDA and under
torchrun.
"""

from __future__ import annotations

import contextlib
import copy
import math
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset, WeightedRandomSampler

from apptool.bundle import jsonable
from apptool.config import check_config
from apptool.engine import distributed
from apptool.engine.callbacks import Callbacks
from apptool.engine.checkpoint import CHECKPOINT, load_checkpoint, save_checkpoint
from apptool.engine.progress import progress_display
from apptool.errors import ConfigError
from apptool.task import Task


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def class_labels(dataset: Dataset) -> list[int] | None:
    """The dataset's integer class of each sample (torchvision's ``targets`` or a ``labels`` list), else None."""
    if isinstance(dataset, Subset):
        inner = class_labels(dataset.dataset)
        return None if inner is None else [inner[i] for i in dataset.indices]
    for name in ("targets", "labels"):
        labels = getattr(dataset, name, None)
        if labels is None:
            continue
        array = np.asarray(labels)
        if array.ndim == 1 and len(array) == len(dataset) and np.issubdtype(array.dtype, np.integer):
            return array.tolist()
    return None


#: ``train.balance_classes`` resamples when the most frequent class has this many times the samples of the rarest.
SKEWED = 2.0


def balanced_sampler(dataset: Dataset, generator: torch.Generator) -> WeightedRandomSampler | None:
    """A sampler that draws every class equally often (with replacement), or None: no labels, or classes not skewed."""
    labels = class_labels(dataset)
    if labels is None:
        return None
    classes, index, counts = np.unique(labels, return_inverse=True, return_counts=True)
    if len(classes) < 2 or counts.max() < SKEWED * counts.min():
        return None
    return WeightedRandomSampler((1.0 / counts[index]).tolist(), len(labels), replacement=True, generator=generator)


def split_validation(dataset: Dataset, fraction: float, seed: int, min_size: int = 1) -> tuple[Dataset, Dataset | None]:
    """A seeded split of the training data into train and validation parts.

    When the dataset exposes class labels the split is stratified: every class
    with two or more samples puts at least one in validation and keeps at least
    one in training, so a tiny set still validates on (and trains on) each class.
    A split smaller than ``min_size`` is not made: a handful of samples picks
    weights by chance, and the data is worth more to training.
    """
    n = len(dataset)
    n_val = int(round(n * fraction)) if fraction > 0 else 0
    if n_val < max(min_size, 1) or n - n_val < 1:
        return dataset, None
    generator = torch.Generator().manual_seed(seed)
    labels = class_labels(dataset)
    if labels is None:
        order = torch.randperm(n, generator=generator).tolist()
        return Subset(dataset, order[n_val:]), Subset(dataset, order[:n_val])
    by_class: dict[int, list[int]] = {}
    for index in torch.randperm(n, generator=generator).tolist():
        by_class.setdefault(labels[index], []).append(index)
    train_idx, val_idx = [], []
    for members in by_class.values():
        take = min(max(int(round(len(members) * fraction)), 1), len(members) - 1)
        val_idx += members[:take]
        train_idx += members[take:]
    return Subset(dataset, sorted(train_idx)), Subset(dataset, sorted(val_idx))


def epochs_for_budget(opts: dict[str, Any], steps_per_epoch: int) -> tuple[int, str]:
    """Epochs to train and a sentence saying why: ``train.steps`` (when set) over the data at hand, else ``train.epochs``.

    A budget in optimizer steps means the same amount of learning on 50 samples
    and on 50,000; ``train.min_epochs`` and ``train.max_epochs`` bound it.
    """
    steps = int(opts.get("steps") or 0)
    if steps <= 0:
        epochs = int(opts["epochs"])
        return epochs, f"budget {epochs} epochs x {steps_per_epoch} steps per epoch = {epochs * steps_per_epoch} steps"
    wanted = math.ceil(steps / max(steps_per_epoch, 1))
    low, high = int(opts.get("min_epochs") or 1), int(opts.get("max_epochs") or wanted)
    epochs = min(max(wanted, low), high)
    bound = f" (max {high})" if epochs < wanted else f" (min {low})" if epochs > wanted else ""
    return epochs, f"budget {steps} steps / {steps_per_epoch} steps per epoch -> {epochs} epochs{bound}"


def lr_factor(step: int, total: int, warmup: int, schedule: str) -> float:
    """Multiplier of the base learning rate at optimizer step ``step``."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(total - warmup, 1)
    if schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    if schedule == "step":
        return 0.1 ** int(progress * 3)  # divide by 10 at 1/3 and 2/3 of training
    return 1.0


def to_device(batch: Any, device: torch.device) -> Any:
    if torch.is_tensor(batch):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def announce_epoch(dataset: Dataset, epoch: int) -> None:
    """Call ``set_epoch(epoch)`` on the dataset (under any Subset wrappers) if it has one.

    A dataset that augments derives its random draws from (seed, epoch, index)
    through this, so a resumed run sees the same draws as an uninterrupted one.
    """
    while dataset is not None:
        if callable(getattr(dataset, "set_epoch", None)):
            dataset.set_epoch(epoch)
            return
        dataset = getattr(dataset, "dataset", None)


def batch_size_of(batch: Any) -> int:
    if torch.is_tensor(batch):
        return int(batch.shape[0])
    if isinstance(batch, dict):
        return batch_size_of(next(iter(batch.values())))
    if isinstance(batch, (list, tuple)) and batch:
        return batch_size_of(batch[0])
    return 1


class TaskLoss(torch.nn.Module):
    """``forward(batch) = task.loss(model, batch)``: DDP wraps this, so a task's loss always gets the bare model
    (as Lightning routes ``forward`` to ``training_step``)."""

    def __init__(self, task: Task, model: torch.nn.Module):
        super().__init__()
        self.task, self.model = task, model

    def forward(self, batch: Any) -> torch.Tensor:
        return self.task.loss(self.model, batch)


class Trainer:
    """Trains ``task``'s model on its data with the ``train`` section of ``config``.

    Of the task it uses the training side only (``name``, the config schema,
    ``collate``, ``prepare``, ``loss``), so a source task that is no deployable
    Task trains here too (``apptool.pretrain.SourceTask``).
    """

    def __init__(self, task: Task, config: dict[str, Any], out_dir: Path, progress: bool = True):
        self.task, self.config, self.out_dir = task, config, Path(out_dir)
        self.opts = check_config(task, config, trained=True)["train"]
        self.device = distributed.setup()
        self.amp = self.device.type == "cuda"
        self.show_progress = progress and distributed.is_main()
        self.callbacks = Callbacks.for_run(config, self.out_dir)
        self.prepared: dict[str, Any] | None = None  # what Task.prepare returned (metrics.json's "prepare")
        self.calibrated: dict[str, Any] | None = None  # what Task.calibrate returned (metrics.json's "calibrate")

    # -- building blocks -----------------------------------------------------
    def _loader(self, dataset: Dataset, shuffle: bool, epoch: int) -> DataLoader:
        seed = int(self.config["seed"]) * 1000 + epoch
        batch_size = max(1, int(self.opts["batch_size"]) // distributed.world_size())
        if distributed.world_size() > 1:
            sampler = DistributedSampler(dataset, shuffle=shuffle, seed=seed, drop_last=False)
            sampler.set_epoch(0)
            return DataLoader(
                dataset,
                batch_size=batch_size,
                sampler=sampler,
                collate_fn=self.task.collate,
                num_workers=int(self.opts["num_workers"]),
            )
        generator = torch.Generator().manual_seed(seed)
        sampler = balanced_sampler(dataset, generator) if shuffle and self.opts.get("balance_classes") else None
        return DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=shuffle and sampler is None,
            sampler=sampler,
            generator=generator,
            collate_fn=self.task.collate,
            num_workers=int(self.opts["num_workers"]),
        )

    def _optimizer(self, model: torch.nn.Module) -> torch.optim.Optimizer:
        lr, decay = float(self.opts["lr"]), float(self.opts["weight_decay"])
        encoder = getattr(model, "encoder", None)
        encoder_ids = {id(p) for p in encoder.parameters()} if encoder is not None else set()
        head = [p for p in model.parameters() if id(p) not in encoder_ids]
        groups = [{"params": head, "lr": lr, "base_lr": lr}]
        if encoder_ids and self.opts["finetune"] != "frozen":
            enc_lr = lr * float(self.opts["backbone_lr_mult"])
            groups.append({"params": list(encoder.parameters()), "lr": enc_lr, "base_lr": enc_lr})
        if self.opts["optimizer"] == "sgd":
            return torch.optim.SGD(groups, lr=lr, momentum=float(self.opts["momentum"]), weight_decay=decay)
        return torch.optim.AdamW(groups, lr=lr, weight_decay=decay)

    def _encoder_trainable(self, epoch: int) -> bool:
        mode = self.opts["finetune"]
        return mode == "full" or (mode == "gradual" and epoch >= int(self.opts["unfreeze_epoch"]))

    def _set_trainable(self, model: torch.nn.Module, epoch: int) -> None:
        encoder = getattr(model, "encoder", None)
        if encoder is None:
            return
        trainable = self._encoder_trainable(epoch)
        for p in encoder.parameters():
            p.requires_grad_(trainable)
        if not trainable:
            encoder.eval()  # frozen features keep their batch-norm statistics

    def _wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """The module whose forward is one batch's loss: under DDP, wrapped so gradients are synchronised."""
        step = TaskLoss(self.task, model)
        if distributed.world_size() <= 1:
            return step
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(step, device_ids=ids, find_unused_parameters=True)

    # -- the loop --------------------------------------------------------------
    def fit(self, model: torch.nn.Module, train_set: Dataset, resume: bool = False) -> tuple[torch.nn.Module, list[dict]]:
        """Train ``model`` in place; return it (best validation weights restored) and the history."""
        seed_everything(int(self.config["seed"]))
        train_part, val_part = split_validation(
            train_set, float(self.opts["val_fraction"]), int(self.config["seed"]), int(self.opts.get("min_val_size") or 1)
        )
        ckpt_path = self.out_dir / CHECKPOINT
        if resume and not distributed.same_on_every_rank(ckpt_path.exists()):  # else the ranks would train different epochs
            raise ConfigError(f"--resume: {ckpt_path} exists on some nodes only; put --out on a filesystem all nodes share")
        resuming = resume and ckpt_path.exists()
        # a resumed run's checkpoint already holds what prepare made, and its result
        self.prepared = None if resuming else jsonable(self.task.prepare(model, train_part, val_part, self.config))
        model.to(self.device)
        optimizer = self._optimizer(model)
        self.model, self.optimizer = model, optimizer  # what callbacks reach through the trainer
        steps_per_epoch = len(self._loader(train_part, False, 0))
        epochs, self.budget = epochs_for_budget(self.opts, steps_per_epoch)
        self.epochs = epochs
        if distributed.is_main():
            print(f"{self.task.name}: {self.budget}", file=sys.stderr)
        total_steps = epochs * steps_per_epoch
        warmup = int(self.opts["warmup_epochs"]) * steps_per_epoch
        scaler = torch.amp.GradScaler("cuda") if self.amp else None
        progress = {"epoch": -1, "step": 0, "best_val": None, "bad_epochs": 0, "history": [], **run_identity(self.config)}
        progress["prepared"] = self.prepared
        best_state = None
        if resuming:
            try:
                progress, best_state = load_checkpoint(ckpt_path, model, optimizer, scaler)
            except (RuntimeError, KeyError, ValueError) as exc:  # a checkpoint of another model
                raise ConfigError(
                    f"--resume: {ckpt_path} does not fit this model ({' '.join(str(exc).split())[:300]}); "
                    "train without --resume or into another --out"
                ) from None
            model.to(self.device)
            self.prepared = progress.get("prepared")
        elif resume and distributed.is_main():
            print(f"--resume: no {CHECKPOINT} in {self.out_dir}; training from scratch", file=sys.stderr)

        bars = progress_display(self.show_progress)
        with bars:
            epoch_bar = bars.add_task(f"train {self.task.name}", total=epochs, completed=progress["epoch"] + 1)
            for epoch in range(progress["epoch"] + 1, epochs):
                started = time.perf_counter()
                self.callbacks.fire("on_epoch_start", self, epoch)
                self._set_trainable(model, epoch)
                wrapped = self._wrap(model)
                seed_everything(int(self.config["seed"]) * 1000 + epoch)
                announce_epoch(train_set, epoch)
                train_loss = self._train_epoch(
                    wrapped, model, optimizer, scaler, train_part, epoch, progress, total_steps, warmup, bars
                )
                val_loss = self._validate(wrapped, model, val_part) if val_part is not None else None
                if val_loss is not None:
                    self.callbacks.fire("on_validation_end", self, epoch, val_loss)
                progress["history"].append(
                    {
                        "epoch": epoch + 1,
                        "epochs": epochs,
                        "train_loss": train_loss,
                        "val_loss": val_loss,
                        "lr": optimizer.param_groups[0]["lr"],
                        "seconds": round(time.perf_counter() - started, 3),
                    }
                )
                monitored = val_loss if val_loss is not None else train_loss
                if progress["best_val"] is None or monitored < progress["best_val"]:
                    progress["best_val"], progress["bad_epochs"] = monitored, 0
                    best_state = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
                else:
                    progress["bad_epochs"] += 1
                progress["epoch"] = epoch
                stop = 0 < int(self.opts["patience"]) <= progress["bad_epochs"]
                progress["stopped_early"] = stop
                if distributed.is_main():
                    save_checkpoint(ckpt_path, model, optimizer, progress, best_state, scaler)
                    self.callbacks.fire("on_checkpoint", self, ckpt_path)
                self.callbacks.fire("on_epoch_end", self, epoch, progress["history"])
                bars.update(
                    epoch_bar,
                    advance=1,
                    description=f"train {self.task.name} · loss {train_loss:.4f}"
                    + (f" · val {val_loss:.4f}" if val_loss is not None else ""),
                )
                if stop:
                    break
        self.callbacks.fire("on_train_end", self, progress["history"])
        distributed.barrier()
        if best_state is not None:
            model.load_state_dict(best_state)
        model.cpu().eval()
        self.calibrated = jsonable(self.task.calibrate(model, train_part, val_part, self.config))
        return model, progress["history"]

    def stage_results(self) -> dict[str, dict]:
        """What ``Task.prepare`` and ``Task.calibrate`` reported, by metrics.json section."""
        return {
            name: result for name, result in (("prepare", self.prepared), ("calibrate", self.calibrated)) if result is not None
        }

    def _train_epoch(self, wrapped, model, optimizer, scaler, dataset, epoch, progress, total_steps, warmup, bars) -> float:
        wrapped.train()
        self._set_trainable(model, epoch)  # train() above re-enabled batch-norm updates of a frozen encoder
        loader = self._loader(dataset, True, epoch)
        batch_bar = bars.add_task(f"  epoch {epoch + 1}", total=len(loader))
        total, count = 0.0, 0
        for batch in loader:
            factor = lr_factor(progress["step"], total_steps, warmup, self.opts["schedule"])
            for group in optimizer.param_groups:
                group["lr"] = group["base_lr"] * factor
            batch = to_device(batch, self.device)
            with torch.autocast("cuda", enabled=self.amp) if self.amp else contextlib.nullcontext():
                loss = wrapped(batch)
            if not torch.isfinite(loss):
                raise ConfigError(
                    f"training loss became {loss.item()} at epoch {epoch + 1}, step {progress['step']}; "
                    "lower train.lr or set train.grad_clip"
                )
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
            else:
                loss.backward()
            if float(self.opts["grad_clip"]) > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), float(self.opts["grad_clip"]))
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            size = batch_size_of(batch)
            total += loss.item() * size
            count += size
            progress["step"] += 1
            bars.update(batch_bar, advance=1)
        bars.remove_task(batch_bar)
        return distributed.mean_across_ranks(total, count)

    @torch.no_grad()
    def _validate(self, wrapped, model, dataset) -> float:
        wrapped.eval()
        total, count = 0.0, 0
        for batch in self._loader(dataset, False, 0):
            batch = to_device(batch, self.device)
            size = batch_size_of(batch)
            total += self.task.loss(model, batch).item() * size
            count += size
        return distributed.mean_across_ranks(total, count)


def run_identity(config: dict[str, Any]) -> dict[str, Any]:
    """What a checkpoint records of its run, so ``--resume`` can refuse another task's or model's checkpoint."""
    return {"run_id": config.get("run_id"), "task": config.get("task"), "model": config.get("model")}
