"""Encoder + head.  The encoder is the core's timm ``features_only`` backbone (so the trainer's finetune
modes apply to it); for the EfficientNet-Lite family the head starts with the network's own 1x1
``conv_head`` and ``bn2``, which the shipped ImageNet weights fill, then pooling and a linear classifier."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from apptool.backbones import backbone_spec, create_encoder
from apptool.bundle import load_state
from apptool.errors import ConfigError
from apptool.imagenet import SHIPPED, imagenet_weights


class Classifier(nn.Module):
    def __init__(self, encoder: nn.Module, neck: nn.Module, width: int, num_classes: int, dropout: float):
        super().__init__()
        self.encoder, self.neck = encoder, neck
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(width, num_classes)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        features = self.neck(self.encoder(image)[-1]).mean((2, 3))
        return self.classifier(self.dropout(features))


def _neck(backbone: str) -> tuple[nn.Module, int | None]:
    """EfficientNet-Lite's conv_head + bn2 (and its width) for the shipped family; nothing for other backbones."""
    if backbone not in SHIPPED and backbone_spec(backbone)[0] not in {e.architecture for e in SHIPPED.values()}:
        return nn.Identity(), None
    import timm

    full = timm.create_model(backbone_spec(backbone)[0], pretrained=False)
    return nn.Sequential(full.conv_head, full.bn2), full.num_features


def build(model_cfg: dict[str, Any], num_classes: int) -> Classifier:
    name, pretrained = model_cfg["backbone"], model_cfg.get("pretrained")
    imagenet_head = model_cfg.get("head") == "imagenet"
    if imagenet_head and num_classes != 1000:
        raise ConfigError(f"model.head='imagenet' is the 1,000-class ImageNet classifier; this data has {num_classes} classes")
    encoder = create_encoder(name, pretrained, out_indices=(-1,))
    neck, width = _neck(name)
    model = Classifier(encoder, neck, width or encoder.feature_info.channels()[-1], num_classes, float(model_cfg["dropout"]))
    if pretrained == "imagenet" and width is not None:
        tensors, _ = load_state(imagenet_weights(name))
        state = {
            f"neck.{k.replace('conv_head.', '0.').replace('bn2.', '1.')}": v
            for k, v in tensors.items()
            if k.startswith(("conv_head.", "bn2."))
        }
        if imagenet_head:
            state.update({f"classifier.{k.split('.', 1)[1]}": v for k, v in tensors.items() if k.startswith("classifier.")})
        missing, unexpected = model.load_state_dict(state, strict=False)
        expected = {
            k
            for k in model.state_dict()
            if (k.startswith("neck.") or (imagenet_head and k.startswith("classifier.")))
            and not k.endswith("num_batches_tracked")
        }
        if unexpected or expected & set(missing):
            raise ConfigError(
                f"{imagenet_weights(name)}: ImageNet head tensors do not fit {name!r} ({sorted(expected & set(missing))[:3]})"
            )
    return model
