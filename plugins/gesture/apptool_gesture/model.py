"""The recurrent classifier (torch), and the two graphs it exports: offline ``model`` and streaming ``step``.

Training runs on packed variable-length batches, so padding never enters
the recurrence and backpropagation through time stops at each sequence's
true end.  The exported graphs compute exactly the same function without
packing, which ONNX handles poorly: a unidirectional network runs over the
padded batch and reads its top-layer output at ``length - 1`` (padding comes
after, so it cannot influence that frame); the backward half of a
bidirectional layer runs over each sequence reversed *within its length*
(an index gather), which is what packing does.

The optional 1-D convolution front end is causal (left-padded), so one new
frame needs only the previous ``kernel - 1`` frames: the step graph carries
them as a frame buffer next to the recurrent state (h, and c for LSTM).

With ``pool`` the classifier reads the mean of the top layer's outputs over
the sequence next to its last output: every frame then reaches the loss
directly, which long recordings (hundreds of frames) need to learn at all.
The mean is causal too: the step graph carries the running sum and count.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from apptool.errors import ConfigError

CELLS = {"lstm": nn.LSTM, "gru": nn.GRU}


class GestureNet(nn.Module):
    """Optional causal conv front end → stacked (bi)LSTM/GRU → [last output, mean output] → dropout → linear classifier."""

    def __init__(
        self,
        n_features: int,
        n_classes: int,
        cell: str = "lstm",
        hidden: int = 64,
        layers: int = 2,
        bidirectional: bool = False,
        dropout: float = 0.2,
        conv_channels: int = 0,
        conv_kernel: int = 5,
        pool: bool = False,
    ):
        super().__init__()
        if cell not in CELLS:
            raise ConfigError(f"model.cell = {cell!r}; expected one of {', '.join(CELLS)}")
        if conv_channels and conv_kernel < 1:
            raise ConfigError(f"model.conv_kernel must be at least 1, got {conv_kernel}")
        self.cell, self.hidden, self.layers, self.bidirectional, self.pool = cell, hidden, layers, bidirectional, pool
        self.conv = nn.Conv1d(n_features, conv_channels, conv_kernel) if conv_channels else None
        self.rnn = CELLS[cell](
            conv_channels or n_features,
            hidden,
            num_layers=layers,
            batch_first=True,
            dropout=dropout if layers > 1 else 0.0,
            bidirectional=bidirectional,
        )
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden * (2 if bidirectional else 1) * (2 if pool else 1), n_classes)

    @property
    def buffer_frames(self) -> int:
        """Past input frames the causal convolution needs (0 without one)."""
        return self.conv.kernel_size[0] - 1 if self.conv is not None else 0

    def frontend(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, F) → (B, T, C): causal convolution and ReLU, or the input unchanged."""
        if self.conv is None:
            return x
        x = F.pad(x.transpose(1, 2), (self.buffer_frames, 0))
        return F.relu(self.conv(x)).transpose(1, 2)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Logits (B, C) of a padded batch sorted by decreasing length (the training path, packed)."""
        packed = pack_padded_sequence(self.frontend(x), lengths.cpu(), batch_first=True, enforce_sorted=True)
        outputs, state = self.rnn(packed)
        h_n = state[0] if self.cell == "lstm" else state
        final = torch.cat([h_n[-2], h_n[-1]], 1) if self.bidirectional else h_n[-1]
        if self.pool:
            padded = pad_packed_sequence(outputs, batch_first=True)[0]  # zeros after each sequence's end
            final = torch.cat([final, padded.sum(1) / lengths.to(padded).unsqueeze(1)], 1)
        return self.head(self.drop(final))


def _time_index(x: torch.Tensor) -> torch.Tensor:
    """(B, T) int64 frame numbers 0..T-1, built from tensor ops so ONNX keeps T dynamic."""
    return torch.ones_like(x[:, :, 0], dtype=torch.int64).cumsum(1) - 1


def _reverse_within(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Each sequence's first ``length`` frames reversed in place; padding stays where it is."""
    t = _time_index(x)
    last = (lengths - 1).unsqueeze(1)
    index = torch.where(t <= last, last - t, t)
    return x.gather(1, index.unsqueeze(2).expand_as(x))


def _mean_within(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """(B, H) mean of each sequence's first ``length`` frames of a (B, T, H) tensor."""
    inside = (_time_index(x) < lengths.unsqueeze(1)).to(x).unsqueeze(2)
    return (x * inside).sum(1) / lengths.to(x).unsqueeze(1)


def _at_last(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """(B, H) frame ``length - 1`` of every sequence of a (B, T, H) tensor."""
    index = (lengths - 1).view(-1, 1, 1).expand(-1, 1, x.shape[2])
    return x.gather(1, index).squeeze(1)


def _single_layer(rnn: nn.Module, layer: int, suffix: str) -> nn.Module:
    """A one-layer, one-direction copy of layer ``layer`` (direction ``suffix``) of a stacked RNN."""
    part = type(rnn)(rnn.input_size if layer == 0 else rnn.hidden_size * 2, rnn.hidden_size, batch_first=True)
    part.load_state_dict(
        {f"{name}_l0": getattr(rnn, f"{name}_l{layer}{suffix}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    )
    return part


class OfflineGraph(nn.Module):
    """ONNX graph ``model``: (x (B,T,F), lengths (B,)) → logits (B,C), any batch and length."""

    def __init__(self, net: GestureNet):
        super().__init__()
        self.net = net
        if net.bidirectional:
            self.forward_layers = nn.ModuleList(_single_layer(net.rnn, k, "") for k in range(net.layers))
            self.backward_layers = nn.ModuleList(_single_layer(net.rnn, k, "_reverse") for k in range(net.layers))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = self.net.frontend(x)
        if not self.net.bidirectional:
            out = self.net.rnn(x)[0]
            return self.net.head(self._with_mean(_at_last(out, lengths), out, lengths))
        for fwd, bwd in zip(self.forward_layers, self.backward_layers):
            ahead = fwd(x)[0]
            behind = _reverse_within(bwd(_reverse_within(x, lengths))[0], lengths)
            x = torch.cat([ahead, behind], 2)
        hidden = self.net.hidden
        final = torch.cat([_at_last(x[:, :, :hidden], lengths), x[:, 0, hidden:]], 1)
        return self.net.head(self._with_mean(final, x, lengths))

    def _with_mean(self, final: torch.Tensor, outputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return torch.cat([final, _mean_within(outputs, lengths)], 1) if self.net.pool else final


class StepGraph(nn.Module):
    """ONNX graph ``step``: one frame and the state in, logits and the next state out.

    Inputs, in order: x (B,F), then buf (B,K-1,F) when there is a convolution,
    h (L,B,H), then c (L,B,H) for LSTM, then sum (B,H) and count (B,1) with
    pooling; outputs: logits, then the same states with ``_out`` appended.
    A zero state (and buffer) starts a sequence.
    """

    def __init__(self, net: GestureNet):
        super().__init__()
        if net.bidirectional:
            raise ConfigError("streaming needs a unidirectional model; this one is bidirectional (model.bidirectional)")
        self.net = net

    def forward(self, x: torch.Tensor, *state: torch.Tensor):
        state = list(state)
        out_state = []
        if self.net.buffer_frames:
            window = torch.cat([state.pop(0), x.unsqueeze(1)], 1)
            out_state.append(window[:, 1:])
            frame = F.relu(self.net.conv(window.transpose(1, 2))).transpose(1, 2)
        else:
            frame = self.net.frontend(x.unsqueeze(1))
        recurrent = tuple(state[:2]) if self.net.cell == "lstm" else state[0]
        out, new = self.net.rnn(frame, recurrent)
        out_state += list(new) if self.net.cell == "lstm" else [new]
        final = out[:, 0]
        if self.net.pool:
            total, count = state[-2] + final, state[-1] + 1
            out_state += [total, count]
            final = torch.cat([final, total / count], 1)
        return (self.net.head(final), *out_state)


def state_names(net: GestureNet) -> list[str]:
    """The step graph's state inputs, in order."""
    pooled = ["sum", "count"] if net.pool else []
    return (["buf"] if net.buffer_frames else []) + (["h", "c"] if net.cell == "lstm" else ["h"]) + pooled
