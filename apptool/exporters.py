"""Exporters by format, one function each under one decorator; plugins add more via ``apptool_exporters``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from apptool.errors import ConfigError

Exporter = Callable[[Path, "Path | None"], Path]
EXPORTERS: dict[str, Exporter] = {}


def exporter(name: str) -> Callable[[Exporter], Exporter]:
    """Register ``fn(bundle_dir, out_dir) -> written path`` as the exporter of format ``name``."""

    def register(fn: Exporter) -> Exporter:
        EXPORTERS[name] = fn
        return fn

    return register


@exporter("onnx")
def export_onnx_bundle(bundle_dir: Path, out_dir: Path | None) -> Path:
    """Re-export the bundle's graphs from its safetensors weights, with the parity check."""
    import shutil

    from apptool.bundle import CONFIG, atomic_write_json, begin_bundle, load_model, update_metrics
    from apptool.export import export_onnx

    model, config, task = load_model(bundle_dir)
    target = Path(out_dir) if out_dir else Path(bundle_dir)
    in_place = target.resolve() == Path(bundle_dir).resolve()
    if not in_place:
        begin_bundle(target, fresh=True)  # another bundle there stops being one until this export ends
    report = export_onnx(task, model, config, target)
    if not in_place:
        for name in ("weights.safetensors", "metrics.json", "card.md"):
            if (Path(bundle_dir) / name).exists():
                shutil.copy2(Path(bundle_dir) / name, target / name)
    update_metrics(target, export=report)
    atomic_write_json(target / CONFIG, config)
    return target


def run_exporter(name: str, bundle_dir: Path, out_dir: Path | None) -> Path:
    from apptool.bundle import read_config, remove_stale_temp_files
    from apptool.plugins import get_plugins

    read_config(bundle_dir)  # a clear error for a directory that is not a bundle
    for folder in {Path(bundle_dir), *([Path(out_dir)] if out_dir else [])}:  # what a killed export left (variants/, triton/)
        remove_stale_temp_files(folder, recursive=True)
    plugins = get_plugins()
    available = plugins.provided("apptool_exporters")
    if name not in available and name not in EXPORTERS:
        raise ConfigError(
            f"no exporter for format {name!r}; available: {', '.join(sorted({*EXPORTERS, *available}))}"
            + plugins.failure_note("apptool_exporters", name)
        )
    if name not in available:
        return EXPORTERS[name](Path(bundle_dir), Path(out_dir) if out_dir else None)
    plugin, fn = available[name]
    return plugins.call(plugin, f"exporter {name!r}", fn, Path(bundle_dir), Path(out_dir) if out_dir else None)


# The deployment formats live in their own modules and register themselves with @exporter on import.
from apptool import quantize, triton  # noqa: E402,F401
