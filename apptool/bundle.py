"""A trained model is a directory: config.json, weights.safetensors, metrics.json, <graph>.onnx, card.md.

Every file is written atomically (a temporary file the tool names
``.apptool-<name>.<random>.tmp``, then a rename), with the user's umask.  A
bundle is the output of one run: config.json, the weights and every ONNX
file carry the run's id, config.json is written last and removed first when a
new run writes into the folder, and loading refuses files of different runs.
Loading reads only JSON, safetensors and ONNX: nothing is ever unpickled.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from apptool import __version__
from apptool.errors import BundleError, ConfigError

CONFIG = "config.json"
WEIGHTS = "weights.safetensors"
METRICS = "metrics.json"
CARD = "card.md"
HISTORY = "metrics.csv"  # one row per training epoch
PICKLE_SUFFIXES = {".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin"}
TEMP_PREFIX = ".apptool-"
#: 1: bundles before run ids (no ``bundle_format`` field); 2: ``run_id`` in config.json, weights and ONNX metadata;
#: 3: ``data_dir`` (the training folder, or None) beside the display label ``data_source``.
BUNDLE_FORMAT = 3
#: The label ``data_source`` of a bundle trained on the built-in generator.
BUILT_IN_DATA = "built-in generator"


def _new_temp_file(path: Path) -> Path:
    """Create an empty, tool-named temporary file beside ``path``, mode 0666 less the user's umask."""
    while True:
        temp = path.with_name(f"{TEMP_PREFIX}{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return temp
        except FileExistsError:
            continue


@contextmanager
def staged_file(path: Path) -> Iterator[Path]:
    """A temporary file to fill (and check) in the block; renamed onto ``path`` if the block succeeds, removed if not."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = _new_temp_file(path)
    try:
        yield temp
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def write_synced(path: Path, data: bytes) -> None:
    """Write ``data`` and wait until it is on disk (before a rename makes it visible)."""
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half of one."""
    path = Path(path)
    try:
        with staged_file(path) as temp:
            write_synced(temp, data)
    except OSError as exc:  # name the file the user knows, not the temporary one (a full disk names none)
        raise OSError(exc.errno, exc.strerror, str(path)) from exc
    return path


def remove_stale_temp_files(folder: Path, recursive: bool = False) -> list[Path]:
    """Delete the temporary files a killed write of this tool left in ``folder`` (and only those)."""
    pattern = f"{TEMP_PREFIX}*.tmp"
    stale = sorted(Path(folder).rglob(pattern) if recursive else Path(folder).glob(pattern))
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def begin_bundle(out_dir: Path, fresh: bool) -> Path:
    """Make ``out_dir`` ready for a run's files: without config.json it is no bundle until the run writes it last.

    ``fresh``: a new run, so its metrics start empty too (a resumed run keeps its own).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(out_dir)
    if (out_dir / CONFIG).exists() and not _is_bundle_config(out_dir / CONFIG):
        raise ConfigError(
            f"{out_dir / CONFIG}: not the config of an apptool bundle; refusing to replace it (choose another --out)"
        )
    for name in (CONFIG, METRICS) if fresh else (CONFIG,):
        (out_dir / name).unlink(missing_ok=True)
    return out_dir


def _is_bundle_config(path: Path) -> bool:
    try:
        config = read_json(path)
    except BundleError:
        return False
    return isinstance(config, dict) and (("task" in config and "graphs" in config) or config.get("kind") == "backbone")


def jsonable(value: Any) -> Any:
    """NaN/Inf become None so the file stays valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return jsonable(value.item())
    return value


def atomic_write_json(path: Path, value: Any) -> Path:
    return atomic_write_bytes(path, (json.dumps(jsonable(value), indent=2, sort_keys=True) + "\n").encode())


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
    """The bundle's config.json (task, plugin version, preprocessing, labels, graphs), its format checked."""
    path = check_bundle_dir(bundle_dir) / CONFIG
    config = read_json(path)
    if not isinstance(config, dict):
        raise BundleError(f"{path}: expected a JSON object, got {type(config).__name__}")
    for key in ("task", "graphs"):
        if key not in config:
            raise BundleError(f"{path}: missing field {key!r}")
    graphs = config["graphs"]
    if (
        not isinstance(config["task"], str)
        or not isinstance(graphs, list)
        or not graphs
        or not all(isinstance(g, str) and g.isidentifier() for g in graphs)
    ):
        raise BundleError(f"{path}: field 'task' must be a name and 'graphs' a list of graph names")
    _check_format(config, path)
    return with_data_dir(config)


def with_data_dir(config: dict[str, Any]) -> dict[str, Any]:
    """The config with ``data_dir``: bundles before format 3 kept the training folder only in the label ``data_source``."""
    if "data_dir" in config or config.get("bundle_format", 1) >= 3:
        return config
    source = config.get("data_source")
    return {**config, "data_dir": None if source in (None, BUILT_IN_DATA) else str(source)}


def release(version: Any) -> tuple[int, ...] | None:
    """The numeric release of a version string ('1.2.0rc1' -> (1, 2, 0)), or None if it has none."""
    match = re.match(r"v?(\d+(?:\.\d+)*)", version) if isinstance(version, str) else None
    return tuple(int(part) for part in match.group(1).split(".")) if match else None


def _check_format(config: dict[str, Any], path: Path) -> None:
    """Refuse a bundle written in a newer format than this apptool reads; older formats load."""
    fmt = config.get("bundle_format", 1)
    if isinstance(fmt, bool) or not isinstance(fmt, int):
        raise BundleError(f"{path}: bundle_format {fmt!r} is not a format number")
    if fmt > BUNDLE_FORMAT:
        raise BundleError(
            f"{path}: bundle format {fmt} is newer than apptool {__version__} reads (up to {BUNDLE_FORMAT}); upgrade apptool"
        )
    written_by = config.get("apptool_version")
    if written_by is not None and release(written_by) is None:
        raise BundleError(f"{path}: apptool_version {written_by!r} is not a version")
    if "bundle_format" not in config and written_by is not None and release(written_by) > release(__version__):
        raise BundleError(
            f"{path}: written by apptool {written_by}, newer than this {__version__}, in a format it does not know; upgrade apptool"
        )


@functools.cache
def _distributions() -> dict[str, list[str]]:
    """Top-level package -> distributions; scanning every installed distribution costs ~0.2 CPU-s."""
    from importlib.metadata import packages_distributions

    return packages_distributions()


def _distribution_of(top: str) -> str:
    """The distribution that installs package ``top``, rescanning once for one installed since the last scan."""
    if top not in _distributions():
        _distributions.cache_clear()
    return _distributions().get(top, [top])[0]


def plugin_version(task) -> str:
    """The installed version of the distribution that provides ``task`` ("unknown" outside one)."""
    from importlib.metadata import PackageNotFoundError, version

    top = type(task).__module__.split(".")[0]
    try:
        return version(_distribution_of(top))
    except PackageNotFoundError:
        return "unknown"


def _check_plugin_version(config: dict[str, Any], task, path: Path) -> None:
    made_with, installed = config.get("plugin_version"), plugin_version(task)
    if made_with is None or made_with == "unknown":
        return
    if release(made_with) is None:
        raise BundleError(f"{path}: plugin_version {made_with!r} is not a version")
    if release(installed) is not None and release(made_with) > release(installed):
        raise BundleError(
            f"{path}: made with the {task.name} plugin {made_with}, newer than the installed {installed}; upgrade the plugin"
        )


class BundleConfig(dict):
    """A loaded bundle's config: a field the task reads but the file lacks is a BundleError naming both, not a KeyError."""

    def __init__(self, values: dict[str, Any], where: str, prefix: str = ""):
        super().__init__({k: BundleConfig(v, where, f"{prefix}{k}.") if isinstance(v, dict) else v for k, v in values.items()})
        self.where, self.prefix = where, prefix

    def __missing__(self, key: str):
        raise BundleError(f"{self.where} lacks field {self.prefix}{key!r}, which the task reads; retrain or re-export the bundle")


def load_config(bundle_dir: Path, task=None) -> tuple[dict[str, Any], Any]:
    """The bundle's config, checked once against what its task needs, and the task.

    Keys an older plugin did not write take the task's defaults; a value of
    the wrong type or range, a newer plugin, or a field the task reads but the
    file lacks is a BundleError naming config.json.
    """
    from apptool.config import check_config, with_defaults
    from apptool.plugins import get_plugins

    path = Path(bundle_dir) / CONFIG
    config = read_config(bundle_dir)
    task = task or get_plugins().task(config["task"])
    if task.name != config["task"]:
        raise BundleError(f"{path}: a bundle of task {config['task']!r}, not {task.name!r}")
    _check_plugin_version(config, task, path)
    try:
        config = check_config(task, with_defaults(task, config), trained=True)
    except ConfigError as exc:
        raise BundleError(f"{path}: {exc}") from None
    return BundleConfig(config, f"{path} (task {task.name!r})"), task


def check_same_run(path: Path, run_id: Any, config_path: Path, expected: Any) -> None:
    """Refuse a file written by another run than the bundle's config.json (a mixed bundle)."""
    if run_id != expected:
        raise BundleError(
            f"{path} is from run {run_id or 'of an older apptool'}, but {config_path.name} from run {expected or 'of an older apptool'}:"
            " a mixed bundle; retrain into this folder or re-export it"
        )


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
    meta = {"json": json.dumps(jsonable(metadata or {}))}
    return atomic_write_bytes(path, save(tensors, metadata=meta))


def _metadata(path: Path, header: Any) -> dict[str, Any]:
    """The JSON metadata of a safetensors header, or a BundleError naming the file."""
    raw = header.get("__metadata__", {}).get("json", "{}") if isinstance(header, dict) else None
    try:
        meta = json.loads(raw) if isinstance(raw, str) else None
    except json.JSONDecodeError as exc:
        raise BundleError(f"{path}: its metadata is not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise BundleError(f"{path}: its metadata is not a JSON object")
    return meta


def read_state_metadata(path: Path) -> dict[str, Any]:
    """The JSON metadata of a safetensors file, reading only its header."""
    try:
        with open(path, "rb") as handle:
            header = json.loads(handle.read(int.from_bytes(handle.read(8), "little")))
    except FileNotFoundError:
        raise BundleError(f"{path}: missing") from None
    except (ValueError, UnicodeDecodeError, OverflowError, MemoryError) as exc:
        raise BundleError(f"{path}: not a valid safetensors file ({exc})") from None
    return _metadata(path, header)


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
    return tensors, _metadata(path, header)


def load_model(bundle_dir: Path, task=None):
    """Rebuild a bundle's torch model from config.json and weights.safetensors (both of one run)."""
    from apptool.task import deep_merge

    config, task = load_config(bundle_dir, task)
    path = Path(bundle_dir) / WEIGHTS
    tensors, meta = load_state(path)
    if meta.get("task", task.name) != task.name:
        raise BundleError(f"{path}: weights of task {meta['task']!r}, but {CONFIG} names task {task.name!r}")
    check_same_run(path, meta.get("run_id"), Path(bundle_dir) / CONFIG, config.get("run_id"))
    # the weights come from the bundle: the encoder's original pretrained source may be gone
    model = task.build_model(deep_merge(config, {"model": {"pretrained": None}}))
    try:
        missing, unexpected = model.load_state_dict(tensors, strict=False)
    except RuntimeError as exc:  # a tensor of the wrong shape
        raise BundleError(f"{path}: does not match the model ({' '.join(str(exc).split())[:400]})") from None
    if missing or unexpected:
        raise BundleError(f"{path}: does not match the model (missing {missing[:5]}, unexpected {unexpected[:5]})")
    return model.eval(), config, task
