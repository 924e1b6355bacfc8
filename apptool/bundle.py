"""A trained model is a directory: config.json, weights.safetensors, metrics.json, <graph>.onnx, card.md.

Every file is written atomically (temporary file, then rename), and loading
reads only JSON, safetensors and ONNX: nothing is ever unpickled.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from apptool.errors import BundleError

CONFIG = "config.json"
WEIGHTS = "weights.safetensors"
METRICS = "metrics.json"
CARD = "card.md"
PICKLE_SUFFIXES = {".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin"}


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _jsonable(value: Any) -> Any:
    """NaN/Inf become None so the file stays valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _jsonable(value.item())
    return value


def atomic_write_json(path: Path, value: Any) -> Path:
    return atomic_write_bytes(path, (json.dumps(_jsonable(value), indent=2, sort_keys=True) + "\n").encode())


def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise BundleError(f"{path}: missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{path}: not valid JSON ({exc})") from None


def check_bundle_dir(bundle_dir: Path) -> Path:
    """The bundle directory, or a BundleError saying what is wrong with it."""
    bundle_dir = Path(bundle_dir)
    if not bundle_dir.is_dir():
        raise BundleError(f"{bundle_dir}: not a bundle directory (expected {CONFIG}, {WEIGHTS}, model.onnx)")
    unsafe = sorted(p.name for p in bundle_dir.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES)
    if unsafe:
        raise BundleError(f"{bundle_dir}: refusing pickle-based files {unsafe}; bundles hold only safetensors, JSON and ONNX")
    return bundle_dir


def read_config(bundle_dir: Path) -> dict[str, Any]:
    """The bundle's config.json (task, plugin version, preprocessing, labels, graphs)."""
    config = read_json(check_bundle_dir(bundle_dir) / CONFIG)
    if not isinstance(config, dict):
        raise BundleError(f"{Path(bundle_dir) / CONFIG}: expected a JSON object, got {type(config).__name__}")
    for key in ("task", "graphs"):
        if key not in config:
            raise BundleError(f"{Path(bundle_dir) / CONFIG}: missing field {key!r}")
    graphs = config["graphs"]
    if (
        not isinstance(config["task"], str)
        or not isinstance(graphs, list)
        or not graphs
        or not all(isinstance(g, str) and g.isidentifier() for g in graphs)
    ):
        raise BundleError(f"{Path(bundle_dir) / CONFIG}: field 'task' must be a name and 'graphs' a list of graph names")
    return config


def read_metrics(bundle_dir: Path) -> dict[str, Any]:
    path = Path(bundle_dir) / METRICS
    return read_json(path) if path.exists() else {}


def update_metrics(bundle_dir: Path, **sections: Any) -> dict[str, Any]:
    """Merge top-level sections into metrics.json."""
    metrics = read_metrics(bundle_dir)
    metrics.update(sections)
    atomic_write_json(Path(bundle_dir) / METRICS, metrics)
    return metrics


def save_state(path: Path, tensors: dict, metadata: dict[str, Any] | None = None) -> Path:
    """Write tensors (and JSON metadata) as safetensors, atomically."""
    from safetensors.torch import save

    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    meta = {"json": json.dumps(_jsonable(metadata or {}))}
    return atomic_write_bytes(path, save(tensors, metadata=meta))


def load_state(path: Path) -> tuple[dict, dict[str, Any]]:
    """Tensors and JSON metadata from a safetensors file; anything else is refused."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    path = Path(path)
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise BundleError(f"{path}: refusing to load a pickle-based checkpoint; use safetensors")
    try:
        data = path.read_bytes()
        tensors = load(data)
        header_len = int.from_bytes(data[:8], "little")
        header = json.loads(data[8 : 8 + header_len])
    except FileNotFoundError:
        raise BundleError(f"{path}: missing") from None
    except (SafetensorError, ValueError, UnicodeDecodeError, OverflowError) as exc:
        raise BundleError(f"{path}: not a valid safetensors file ({exc})") from None
    meta = json.loads(header.get("__metadata__", {}).get("json", "{}"))
    return tensors, meta


def load_model(bundle_dir: Path, task=None):
    """Rebuild a bundle's torch model from config.json and weights.safetensors."""
    from apptool.plugins import get_plugins
    from apptool.task import deep_merge

    config = read_config(bundle_dir)
    task = task or get_plugins().task(config["task"])
    # the weights come from the bundle: the encoder's original pretrained source may be gone
    model = task.build_model(deep_merge(config, {"model": {"pretrained": None}}))
    tensors, _ = load_state(Path(bundle_dir) / WEIGHTS)
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    if missing or unexpected:
        raise BundleError(
            f"{Path(bundle_dir) / WEIGHTS}: does not match the model (missing {missing[:5]}, unexpected {unexpected[:5]})"
        )
    return model.eval(), config, task
