"""fp16 and int8 variants of a bundle's graphs, written to ``BUNDLE/variants/<fp16|int8>/<graph>.onnx``.

Both keep float32 inputs and outputs and the bundle config in ``metadata_props``,
so the task's numpy pre- and postprocessing, ``apptool eval --variant`` and the
hub run them unchanged.  fp16 halves the weights (onnxconverter-common, Cast
nodes at the graph's edges).  int8 is static QDQ quantization for graphs with
convolutions (int8 weights per output channel, uint8 activations whose ranges
are calibrated on the graph's real inputs: the task's own preprocessing of
training images, or of its generator's samples), which ONNX Runtime fuses into
integer kernels that run several times faster than float32 on x86; graphs
without convolutions (LSTMs, MLPs) get dynamic quantization, for which static
ranges buy nothing.  Every variant is timed against float32 on the calibration
inputs, and one that is slower says so.  An op type the installed ONNX Runtime has no kernel for in the reduced
precision is kept in float32 and listed in ``variant.json``, so a variant always
loads on the CPU provider, the one every deployment has.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import logging
import random
import re
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console

from apptool.bundle import atomic_write_bytes, atomic_write_json, read_config, read_json
from apptool.errors import ConfigError, ExportError
from apptool.runtime import METADATA_KEY

VARIANTS_DIR = "variants"
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm"})
CALIBRATION_ITEMS = 64
CALIBRATION_BATCH = 8
TIMED_FEEDS = 4
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


def to_fp16(source: Path, calibration: list[dict[str, Any]] | None = None) -> tuple[bytes, list[str]]:
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


def to_int8(source: Path, calibration: list[dict[str, Any]] | None = None) -> tuple[bytes, list[str]]:
    """Static QDQ int8 where the graph has convolutions and ``calibration`` feeds are given, dynamic otherwise."""
    import onnx

    has_conv = any(node.op_type == "Conv" for node in onnx.load(str(source)).graph.node)
    if has_conv and calibration:
        return _static_int8(source, calibration)
    return _dynamic_int8(source)


def _dynamic_int8(source: Path) -> tuple[bytes, list[str]]:
    """Dynamic int8 quantization, per channel, of every op type ONNX Runtime runs quantized here.

    Weights use 7 bits (``reduce_range``): on x86 CPUs without VNNI, ONNX Runtime's uint8 x int8 kernels
    add pairs of products in int16, which saturates with full-range weights (errors of several units on
    unit-scale outputs, tests/test_quantize.py); 7-bit weights cannot saturate there.
    """
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
                reduce_range=True,
                nodes_to_exclude=nodes,
                weight_type=QuantType.QInt8,
                extra_options={"MatMulConstBOnly": True},
            )
            return _tag(onnx.load(str(target)), "int8")

    return _convert(source, attempt, lambda problem: QUANTIZED_FROM.get(problem, (problem,)))


class _Feeds:
    """onnxruntime's CalibrationDataReader protocol over a list of feeds."""

    def __init__(self, feeds: list[dict[str, Any]]):
        self._feeds = iter(feeds)

    def get_next(self) -> dict[str, Any] | None:
        return next(self._feeds, None)


def _static_int8(source: Path, calibration: list[dict[str, Any]]) -> tuple[bytes, list[str]]:
    """QDQ int8 after ONNX Runtime's pre-processing (batch norm folded into the convolutions first)."""
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.registry import QDQRegistry
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory() as tmp, _quiet_root_logger():
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(source), str(prepared))

        def attempt(kept: set[str]) -> bytes:
            ops, nodes = split_kept(kept)
            target = Path(tmp) / "int8.onnx"
            quantize_static(
                prepared,
                target,
                _Feeds(calibration),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                reduce_range=True,  # 7-bit weights: see _dynamic_int8
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                op_types_to_quantize=sorted(set(QDQRegistry) - set(ops)),
                nodes_to_exclude=nodes,
            )
            model = onnx.load(str(target))
            for prop in onnx.load(str(source)).metadata_props:  # pre-processing drops the bundle config
                if not any(p.key == prop.key for p in model.metadata_props):
                    model.metadata_props.add(key=prop.key, value=prop.value)
            return _tag(model, "int8")

        return _convert(source, attempt, lambda problem: (problem,))


def latency_ms(model: bytes | str, feeds: list[dict[str, Any]], repeats: int = 3) -> float:
    """Best-of-``repeats`` CPU milliseconds to run every feed once, on one thread (a quiet-machine proxy)."""
    import time

    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])
    session.run(None, feeds[0])
    best = float("inf")
    for _ in range(repeats):
        started = time.process_time()
        for feed in feeds:
            session.run(None, feed)
        best = min(best, time.process_time() - started)
    return 1000 * best


class _RecordingRunner:
    """Runs the float32 graphs and keeps every feed the task's preprocessing produced, per graph."""

    def __init__(self, runner):
        self.runner = runner
        self.feeds: dict[str, list[dict[str, Any]]] = {}

    def run(self, graph: str, feeds: dict[str, Any]) -> dict[str, Any]:
        self.feeds.setdefault(graph, []).append(feeds)
        return self.runner.run(graph, feeds)


def calibration_items(task, config: dict[str, Any], count: int) -> list[Any]:
    """Raw inputs like the training data: files under the training folder, else the generator's samples."""
    source = Path(config["data_dir"]) if config.get("data_dir") else None
    if source is not None and source.is_dir():
        folder = source / "train" if (source / "train").is_dir() else source
        still = task.input_suffixes - VIDEO_SUFFIXES
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in still and p.is_file())
        picked = [files[i] for i in sorted(random.Random(0).sample(range(len(files)), min(count, len(files))))]
        items = [item for path in picked for _, item in task.read_input(path)][:count]
        if items:
            return items
    return task.sample_inputs(config, count, seed=2)


def calibration_feeds(task, config: dict[str, Any], fp32_dir: Path, count: int) -> dict[str, list]:
    """Each graph's input feeds for ``count`` training-like items, through the task's own preprocessing."""
    from apptool.runtime import OnnxRunner

    recorder = _RecordingRunner(OnnxRunner(fp32_dir, task.name, config["graphs"], ["CPUExecutionProvider"]))
    items = calibration_items(task, config, count)
    for start in range(0, len(items), CALIBRATION_BATCH):
        task.predict(recorder, items[start : start + CALIBRATION_BATCH], config)
    return recorder.feeds


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
    task = get_plugins().task(config["task"])
    for graph in config["graphs"]:
        if not (bundle_dir / f"{graph}.onnx").is_file():
            raise ExportError(f"{bundle_dir / f'{graph}.onnx'}: missing; run `apptool export {bundle_dir}` first")
    # int8 calibrates its activation ranges on many inputs; every variant is timed on a few
    feeds = calibration_feeds(task, config, bundle_dir, CALIBRATION_ITEMS if name == "int8" else TIMED_FEEDS)
    for graph in config["graphs"]:
        source = bundle_dir / f"{graph}.onnx"
        data, kept = CONVERTERS[name](source, feeds.get(graph))
        atomic_write_bytes(target / f"{graph}.onnx", data)
        timed = feeds.get(graph, [])[:TIMED_FEEDS]
        fp32_ms, variant_ms = (latency_ms(str(source), timed), latency_ms(data, timed)) if timed else (None, None)
        info["graphs"][graph] = {
            "source_sha256": file_digest(source),
            "kept_float32": kept,
            "bytes": len(data),
            "fp32_bytes": source.stat().st_size,
            "cpu_ms_fp32": fp32_ms,
            f"cpu_ms_{name}": variant_ms,
        }
        if timed and variant_ms > fp32_ms:
            Console(stderr=True).print(
                f"[yellow]note:[/] the {name} {graph}.onnx runs at {fp32_ms / variant_ms:.2f}x the speed of float32 "
                "on this CPU (one thread); deploy float32 here unless size matters more",
                soft_wrap=True,
            )
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


def export_fp16(bundle_dir: Path, out_dir: Path | None) -> Path:
    """float16 graphs in ``BUNDLE/variants/fp16`` (float32 inputs and outputs)."""
    return export_variant("fp16", bundle_dir, out_dir)


def export_int8(bundle_dir: Path, out_dir: Path | None) -> Path:
    """Dynamically quantized int8 graphs in ``BUNDLE/variants/int8``."""
    return export_variant("int8", bundle_dir, out_dir)
