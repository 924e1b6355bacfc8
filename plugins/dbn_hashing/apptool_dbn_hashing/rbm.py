"""Restricted Boltzmann machines trained by contrastive divergence, after Hinton's practical guide (2010).

Bernoulli–Bernoulli RBMs take data in [0, 1] (pixel intensities used as
probabilities); Gaussian–Bernoulli RBMs take real values standardised to unit
variance.  Training is CD-k or persistent CD on mini-batches, with momentum
0.5 switching to 0.9, L2 weight decay and a sparsity target on the hidden
units.  Every epoch logs the reconstruction error and the mean free energy of
the training data and of held-out data (a growing gap means overfitting).
All randomness comes from one seeded ``torch.Generator``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from apptool.errors import ConfigError
from apptool_dbn_hashing.settings import RBM_DEFAULTS


@dataclass
class RBM:
    """Weights [visible, hidden] and biases of one RBM; ``visible`` is "bernoulli" or "gaussian"."""

    weight: torch.Tensor
    visible_bias: torch.Tensor
    hidden_bias: torch.Tensor
    visible: str = "bernoulli"

    @classmethod
    def init(cls, data: torch.Tensor, n_hidden: int, visible: str, generator: torch.Generator) -> "RBM":
        """Small random weights; visible biases log(p/(1−p)) of the data (Bernoulli) or its mean (Gaussian)."""
        if visible not in ("bernoulli", "gaussian"):
            raise ConfigError(f"RBM visible units {visible!r}; expected bernoulli or gaussian")
        weight = 0.01 * torch.randn(data.shape[1], n_hidden, generator=generator)
        if visible == "bernoulli":
            p = data.mean(0).clamp(0.01, 0.99)
            visible_bias = torch.log(p / (1 - p))
        else:
            visible_bias = data.mean(0)
        return cls(weight, visible_bias, torch.zeros(n_hidden), visible)

    def hidden_probs(self, v: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(v @ self.weight + self.hidden_bias)

    def visible_mean(self, h: torch.Tensor) -> torch.Tensor:
        pre = h @ self.weight.T + self.visible_bias
        return torch.sigmoid(pre) if self.visible == "bernoulli" else pre

    def sample_visible(self, h: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        mean = self.visible_mean(h)
        if self.visible == "bernoulli":
            return torch.bernoulli(mean, generator=generator)
        return mean + torch.randn(mean.shape, generator=generator)

    def free_energy(self, v: torch.Tensor) -> torch.Tensor:
        """F(v) = −log Σ_h exp(−E(v, h)), per row (unit-variance Gaussian visible units when Gaussian)."""
        hidden = F.softplus(v @ self.weight + self.hidden_bias).sum(1)
        if self.visible == "bernoulli":
            return -(v @ self.visible_bias) - hidden
        return 0.5 * ((v - self.visible_bias) ** 2).sum(1) - hidden

    def reconstruction_error(self, v: torch.Tensor) -> torch.Tensor:
        """Mean squared error per example of the one-step mean-field reconstruction."""
        return ((v - self.visible_mean(self.hidden_probs(v))) ** 2).sum(1).mean()


def batch_size(opts: dict[str, Any], n: int) -> int:
    """The CD minibatch for ``n`` examples: epochs take its full batches only, so never more than ``n``."""
    return max(1, min(int(opts["batch_size"]), n))


def train_rbm(
    rbm: RBM,
    data: torch.Tensor,
    opts: dict[str, Any],
    generator: torch.Generator,
    held_out: torch.Tensor | None = None,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> list[dict]:
    """Fit ``rbm`` to ``data`` [N, visible] in place by CD-k or PCD; return the per-epoch log."""
    opts = {**RBM_DEFAULTS, **opts}
    lr = float(opts["gaussian_lr"] if rbm.visible == "gaussian" else opts["lr"])
    k, batch = max(1, int(opts["cd_k"])), batch_size(opts, len(data))
    target, cost, decay = float(opts["sparsity_target"]), float(opts["sparsity_cost"]), float(opts["sparsity_decay"])
    velocity = [torch.zeros_like(p) for p in (rbm.weight, rbm.visible_bias, rbm.hidden_bias)]
    activity = torch.full_like(rbm.hidden_bias, target)  # running mean of hidden probabilities, for the sparsity term
    chain = None
    if opts["persistent"]:  # fantasy particles start at data and are never reset
        chain = rbm.hidden_probs(data[torch.randperm(len(data), generator=generator)[:batch]])
        chain = torch.bernoulli(chain, generator=generator)
    monitor = data[torch.randperm(len(data), generator=generator)[: min(len(data), 1000)]]
    log = []
    for epoch in range(int(opts["epochs"])):
        momentum = float(opts["momentum_start"] if epoch < int(opts["momentum_switch_epoch"]) else opts["momentum_final"])
        order = torch.randperm(len(data), generator=generator)
        error = 0.0
        for start in range(0, len(data) - batch + 1, batch):
            v0 = data[order[start : start + batch]]
            ph0 = rbm.hidden_probs(v0)
            h = torch.bernoulli(ph0, generator=generator) if chain is None else chain
            for _ in range(k):
                # CD reconstructs with mean-field visibles; PCD keeps a proper Markov chain, so it samples them
                vk = rbm.visible_mean(h) if chain is None else rbm.sample_visible(h, generator)
                phk = rbm.hidden_probs(vk)
                h = torch.bernoulli(phk, generator=generator)
            if chain is not None:
                chain = h
            n = len(v0)
            grad_w = (v0.T @ ph0 - vk.T @ phk) / n - float(opts["weight_decay"]) * rbm.weight
            grad_v = (v0 - vk).mean(0)
            grad_h = (ph0 - phk).mean(0)
            if cost > 0:
                activity = decay * activity + (1 - decay) * ph0.mean(0)
                penalty = cost * (activity - target)
                grad_h = grad_h - penalty
                grad_w = grad_w - v0.mean(0)[:, None] * penalty[None, :]
            for vel, grad, param in zip(velocity, (grad_w, grad_v, grad_h), (rbm.weight, rbm.visible_bias, rbm.hidden_bias)):
                vel.mul_(momentum).add_(grad, alpha=lr)
                param.add_(vel)
            error += float(((v0 - rbm.visible_mean(ph0)) ** 2).sum())
        row = {
            "epoch": epoch + 1,
            "momentum": momentum,
            "reconstruction_error": error / (len(data) // batch * batch),
            "free_energy_train": float(rbm.free_energy(monitor).mean()),
            "hidden_activity": float(rbm.hidden_probs(monitor).mean()),
        }
        if held_out is not None and len(held_out):
            row["free_energy_held_out"] = float(rbm.free_energy(held_out).mean())
        if not all(torch.isfinite(torch.tensor(v)) for v in row.values()):
            raise FloatingPointError(f"RBM training diverged at epoch {epoch + 1} ({row}); lower model.rbm.lr or gaussian_lr")
        log.append(row)
        if on_epoch is not None:
            on_epoch(row)
    return log


def train_stack(
    data: torch.Tensor,
    sizes: list[int],
    visible: str,
    opts: dict[str, Any],
    seed: int,
    held_out: torch.Tensor | None = None,
    progress: bool = True,
) -> tuple[list[RBM], list[dict]]:
    """Greedy layer-wise DBN pretraining: each RBM learns the hidden probabilities of the one below."""
    generator = torch.Generator().manual_seed(int(seed))
    opts = {**RBM_DEFAULTS, **opts}
    rbms, logs = [], []
    console = Console(stderr=True)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with torch.no_grad(), Progress(*columns, console=console, disable=not progress, transient=False) as bars:
        for layer, n_hidden in enumerate(sizes):
            kind = visible if layer == 0 else "bernoulli"
            rbm = RBM.init(data, n_hidden, kind, generator)
            name = f"RBM {layer + 1}/{len(sizes)} {data.shape[1]}→{n_hidden} ({kind[0].upper()}-B, " + (
                f"PCD-{opts['cd_k']})" if opts["persistent"] else f"CD-{opts['cd_k']})"
            )
            bar = bars.add_task(name, total=int(opts["epochs"]))

            def report(row, bar=bar, name=name):
                extra = f" · F held-out {row['free_energy_held_out']:.2f}" if "free_energy_held_out" in row else ""
                bars.update(
                    bar,
                    advance=1,
                    description=f"{name} · recon {row['reconstruction_error']:.4f} "
                    f"· F train {row['free_energy_train']:.2f}{extra}",
                )

            log = train_rbm(rbm, data, opts, generator, held_out, report)
            logs.append(
                {"layer": layer + 1, "visible": kind, "n_visible": int(data.shape[1]), "n_hidden": n_hidden, "epochs": log}
            )
            rbms.append(rbm)
            data = rbm.hidden_probs(data)
            held_out = rbm.hidden_probs(held_out) if held_out is not None else None
    return rbms, logs
