"""Export formats: the built-in ones come from this module as a plugin, through the same hook as a third party's.

``apptool_exporters`` below is registered before any installed plugin (see
``apptool.plugins.BUILTIN_PLUGINS``), so a plugin's format of the same name wins,
and ``run_exporter`` knows one registry: the hook's answers.
"""

from __future__ import annotations

from pathlib import Path

from apptool import hookimpl
from apptool.errors import ConfigError


@hookimpl
def apptool_exporters() -> dict[str, object]:
    """onnx (re-export with the parity check), fp16 and int8 variants, a Triton model repository."""
    from apptool.quantize import export_fp16, export_int8
    from apptool.triton import export_triton

    return {"onnx": export_onnx_bundle, "fp16": export_fp16, "int8": export_int8, "triton": export_triton}


def export_onnx_bundle(bundle_dir: Path, out_dir: Path | None) -> Path:
    """Re-export the bundle's graphs from its safetensors weights, with the parity check."""
    import shutil

    from apptool.bundle import CARD, CONFIG, METRICS, WEIGHTS, atomic_write_json, begin_bundle, load_model, update_metrics
    from apptool.onnx_export import export_onnx

    model, config, task = load_model(bundle_dir)
    target = Path(out_dir) if out_dir else Path(bundle_dir)
    in_place = target.resolve() == Path(bundle_dir).resolve()
    if not in_place:
        begin_bundle(target, fresh=True)  # another bundle there stops being one until this export ends
    report = export_onnx(task, model, config, target)
    if not in_place:
        for name in (WEIGHTS, METRICS, CARD):
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
    if name not in available:
        raise ConfigError(
            f"no exporter for format {name!r}; available: {', '.join(sorted(available))}"
            + plugins.failure_note("apptool_exporters", name)
        )
    plugin, fn = available[name]
    return plugins.call(plugin, f"exporter {name!r}", fn, Path(bundle_dir), Path(out_dir) if out_dir else None)
