"""timm encoders with pretrained weights from local sources only.

``pretrained`` may be: None (random init, stated in the bundle), a weight file
(.safetensors), a directory of files named after timm models, or a backbone
bundle made by ``apptool pretrain``.  ``APPTOOL_WEIGHTS_DIR`` is searched when
``pretrained="auto"``.  A weight that cannot be found is an error, never a
silent download or a silent random init.
"""
from __future__ import annotations

import os
from pathlib import Path

from apptool.errors import ConfigError

WEIGHT_SUFFIXES = (".safetensors",)


def resolve_weights(name: str, pretrained: str | Path | None) -> Path | None:
    """The local weight file for timm model ``name``, or None for random init."""
    if pretrained in (None, "", "none", "random"):
        return None
    if pretrained == "auto":
        env = os.environ.get("APPTOOL_WEIGHTS_DIR")
        if not env:
            raise ConfigError(f"pretrained='auto' for {name!r} but APPTOOL_WEIGHTS_DIR is not set")
        pretrained = env
    path = Path(pretrained)
    if path.is_dir():
        for candidate in (path / "weights.safetensors", *(path / f"{name}{s}" for s in WEIGHT_SUFFIXES)):
            if candidate.is_file():
                return candidate
        raise ConfigError(f"{path}: no weights for backbone {name!r} (looked for weights.safetensors and {name}.safetensors)")
    if path.is_file():
        if path.suffix not in WEIGHT_SUFFIXES:
            raise ConfigError(f"{path}: backbone weights must be .safetensors (nothing is unpickled)")
        return path
    raise ConfigError(f"{path}: pretrained weights not found for backbone {name!r}")


def create_encoder(name: str, pretrained: str | Path | None = None, in_chans: int = 3, **kwargs):
    """A timm ``features_only`` encoder; ``.feature_info.channels()`` and ``.reduction()`` describe it."""
    import timm

    from apptool.bundle import load_state

    try:
        encoder = timm.create_model(name, pretrained=False, features_only=True, in_chans=in_chans, **kwargs)
    except RuntimeError as exc:  # timm raises RuntimeError for unknown names
        raise ConfigError(f"unknown backbone {name!r}: {exc}") from None
    weights = resolve_weights(name, pretrained)
    if weights is not None:
        tensors, _ = load_state(weights)
        tensors = {k.removeprefix("encoder."): v for k, v in tensors.items()}
        own = encoder.state_dict()
        usable = {k: v for k, v in tensors.items() if k in own and own[k].shape == v.shape}
        if len(usable) < 0.9 * len(own):
            raise ConfigError(f"{weights}: only {len(usable)} of {len(own)} encoder tensors of {name!r} match; wrong backbone?")
        encoder.load_state_dict(usable, strict=False)
    encoder.pretrained_source = str(weights) if weights else "random init"
    return encoder
