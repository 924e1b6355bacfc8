"""fp16 and int8 variants of a bundle's graphs, written to ``BUNDLE/variants/<fp16|int8>/<graph>.onnx``.

Both keep float32 inputs and outputs and the bundle config in ``metadata_props``,
so the task's numpy pre- and postprocessing, ``apptool eval --variant`` and the
hub run them unchanged.  fp16 halves the weights (onnxconverter-common, Cast
nodes at the graph's edges); int8 is dynamic quantization (int8 weights per
output channel, activations quantized at run time), which needs no calibration
data.  An op type the installed ONNX Runtime has no kernel for in the reduced
precision is kept in float32 and listed in ``variant.json``, so a variant always
loads on the CPU provider, the one every deployment has.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import logging
import re
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from apptool.bundle import atomic_write_bytes, atomic_write_json, read_config, read_json
from apptool.errors import ConfigError, ExportError
from apptool.exporters import exporter
from apptool.runtime import METADATA_KEY

VARIANTS_DIR = "variants"
VARIANT_INFO = "variant.json"
MAX_ATTEMPTS = 8  # each attempt keeps one more op type (or node) in float32
MISSING_KERNEL = re.compile(r"implementation for (\w+)\(")
MISTYPED_NODE = re.compile(r"Type Error: .*? (?:in|of) node \((.*?)\)")
#: quantized op -> the float op types it replaces (excluded together when ONNX Runtime cannot run it)
QUANTIZED_FROM = {
    "ConvInteger": ("Conv",),
    "MatMulInteger": ("MatMul", "Gemm"),
    "DynamicQuantizeLSTM": ("LSTM",),
    "DynamicQuantizeMatMul": ("MatMul", "Gemm"),
    "MatMulIntegerToFloat": ("MatMul", "Gemm"),
}


def variant_dir(bundle_dir: Path, name: str) -> Path:
    return Path(bundle_dir) / VARIANTS_DIR / name


def file_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_problem(model_bytes: bytes) -> str | None:
    """What stops ONNX Runtime's CPU provider loading this model, as a key to keep in float32, or None.

    An op type without a kernel in this precision gives its name ("Relu"); a node the converter left
    with mismatched types gives "node:<name>".  Anything else is an export error.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        ort.InferenceSession(model_bytes, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types, one per status code
        if found := MISSING_KERNEL.search(str(exc)):
            return found.group(1)
        if (found := MISTYPED_NODE.search(str(exc))) and found.group(1):
            return f"node:{found.group(1)}"
        raise ExportError(f"ONNX Runtime cannot load the converted graph: {exc}") from None
    return None


def split_kept(kept: set[str]) -> tuple[list[str], list[str]]:
    """The kept keys as (op types, node names)."""
    nodes = sorted(k.removeprefix("node:") for k in kept if k.startswith("node:"))
    return sorted(k for k in kept if not k.startswith("node:")), nodes


def _tag(model, variant: str) -> bytes:
    """The converted model with the variant recorded next to the bundle config it carries."""
    if not any(p.key == METADATA_KEY for p in model.metadata_props):
        raise ExportError("the converted graph lost its apptool.config metadata")
    for prop in [p for p in model.metadata_props if p.key == "apptool.variant"]:
        model.metadata_props.remove(prop)
    model.metadata_props.add(key="apptool.variant", value=variant)
    return model.SerializeToString()


def _convert(source: Path, attempt: Callable[[set[str]], bytes], fallback: Callable[[str], tuple[str, ...]]):
    """Run ``attempt(kept_float32)`` until ONNX Runtime loads the result; return bytes and the kept keys."""
    kept: set[str] = set()
    for _ in range(MAX_ATTEMPTS):
        data = attempt(kept)
        problem = load_problem(data)
        if problem is None:
            return data, sorted(kept)
        more = set(fallback(problem)) - kept
        if not more:
            raise ExportError(f"{source}: ONNX Runtime cannot run {problem} even with {sorted(kept)} kept in float32")
        kept |= more
    raise ExportError(f"{source}: no loadable variant after keeping {sorted(kept)} in float32")


def separate_outputs(model) -> None:
    """Give every graph output that nodes also read its own Identity, in place.

    The fp16 converter casts a kept-float32 output back under its own name,
    and a node reading that name would then get float32 among float16 inputs.
    """
    import onnx

    outputs = {o.name for o in model.graph.output}
    read = {name for node in model.graph.node for name in node.input}
    for name in sorted(outputs & read):
        inner = f"{name}__value"
        for node in model.graph.node:
            node.input[:] = [inner if i == name else i for i in node.input]
            node.output[:] = [inner if o == name else o for o in node.output]
        model.graph.node.append(onnx.helper.make_node("Identity", [inner], [name], name=f"{name}__output"))


def to_fp16(source: Path) -> tuple[bytes, list[str]]:
    """float16 weights and compute, float32 at the inputs and outputs."""
    import onnx

    try:
        from onnxconverter_common import float16
    except ImportError:
        raise ConfigError("the fp16 export needs onnxconverter-common: pip install 'apptool[deploy]'") from None
    original = onnx.load(str(source))
    separate_outputs(original)

    def attempt(kept: set[str]) -> bytes:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tiny constants (eps 1e-12) clamped to float16's range, as intended
            ops, nodes = split_kept(kept)
            model = float16.convert_float_to_float16(
                copy.deepcopy(original),
                keep_io_types=True,
                node_block_list=nodes,
                op_block_list=float16.DEFAULT_OP_BLOCK_LIST + ops,
            )
        return _tag(model, "fp16")

    return _convert(source, attempt, lambda problem: (problem,))


@contextlib.contextmanager
def _quiet_root_logger():
    """Silence the quantizer's advice to pre-process, logged on the root logger, for the call only."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def to_int8(source: Path) -> tuple[bytes, list[str]]:
    """Dynamic int8 quantization, per channel, of every op type ONNX Runtime runs quantized here."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.registry import IntegerOpsRegistry

    quantizable = set(IntegerOpsRegistry) | {"Gemm"}

    def attempt(kept: set[str]) -> bytes:
        ops, nodes = split_kept(kept)
        with tempfile.TemporaryDirectory() as tmp, _quiet_root_logger():
            target = Path(tmp) / "int8.onnx"
            quantize_dynamic(
                source,
                target,
                op_types_to_quantize=sorted(quantizable - set(ops)),
                per_channel=True,
                nodes_to_exclude=nodes,
                weight_type=QuantType.QInt8,
                extra_options={"MatMulConstBOnly": True},
            )
            return _tag(onnx.load(str(target)), "int8")

    return _convert(source, attempt, lambda problem: QUANTIZED_FROM.get(problem, (problem,)))


CONVERTERS = {"fp16": to_fp16, "int8": to_int8}
VARIANTS = tuple(CONVERTERS)


def export_variant(name: str, bundle_dir: Path, out_dir: Path | None) -> Path:
    """Convert every graph of the bundle, check the task still predicts on its samples, record what was done."""
    from apptool.plugins import get_plugins
    from apptool.runtime import OnnxRunner

    bundle_dir = Path(bundle_dir)
    config = read_config(bundle_dir)
    target = Path(out_dir) if out_dir else variant_dir(bundle_dir, name)
    info: dict[str, Any] = {"variant": name, "graphs": {}}
    for graph in config["graphs"]:
        source = bundle_dir / f"{graph}.onnx"
        if not source.is_file():
            raise ExportError(f"{source}: missing; run `apptool export {bundle_dir}` first")
        data, kept = CONVERTERS[name](source)
        atomic_write_bytes(target / f"{graph}.onnx", data)
        info["graphs"][graph] = {
            "source_sha256": file_digest(source),
            "kept_float32": kept,
            "bytes": len(data),
            "fp32_bytes": source.stat().st_size,
        }
    task = get_plugins().task(config["task"])
    runner = OnnxRunner(target, task.name, config["graphs"], ["CPUExecutionProvider"])
    try:
        task.predict(runner, task.sample_inputs(config, 2, seed=1), config)
    except Exception as exc:
        raise ExportError(f"the {name} variant of {bundle_dir} fails on the task's sample inputs: {exc}") from None
    atomic_write_json(target / VARIANT_INFO, info)
    return target


def variant_info(bundle_dir: Path, name: str) -> dict[str, Any]:
    """variant.json of a bundle's variant, checked against the bundle's current graphs."""
    folder = variant_dir(bundle_dir, name)
    info = read_json(folder / VARIANT_INFO)
    for graph, entry in info.get("graphs", {}).items():
        source = Path(bundle_dir) / f"{graph}.onnx"
        if source.is_file() and file_digest(source) != entry.get("source_sha256"):
            raise ConfigError(f"{folder}: made from an older {source.name}; re-run `apptool export {bundle_dir} --format {name}`")
    return info


@exporter("fp16")
def export_fp16(bundle_dir: Path, out_dir: Path | None) -> Path:
    """float16 graphs in ``BUNDLE/variants/fp16`` (float32 inputs and outputs)."""
    return export_variant("fp16", bundle_dir, out_dir)


@exporter("int8")
def export_int8(bundle_dir: Path, out_dir: Path | None) -> Path:
    """Dynamically quantized int8 graphs in ``BUNDLE/variants/int8``."""
    return export_variant("int8", bundle_dir, out_dir)
