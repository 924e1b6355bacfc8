"""MiniRocket features (Dempster et al., KDD 2021) as a causal torch module that streams.

MiniRocket convolves the series with 84 fixed kernels (length 9, weights -1
and three 2s) at exponentially spaced dilations, and counts, per kernel,
dilation and bias, the proportion of positive values (PPV) of the output.
The biases are quantiles of the outputs on training series, so the features
adapt to the data without any gradient step; a linear classifier over them is
the strongest cheap learner on the UCR/UEA archives.

Here every convolution is causal (left zero padding): output t sees inputs
t - 8d .. t, so a proportion is a running mean and the step graph carries it
like the FCN's.  As in MiniRocket, every other kernel/dilation pair counts
only the outputs that see no padding.  Multivariate inputs: each pair reads a
random subset of the channels, summed (MiniRocket's multivariate variant).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from apptool_gesture.rocket_plan import GOLDEN, KERNEL_LENGTH, KERNELS, channel_masks, dilations_for, fit_ridge

#: Inputs are rounded to multiples of 1/GRID first: the integer kernels then sum them exactly in float32 in any order,
#: so torch, ONNX Runtime and the step graph compare exactly the same outputs with the biases.
GRID = 4096.0


def on_grid(x: torch.Tensor) -> torch.Tensor:
    return torch.round(x * GRID) / GRID


class MiniRocket(nn.Module):
    """(B, T, C) padded batch and lengths → (B, n_features) proportions of positive values; no trainable weights."""

    def __init__(self, n_channels: int, length: int, num_features: int = 10_000, seed: int = 0):
        super().__init__()
        self.dilations, self.biases_per_kernel = dilations_for(length, num_features)
        n_kernels = len(KERNELS)
        masks = torch.from_numpy(channel_masks(n_channels, n_kernels * len(self.dilations), seed))
        kernels = torch.from_numpy(KERNELS)
        for i, n_biases in enumerate(self.biases_per_kernel):
            mask = masks[i * n_kernels : (i + 1) * n_kernels]
            self.register_buffer(f"weight{i}", kernels[:, None, :] * mask[:, :, None])  # (84, C, 9)
            self.register_buffer(f"bias{i}", torch.zeros(n_kernels, n_biases))
            unpadded = (torch.arange(n_kernels) + i) % 2 == 1  # MiniRocket alternates padding by kernel and dilation
            self.register_buffer(f"unpadded{i}", unpadded[:, None].expand(-1, n_biases).reshape(-1).float())
        self.num_features = n_kernels * sum(self.biases_per_kernel)
        per_feature = [(getattr(self, f"unpadded{i}"), self.reach(i)) for i in range(len(self.dilations))]
        self.register_buffer("feature_unpadded", torch.cat([u for u, _ in per_feature]), persistent=False)
        self.register_buffer("feature_reach", torch.cat([torch.full_like(u, r) for u, r in per_feature]), persistent=False)

    def reach(self, i: int) -> int:
        """Past frames output t of dilation ``i`` reads: it sees no padding from frame ``reach`` on."""
        return (KERNEL_LENGTH - 1) * self.dilations[i]

    def convolve(self, x: torch.Tensor, i: int) -> torch.Tensor:
        """(B, T, C) → (B, 84, T) causal convolution outputs at dilation ``i``."""
        padded = F.pad(on_grid(x).transpose(1, 2), (self.reach(i), 0))
        return F.conv1d(padded, getattr(self, f"weight{i}"), dilation=self.dilations[i])

    @torch.no_grad()
    def fit(self, sequences: list[np.ndarray], seed: int = 0) -> None:
        """Biases: per kernel and dilation, quantiles of the outputs on one random training sequence (as MiniRocket)."""
        rng = np.random.default_rng(seed)
        quantiles = (np.arange(1, self.num_features + 1) * GOLDEN) % 1
        used = 0
        for i, n_biases in enumerate(self.biases_per_kernel):
            bias = getattr(self, f"bias{i}")
            for k in range(len(KERNELS)):
                seq = torch.from_numpy(np.asarray(sequences[int(rng.integers(len(sequences)))], np.float32))
                out = self.convolve(seq[None], i)[0, k]
                q = torch.from_numpy(quantiles[used : used + n_biases]).to(out)
                bias[k] = torch.quantile(out, q)
                used += n_biases

    @property
    def buffer_frames(self) -> int:
        """Past input frames one step needs: the reach of the largest dilation."""
        return self.reach(len(self.dilations) - 1)

    def proportions(self, counts: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """(B, n_features) proportions from the positive counts and each sequence's (B, 1) frames so far."""
        seen = (frames - self.feature_reach).clamp(min=1)  # an unpadded feature counts the frames that read no padding
        return counts / torch.where(self.feature_unpadded > 0, seen, frames)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        frames = torch.ones_like(x[:, :, 0], dtype=torch.int64).cumsum(1) - 1  # (B, T), dynamic under ONNX
        inside = frames < lengths.unsqueeze(1)
        counts = []
        for i in range(len(self.dilations)):
            positive = (self.convolve(x, i).unsqueeze(2) > getattr(self, f"bias{i}").unsqueeze(2)).flatten(1, 2)
            unpadded = getattr(self, f"unpadded{i}").unsqueeze(1) > 0  # (F_i, 1)
            counted = inside.unsqueeze(1) & (~unpadded | (frames >= self.reach(i)).unsqueeze(1))  # (B, F_i, T)
            counts.append((positive & counted).to(x).sum(2))
        return self.proportions(torch.cat(counts, 1), lengths.to(x).unsqueeze(1))

    def step(
        self, frame: torch.Tensor, buffer: torch.Tensor, counts: torch.Tensor, frames: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One (B, C) frame → proportions so far, the next buffer (B, buffer_frames, C) and counts (B, n_features).

        ``frames`` (B, 1) counts this frame; a zero buffer is the padding before the start.
        """
        window = torch.cat([buffer, frame.unsqueeze(1)], 1)
        last = self.buffer_frames
        new = []
        for i, dilation in enumerate(self.dilations):
            taps = on_grid(window[:, last - self.reach(i) :: dilation]).transpose(1, 2)  # (B, C, 9)
            positive = (F.conv1d(taps, getattr(self, f"weight{i}")) > getattr(self, f"bias{i}")).flatten(1)
            blind = (frames - 1 < self.reach(i)).to(frame) * getattr(self, f"unpadded{i}")  # read padding: not counted
            new.append(positive.to(frame) * (1 - blind))
        counts = counts + torch.cat(new, 1)
        return self.proportions(counts, frames), window[:, 1:], counts


#: The MiniRocket head's share of the mix that ``fit_mix_shares`` tries on the validation split.
SHARES = np.linspace(0.0, 1.0, 21)
NO_SHARE = 1e-6  # a share of 0 as stored: its log stays finite


def apply_in_batches(function, sequences: list[np.ndarray], width: int) -> np.ndarray:
    """(N, width) rows of ``function(batch, lengths)`` over (T, F) sequences, batched by like lengths so they pad little."""
    from apptool_gesture.features import pad_batch

    order = np.argsort([len(s) for s in sequences], kind="stable")
    rows = np.zeros((len(sequences), width), np.float32)
    with torch.no_grad():
        for start in range(0, len(order), 64):
            chosen = order[start : start + 64]
            batch, lengths = pad_batch([sequences[i] for i in chosen])
            rows[chosen] = function(torch.from_numpy(batch), torch.from_numpy(lengths)).numpy()
    return rows


def fit_rocket_head(model: nn.Module, sequences: list[np.ndarray], labels: np.ndarray) -> dict:
    """Fit ``model``'s MiniRocket biases and ridge head on (T, F) model inputs in place; what was chosen, for metrics.json."""
    rocket = model.rocket
    rocket.fit(sequences)
    features = apply_in_batches(rocket, sequences, rocket.num_features)
    weight, bias, summary = fit_ridge(features, labels, model.rocket_weight.shape[0])
    model.rocket_weight.copy_(torch.from_numpy(weight))
    model.rocket_bias.copy_(torch.from_numpy(bias))
    return {"features": rocket.num_features, "dilations": rocket.dilations, **summary}


def fit_mix_shares(model: nn.Module, sequences: list[np.ndarray], labels: np.ndarray) -> dict:
    """Set the heads' shares of the mix to those of least log-loss on held-out (T, F) model inputs; the choice, for metrics.json.

    Both heads are fitted without these sequences, so their held-out
    probabilities say which head to trust on this data: on the built-in
    generator the network, on a small real set often MiniRocket.
    """
    n_classes = model.rocket_weight.shape[0]
    network = apply_in_batches(lambda x, n: torch.softmax(model.network_logits(x, n), 1), sequences, n_classes)
    rocket = apply_in_batches(lambda x, n: torch.softmax(model.rocket_logits(model.rocket(x, n)), 1), sequences, n_classes)
    picked = np.arange(len(labels)), labels
    losses = [-np.mean(np.log((1 - s) * network[picked] + s * rocket[picked] + 1e-12)) for s in SHARES]
    share = float(SHARES[int(np.argmin(losses))])
    model.mix_log_shares.copy_(torch.log(torch.tensor([1 - share, share]).clamp_min(NO_SHARE)))
    mixed = (1 - share) * network + share * rocket
    accuracy = {
        name: float(np.mean(p.argmax(1) == labels))
        for name, p in (("network", network), ("minirocket", rocket), ("mixed", mixed))
    }
    return {"minirocket_share": share, "val_samples": len(labels), "val_log_loss": float(min(losses)), "val_accuracy": accuracy}
