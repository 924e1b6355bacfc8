"""The steering networks (torch): PilotNet, and a timm encoder with a regression head."""

from __future__ import annotations

import torch
from torch import nn

from apptool.backbones import create_encoder


class PilotNet(nn.Module):
    """Bojarski et al. 2016: five convolutions and three fully connected layers on a 66x200 YUV image.

    The paper's normalisation layer is the fixed per-channel standardisation of
    ``preprocess``, so the graph starts at the first convolution.
    """

    def __init__(self, dropout: float = 0.0, input_size: tuple[int, int] = (66, 200)):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 24, 5, stride=2), nn.ELU(),
            nn.Conv2d(24, 36, 5, stride=2), nn.ELU(),
            nn.Conv2d(36, 48, 5, stride=2), nn.ELU(),
            nn.Conv2d(48, 64, 3), nn.ELU(),
            nn.Conv2d(64, 64, 3), nn.ELU(),
            nn.Flatten(),
        )  # fmt: skip
        with torch.no_grad():
            flat = self.features(torch.zeros(1, 3, *input_size)).shape[1]
        self.head = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(flat, 100), nn.ELU(),
            nn.Dropout(dropout), nn.Linear(100, 50), nn.ELU(),
            nn.Linear(50, 10), nn.ELU(),
            nn.Linear(10, 1),
        )  # fmt: skip

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(image))


class BackboneRegressor(nn.Module):
    """A transfer-learned timm encoder (``encoder``), global pooling and a small regression head."""

    def __init__(self, encoder: nn.Module, dropout: float = 0.0):
        super().__init__()
        self.encoder = encoder
        channels = encoder.feature_info.channels()[-1]
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(channels, 64), nn.ELU(), nn.Linear(64, 1))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        features = self.encoder(image)[-1]
        return self.head(features.mean(dim=(2, 3)))


def build(model_config: dict) -> nn.Module:
    """The network a config's ``model`` section asks for: ``backbone`` "pilotnet" or a timm name."""
    backbone = model_config.get("backbone", "pilotnet")
    dropout = float(model_config.get("dropout", 0.0))
    if backbone == "pilotnet":
        return PilotNet(dropout, tuple(model_config.get("input_size", (66, 200))))
    encoder = create_encoder(backbone, model_config.get("pretrained"), out_indices=(-1,))
    return BackboneRegressor(encoder, dropout)
