"""Training callbacks: what runs at the trainer's events, so a plugin adds a logger or a schedule without forking the loop.

Per epoch the trainer calls, on every rank and in this order:
``on_epoch_start(trainer, epoch)``, ``on_validation_end(trainer, epoch, val_loss)``
(when there is a validation split), ``on_checkpoint(trainer, path)`` (rank 0
only, once the resumable checkpoint is on disk), ``on_epoch_end(trainer, epoch,
history)``; then ``on_train_end(trainer, history)`` once.  ``epoch`` counts from
0; ``history`` is one dict per finished epoch (``epoch`` from 1, ``train_loss``,
``val_loss``, ``lr``, ``seconds``).  ``trainer`` offers ``task``, ``config``,
``out_dir``, ``device``, ``epochs``, ``model`` and ``optimizer``, whose param
groups' ``base_lr`` is what the schedule multiplies at every step.

The built-in metrics.csv/curves.png writer is the first callback of every run;
``train.tensorboard: true`` adds TensorBoard scalars.  This module imports no
torch, so a plugin module may subclass :class:`Callback` on the deployment path.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from apptool.errors import ConfigError

BUILTIN = "apptool"
#: curves.png is redrawn at most this often (and after the last epoch): hundreds of short epochs of a small data set
#: would otherwise spend more time plotting than training.
PLOT_EVERY_S = 30.0


class Callback:
    """Base class of training callbacks: override the events you need; the others do nothing."""

    def on_epoch_start(self, trainer: Any, epoch: int) -> None:
        """Before the epoch's first batch (``trainer.optimizer``'s ``base_lr`` may be changed here)."""

    def on_validation_end(self, trainer: Any, epoch: int, val_loss: float) -> None:
        """After the validation pass of the epoch (not called when the run has no validation split)."""

    def on_checkpoint(self, trainer: Any, path: Path) -> None:
        """After rank 0 wrote the resumable checkpoint of the epoch to ``path``."""

    def on_epoch_end(self, trainer: Any, epoch: int, history: list[dict]) -> None:
        """After the epoch; ``history[-1]`` is its row."""

    def on_train_end(self, trainer: Any, history: list[dict]) -> None:
        """After the last epoch (or early stopping), before the best weights are restored and the bundle written."""


def is_main() -> bool:
    from apptool.engine import distributed

    return distributed.is_main()


class HistoryWriter(Callback):
    """metrics.csv after every epoch and curves.png at most every PLOT_EVERY_S and at the end, on rank 0."""

    def __init__(self) -> None:
        self.plotted = time.perf_counter()

    def on_epoch_end(self, trainer: Any, epoch: int, history: list[dict]) -> None:
        from apptool.engine.curves import write_history

        if is_main():
            plot = time.perf_counter() - self.plotted > PLOT_EVERY_S
            write_history(trainer.out_dir, history, plot=plot)
            self.plotted = time.perf_counter() if plot else self.plotted

    def on_train_end(self, trainer: Any, history: list[dict]) -> None:
        from apptool.engine.curves import write_history

        if is_main() and history:
            write_history(trainer.out_dir, history, plot=True)


class TensorBoardLogger(Callback):
    """Losses and learning rate as TensorBoard scalars in ``<out>/tensorboard`` (``train.tensorboard: true``)."""

    def __init__(self, log_dir: Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError("train.tensorboard = true needs the tensorboard package (pip install tensorboard)") from None
        self.writer = SummaryWriter(str(log_dir)) if is_main() else None

    def on_epoch_end(self, trainer: Any, epoch: int, history: list[dict]) -> None:
        if self.writer is None:
            return
        row = history[-1]
        for key in ("train_loss", "val_loss", "lr"):
            if row.get(key) is not None:
                self.writer.add_scalar(key, row[key], row["epoch"])
        self.writer.flush()

    def on_train_end(self, trainer: Any, history: list[dict]) -> None:
        if self.writer is not None:
            self.writer.close()


class Callbacks:
    """The run's callbacks in order, built-in first; a plugin's callback that fails stops the run with one line naming it."""

    def __init__(self, entries: list[tuple[str, Callback]]) -> None:
        self.entries = entries

    @classmethod
    def for_run(cls, config: dict[str, Any], out_dir: Path) -> Callbacks:
        from apptool.plugins import get_plugins

        entries: list[tuple[str, Callback]] = [(BUILTIN, HistoryWriter())]
        if config["train"].get("tensorboard"):
            entries.append((BUILTIN, TensorBoardLogger(Path(out_dir) / "tensorboard")))
        for plugin, answer in get_plugins().results("apptool_train_callbacks", config=config):
            entries += [(plugin, callback) for callback in answer or []]
        return cls(entries)

    def fire(self, event: str, trainer: Any, *args: Any) -> None:
        """Call ``event`` on every callback that has it."""
        from apptool.plugins import get_plugins

        for plugin, callback in self.entries:
            method = getattr(callback, event, None)
            if method is None:
                continue
            if plugin == BUILTIN:
                method(trainer, *args)
            else:
                get_plugins().call(plugin, f"training callback {type(callback).__name__}.{event}", method, trainer, *args)
