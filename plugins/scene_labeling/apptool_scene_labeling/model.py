"""The segmentation network: a timm encoder and a feature-pyramid decoder (torch).

Farabet et al. fed a convnet a Laplacian pyramid of the image so each pixel's
label sees both fine detail and wide context; here the encoder's own stages
(strides 4, 8, 16 and 32) play the pyramid's part, merged top-down as in
FPN / semantic-FPN.  Every upsampling is by a fixed factor of 2 (or 4 at the
end), so the exported graph takes any input whose sides are multiples of 32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from apptool.backbones import create_encoder
from apptool_scene_labeling.scenes import IGNORE


def _conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class SceneSegmenter(nn.Module):
    """Image (N,3,H,W) RGB floats in 0..255 → class logits (N,C,H,W); H and W multiples of 32."""

    def __init__(
        self,
        backbone: str,
        num_classes: int,
        mean: tuple[float, float, float],
        std: tuple[float, float, float],
        pretrained=None,
        decoder_channels: int = 64,
        dropout: float = 0.1,
        balanced: bool = False,
    ):
        super().__init__()
        self.encoder = create_encoder(backbone, pretrained, out_indices=(1, 2, 3, 4))
        reductions = self.encoder.feature_info.reduction()
        if reductions != [4, 8, 16, 32]:
            raise ValueError(f"backbone {backbone!r} has stage strides {reductions}; the decoder needs 4, 8, 16, 32")
        d = decoder_channels
        self.lateral = nn.ModuleList(nn.Conv2d(c, d, 1) for c in self.encoder.feature_info.channels())
        self.smooth = nn.ModuleList(_conv(d, d) for _ in reductions)
        self.head = nn.Sequential(_conv(d, d), nn.Dropout2d(dropout), nn.Conv2d(d, num_classes, 1))
        self.balanced = balanced
        # the normalisation the encoder's weights expect, inside the graph: every runtime feeds 0..255 RGB
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1) * 255, persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1) * 255, persistent=False)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        features = self.encoder((image - self.mean) / self.std)
        top = self.lateral[-1](features[-1])
        pyramid = [self.smooth[-1](top)]
        for level in range(len(features) - 2, -1, -1):  # top-down: stride 16, 8, 4
            top = self.lateral[level](features[level]) + F.interpolate(top, scale_factor=2.0, mode="nearest")
            pyramid.insert(0, self.smooth[level](top))
        merged = pyramid[0]
        for level in range(1, len(pyramid)):  # every level brought to stride 4 and summed
            merged = merged + F.interpolate(pyramid[level], scale_factor=float(2**level), mode="bilinear", align_corners=False)
        return F.interpolate(self.head(merged), scale_factor=4.0, mode="bilinear", align_corners=False)


def segmentation_loss(logits: torch.Tensor, target: torch.Tensor, balanced: bool) -> torch.Tensor:
    """Cross-entropy over labelled pixels (255 ignored).

    ``balanced`` gives every class present in the batch the same weight (the
    mean loss of its pixels, averaged over classes): Farabet's "balanced"
    training, which raises class accuracy at some cost in pixel accuracy.
    """
    per_pixel = F.cross_entropy(logits, target, ignore_index=IGNORE, reduction="none")
    valid = target != IGNORE
    if not valid.any():
        return logits.sum() * 0.0
    if not balanced:
        return per_pixel[valid].mean()
    labels, losses = target[valid], per_pixel[valid]
    n = logits.shape[1]
    counts = torch.bincount(labels, minlength=n).to(losses.dtype)
    sums = torch.zeros(n, dtype=losses.dtype, device=losses.device).index_add_(0, labels, losses)
    present = counts > 0
    return (sums[present] / counts[present]).mean()
