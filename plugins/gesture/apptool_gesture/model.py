"""The classifier (torch), and the two graphs it exports: offline ``model`` and streaming ``step``.

Two branches read the sequence side by side, as in LSTM-FCN (Karim et al.
2017): a stacked (bi)LSTM/GRU, and a fully convolutional network (Wang et al.
2017: conv blocks with batch norm and ReLU, then the mean over time).  Their
readouts are concatenated before the linear classifier.  The recurrent branch
alone fits a few dozen short series and does not generalise; the
convolutional one is what the UCR/UEA archives reward.

A unidirectional network trains exactly as its offline graph runs: over the
padded batch, reading its top-layer output at ``length - 1`` and the mean of
its first ``length`` outputs.  Padding comes after each sequence, so a causal
network never sees it in those frames.  Packing would give the same result
at ten times the CPU cost: on variable-length batches (every augmented
window differs) the CPU LSTM's backward pass zero-fills a gradient of the
whole packed batch for every time step.  A bidirectional network trains on
packed batches; its exported graph runs the backward half of each layer over
each sequence reversed *within its length* (an index gather), which is what
packing does.

Every convolution is causal (left-padded), so one new frame needs only the
previous ``kernel - 1`` inputs of that layer: the step graph carries them as
one buffer per layer next to the recurrent state (h, and c for LSTM).  Batch
norm uses its running statistics once trained (and, while training, the
statistics of the frames inside each sequence's length only).

With ``pool`` the classifier reads the mean of the top recurrent layer's
outputs next to its last output: every frame then reaches the loss directly,
which long recordings (hundreds of frames) need to learn at all.  Means are
causal too: the step graph carries the running sums and the frame count.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from apptool.errors import ConfigError
from apptool_gesture.rocket import NO_SHARE, MiniRocket

CELLS = {"lstm": nn.LSTM, "gru": nn.GRU}


def _time_index(x: torch.Tensor) -> torch.Tensor:
    """(B, T) int64 frame numbers 0..T-1, built from tensor ops so ONNX keeps T dynamic."""
    return torch.ones_like(x[:, :, 0], dtype=torch.int64).cumsum(1) - 1


def _inside(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """(B, T) bool: which frames of a padded (B, T, ...) batch lie within their sequence's length."""
    return _time_index(x) < lengths.unsqueeze(1)


def _mean_within(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """(B, H) mean of each sequence's first ``length`` frames of a (B, T, H) tensor."""
    inside = _inside(x, lengths).to(x).unsqueeze(2)
    return (x * inside).sum(1) / lengths.to(x).unsqueeze(1)


def _at_last(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """(B, H) frame ``length - 1`` of every sequence of a (B, T, H) tensor."""
    index = (lengths - 1).view(-1, 1, 1).expand(-1, 1, x.shape[2])
    return x.gather(1, index).squeeze(1)


class CausalConvBlock(nn.Module):
    """Causal 1-D convolution → batch norm → ReLU, over (B, T, C) frames."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int):
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, kernel, bias=False)  # batch norm brings the bias
        self.norm = nn.BatchNorm1d(out_channels)

    @property
    def buffer_frames(self) -> int:
        return self.conv.kernel_size[0] - 1

    def _normed(self, y: torch.Tensor, inside: torch.Tensor | None) -> torch.Tensor:
        """Batch norm of (B, T, C) frames; in training, statistics of the frames inside the sequences only."""
        if not self.training or inside is None:
            return self.norm(y.transpose(1, 2)).transpose(1, 2)
        out = torch.zeros_like(y)
        out[inside] = self.norm(y[inside])
        return out

    def forward(self, x: torch.Tensor, inside: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, C_in) → (B, T, C_out); frame t sees input frames t-k+1..t (zeros before the start)."""
        y = self.conv(F.pad(x.transpose(1, 2), (self.buffer_frames, 0))).transpose(1, 2)
        return F.relu(self._normed(y, inside))

    def step(self, frame: torch.Tensor, buffer: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One (B, C_in) frame and the previous ``kernel - 1`` inputs → the (B, C_out) output and the next buffer."""
        window = frame.unsqueeze(1) if buffer is None else torch.cat([buffer, frame.unsqueeze(1)], 1)
        y = self.conv(window.transpose(1, 2))  # (B, C_out, 1): the window is exactly one kernel long
        out = F.relu(self.norm(y)).squeeze(2)
        return out, (window[:, 1:] if buffer is not None else None)


class CausalFCN(nn.Module):
    """Causal conv blocks; the classifier reads the mean of the last block's outputs over the sequence."""

    def __init__(self, n_features: int, channels: list[int], kernels: list[int]):
        super().__init__()
        if len(channels) != len(kernels):
            raise ConfigError(
                f"model.fcn_channels ({len(channels)} blocks) and model.fcn_kernels ({len(kernels)}) differ in length"
            )
        if any(k < 1 for k in kernels) or any(c < 1 for c in channels):
            raise ConfigError(f"model.fcn_channels {channels} and model.fcn_kernels {kernels} must be at least 1")
        widths = [n_features, *channels]
        self.blocks = nn.ModuleList(CausalConvBlock(a, b, k) for a, b, k in zip(widths, widths[1:], kernels))
        self.out_channels = channels[-1]

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, F) → (B, T, C) features of every frame."""
        inside = _inside(x, lengths) if self.training and lengths is not None else None
        for block in self.blocks:
            x = block(x, inside)
        return x


class GestureNet(nn.Module):
    """[causal conv front end → stacked (bi)LSTM/GRU → last (and mean) output] ‖ [causal FCN → mean] → dropout → linear."""

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
        fcn_channels: tuple[int, ...] = (),
        fcn_kernels: tuple[int, ...] = (),
        rocket_features: int = 0,
        rocket_length: int = 0,
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
        self.fcn = CausalFCN(n_features, list(fcn_channels), list(fcn_kernels)) if fcn_channels else None
        self.drop = nn.Dropout(dropout)
        recurrent = hidden * (2 if bidirectional else 1) * (2 if pool else 1)
        self.head = nn.Linear(recurrent + (self.fcn.out_channels if self.fcn else 0), n_classes)
        self.rocket = MiniRocket(n_features, rocket_length, rocket_features) if rocket_features else None
        if self.rocket is not None:  # fitted in closed form before training (Task.prepare), never by the optimizer
            self.register_buffer("rocket_weight", torch.zeros(n_classes, self.rocket.num_features))
            self.register_buffer("rocket_bias", torch.zeros(n_classes))
            # log shares of (network, MiniRocket) in the mix; Task.calibrate sets them on the validation split
            self.register_buffer("mix_log_shares", torch.log(torch.tensor([0.5, 0.5])))

    @property
    def buffer_frames(self) -> int:
        """Past input frames the recurrent branch's causal convolution needs (0 without one)."""
        return self.conv.kernel_size[0] - 1 if self.conv is not None else 0

    def frontend(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, F) → (B, T, C): causal convolution and ReLU, or the input unchanged."""
        if self.conv is None:
            return x
        x = F.pad(x.transpose(1, 2), (self.buffer_frames, 0))
        return F.relu(self.conv(x)).transpose(1, 2)

    def classify(self, x: torch.Tensor, lengths: torch.Tensor, recurrent: torch.Tensor) -> torch.Tensor:
        """Logits from the recurrent readout (B, H') and, with the FCN, the mean of its features over each sequence."""
        if self.fcn is not None:
            recurrent = torch.cat([recurrent, _mean_within(self.fcn(x, lengths), lengths)], 1)
        return self.head(self.drop(recurrent))

    def readout(self, final: torch.Tensor, outputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The recurrent readout: the final output, and with ``pool`` the mean of the outputs within each length."""
        return torch.cat([final, _mean_within(outputs, lengths)], 1) if self.pool else final

    def rocket_logits(self, proportions: torch.Tensor) -> torch.Tensor:
        """The MiniRocket head's calibrated logits from its features."""
        return F.linear(proportions, self.rocket_weight, self.rocket_bias)

    @property
    def runs_rocket(self) -> bool:
        """Whether the MiniRocket head has a share of the mix: calibrated to none, no graph computes its features."""
        return self.rocket is not None and float(self.mix_log_shares[1].exp()) > 2 * NO_SHARE

    def mix(self, logits: torch.Tensor, proportions: torch.Tensor | None) -> torch.Tensor:
        """The network's logits, or with the MiniRocket head the log of both heads' class probabilities mixed
        (the network's alone when the head was calibrated out and ``proportions`` is None)."""
        if self.rocket is None:
            return logits
        a = F.log_softmax(logits, 1) + self.mix_log_shares[0]
        if proportions is None:
            return a
        b = F.log_softmax(self.rocket_logits(proportions), 1) + self.mix_log_shares[1]
        top = torch.maximum(a, b)  # log-sum-exp by hand: ONNX has no logaddexp
        return top + torch.log(torch.exp(a - top) + torch.exp(b - top))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Logits (B, C) of a padded batch: both heads mixed (``mix``)."""
        return self.mix(self.network_logits(x, lengths), self.rocket(x, lengths) if self.runs_rocket else None)

    def network_logits(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The trained head's logits: unidirectional as the offline graph runs; bidirectional packed (sorted by length)."""
        if not self.bidirectional:
            outputs = self.rnn(self.frontend(x))[0]
            return self.classify(x, lengths, self.readout(_at_last(outputs, lengths), outputs, lengths))
        packed = pack_padded_sequence(self.frontend(x), lengths.cpu(), batch_first=True, enforce_sorted=True)
        outputs, state = self.rnn(packed)
        h_n = state[0] if self.cell == "lstm" else state
        padded = pad_packed_sequence(outputs, batch_first=True)[0]  # zeros after each sequence's end
        return self.classify(x, lengths, self.readout(torch.cat([h_n[-2], h_n[-1]], 1), padded, lengths))


def _reverse_within(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Each sequence's first ``length`` frames reversed in place; padding stays where it is."""
    t = _time_index(x)
    last = (lengths - 1).unsqueeze(1)
    index = torch.where(t <= last, last - t, t)
    return x.gather(1, index.unsqueeze(2).expand_as(x))


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
        if not self.net.bidirectional:
            return self.net(x, lengths)  # training already runs the unpacked graph
        proportions = self.net.rocket(x, lengths) if self.net.runs_rocket else None
        h = self.net.frontend(x)
        for fwd, bwd in zip(self.forward_layers, self.backward_layers):
            ahead = fwd(h)[0]
            behind = _reverse_within(bwd(_reverse_within(h, lengths))[0], lengths)
            h = torch.cat([ahead, behind], 2)
        hidden = self.net.hidden
        final = torch.cat([_at_last(h[:, :, :hidden], lengths), h[:, 0, hidden:]], 1)
        return self.net.mix(self.net.classify(x, lengths, self.net.readout(final, h, lengths)), proportions)


class StepGraph(nn.Module):
    """ONNX graph ``step``: one frame and the state in, logits and the next state out.

    Inputs: x (B,F), then the state tensors named by ``streaming.state_shapes``
    (in its order); outputs: logits, then the same states with ``_out``
    appended.  A zero state starts a sequence.
    """

    def __init__(self, net: GestureNet, names: list[str]):
        super().__init__()
        if net.bidirectional:
            raise ConfigError("streaming needs a unidirectional model; this one is bidirectional (model.bidirectional)")
        self.net, self.names = net, list(names)

    def forward(self, x: torch.Tensor, *values: torch.Tensor):
        state, new = dict(zip(self.names, values)), {}
        if self.net.buffer_frames:
            window = torch.cat([state["buf"], x.unsqueeze(1)], 1)
            new["buf"] = window[:, 1:]
            frame = F.relu(self.net.conv(window.transpose(1, 2))).transpose(1, 2)
        else:
            frame = self.net.frontend(x.unsqueeze(1))
        recurrent = (state["h"], state["c"]) if self.net.cell == "lstm" else state["h"]
        out, hidden = self.net.rnn(frame, recurrent)
        new.update(zip(("h", "c"), hidden) if self.net.cell == "lstm" else {"h": hidden})
        final = out[:, 0]
        if "count" in state:
            new["count"] = count = state["count"] + 1
        if self.net.pool:
            new["sum"] = state["sum"] + final
            final = torch.cat([final, new["sum"] / count], 1)
        if self.net.fcn is not None:
            features = x
            for i, block in enumerate(self.net.fcn.blocks):
                features, new[f"fcn_buf{i}"] = block.step(features, state.get(f"fcn_buf{i}"))
            new["fcn_sum"] = state["fcn_sum"] + features
            final = torch.cat([final, new["fcn_sum"] / count], 1)
        proportions = None
        if self.net.runs_rocket:
            proportions, new["rocket_buf"], new["rocket_counts"] = self.net.rocket.step(
                x, state["rocket_buf"], state["rocket_counts"], count
            )
        elif self.net.rocket is not None:  # calibrated out of the mix: its state passes through, the contract stays
            new["rocket_buf"], new["rocket_counts"] = state["rocket_buf"], state["rocket_counts"]
        return (self.net.mix(self.net.head(final), proportions), *(new[name] for name in self.names))
