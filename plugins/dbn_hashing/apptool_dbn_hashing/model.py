"""The DBN as a torch network: recognition ("up") layers to the code, generative ("down") layers back.

After Hinton & Salakhutdinov (2006) the pretrained RBMs are unrolled: the
up-pass uses each RBM's weights and hidden biases, the down-pass their
transposes and visible biases.  Fine-tuning then trains the whole deep
autoencoder by backprop.  For semantic hashing (Salakhutdinov & Hinton 2009)
Gaussian noise is added to the code units' input during training, which
drives their logistic outputs to 0 or 1, so thresholding the logit at 0
later loses little.  A ``classify`` head puts a softmax layer on the code
layer instead, to test supervised fine-tuning after pretraining.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from apptool.backbones import create_encoder
from apptool_dbn_hashing.rbm import RBM

#: The backbone input normalisation of bundles made before ``model.mean``/``model.std`` were stored.
LEGACY_MEAN, LEGACY_STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


class DBNHasher(nn.Module):
    """Images → visible vector (pixels or pooled backbone features) → DBN code logits → reconstruction or classes."""

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        hidden: list[int],
        bits: int,
        visible: str,
        head: str = "autoencoder",
        n_classes: int = 0,
        code_noise: float = 4.0,
        encoder: nn.Module | None = None,
        backbone_size: int = 64,
        mean: tuple[float, ...] = LEGACY_MEAN,
        std: tuple[float, ...] = LEGACY_STD,
        invert_pixels: bool = False,
    ):
        super().__init__()
        self.visible_kind, self.head_kind, self.code_noise = visible, head, float(code_noise)
        self.invert_pixels = bool(invert_pixels)
        self.backbone_size = int(backbone_size)
        if encoder is not None:
            self.encoder = encoder  # the trainer's frozen/gradual modes look for this attribute
            n_visible = int(encoder.feature_info.channels()[-1])
            # what the encoder's weights expect (RGB); a grey stem gets the channel average, as timm sums its RGB weights
            input_mean, input_std = torch.tensor(mean, dtype=torch.float32), torch.tensor(std, dtype=torch.float32)
            if input_shape[0] != len(input_mean):
                input_mean, input_std = input_mean.mean(0, keepdim=True), input_std.mean(0, keepdim=True)
            self.register_buffer("input_mean", input_mean.view(1, -1, 1, 1), persistent=False)
            self.register_buffer("input_std", input_std.view(1, -1, 1, 1), persistent=False)
        else:
            n_visible = int(input_shape[0] * input_shape[1] * input_shape[2])
        sizes = [n_visible, *hidden, bits]
        self.up = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        if head == "autoencoder":
            self.down = nn.ModuleList(nn.Linear(b, a) for a, b in zip(reversed(sizes[:-1]), reversed(sizes[1:])))
        else:
            self.classifier = nn.Linear(bits, n_classes)
        # standardisation of real-valued visibles (backbone features), set from the training data
        self.register_buffer("feature_mean", torch.zeros(n_visible))
        self.register_buffer("feature_std", torch.ones(n_visible))
        # the first RBM's weights as pretrained, kept for the demo's view of the learned features
        self.register_buffer("rbm_filters", torch.zeros(sizes[1], n_visible))

    def visible(self, image: torch.Tensor) -> torch.Tensor:
        """The DBN's visible vector: flattened pixels in [0, 1] (ink bright), or standardised pooled backbone features."""
        if not hasattr(self, "encoder"):
            pixels = image.flatten(1)
            return 1.0 - pixels if self.invert_pixels else pixels
        x = F.interpolate(image, size=(self.backbone_size, self.backbone_size), mode="bilinear", align_corners=False)
        features = self.encoder((x - self.input_mean) / self.input_std)[-1].mean(dim=(2, 3))
        return (features - self.feature_mean) / self.feature_std

    def code_logits(self, v: torch.Tensor) -> torch.Tensor:
        h = v
        for layer in self.up[:-1]:
            h = torch.sigmoid(layer(h))
        return self.up[-1](h)

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        """Reconstruction of the visible vector: logits for Bernoulli visibles, values for Gaussian ones."""
        h = code
        for layer in self.down[:-1]:
            h = torch.sigmoid(layer(h))
        return self.down[-1](h)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(visible, code logits, reconstruction or class logits); code noise only while training."""
        v = self.visible(image)
        logits = self.code_logits(v)
        if self.head_kind == "autoencoder":
            noisy = logits + self.code_noise * torch.randn_like(logits) if self.training else logits
            return v, logits, self.decode(torch.sigmoid(noisy))
        return v, logits, self.classifier(torch.sigmoid(logits))

    @torch.no_grad()
    def load_rbms(self, rbms: list[RBM]) -> None:
        """Unroll a pretrained RBM stack into the up (and, for the autoencoder, down) layers."""
        for layer, rbm in zip(self.up, rbms):
            layer.weight.copy_(rbm.weight.T)
            layer.bias.copy_(rbm.hidden_bias)
        if self.head_kind == "autoencoder":
            for layer, rbm in zip(self.down, reversed(rbms)):
                layer.weight.copy_(rbm.weight)
                layer.bias.copy_(rbm.visible_bias)
        self.rbm_filters.copy_(rbms[0].weight.T)


class CodeGraph(nn.Module):
    """The exported encoder: image → code bits (0/1 float, the sign of the code logit), logits, visible vector."""

    def __init__(self, model: DBNHasher):
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor):
        v = self.model.visible(image)
        logits = self.model.code_logits(v)
        bits = (logits > 0).to(torch.float32)
        if self.model.head_kind == "autoencoder":
            return bits, logits, v
        return bits, logits, v, self.model.classifier(torch.sigmoid(logits))


def build(config: dict[str, Any], input_shape: tuple[int, int, int], n_classes: int) -> DBNHasher:
    """The network a config describes (weights as PyTorch initialises them; pretraining replaces them)."""
    m = config["model"]
    encoder = None
    if m["features"] == "backbone":
        encoder = create_encoder(m["backbone"], m.get("pretrained"), in_chans=input_shape[0])
    return DBNHasher(
        input_shape,
        list(m["hidden"]),
        int(m["bits"]),
        visible_units(config),
        m["head"],
        n_classes,
        float(m["code_noise"]),
        encoder,
        int(m.get("backbone_size", 64)),
        m.get("mean") or LEGACY_MEAN,
        m.get("std") or LEGACY_STD,
        bool(config.get("invert_pixels", False)),
    )


def visible_units(config: dict[str, Any]) -> str:
    """Bernoulli visibles for pixels in [0, 1], Gaussian for real-valued backbone features, unless set."""
    kind = config["model"].get("visible", "auto")
    if kind == "auto":
        return "gaussian" if config["model"]["features"] == "backbone" else "bernoulli"
    return kind
