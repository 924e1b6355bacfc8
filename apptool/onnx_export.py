"""torch → ONNX for a task's graphs: one file per graph, config in metadata_props, checked twice.

``onnx.checker`` validates each file, and every example feed the task gives
(several batch sizes, lengths or image sizes) is run through torch and ONNX
Runtime; a difference past the graph's tolerance fails the export.
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from apptool.bundle import staged_file, write_synced
from apptool.errors import ExportError
from apptool.runtime import METADATA_KEY, open_session
from apptool.task import Graph, Task

OPSET = 17


class TorchRunner:
    """The torch-eager Runner: the same ``run(graph, feeds)`` as ONNX Runtime, over the export modules."""

    def __init__(self, graphs: list[Graph], device: str = "cpu"):
        self.modules = {g.name: g for g in graphs}
        self.device = torch.device(device)
        for spec in graphs:
            spec.module.to(self.device)

    @torch.no_grad()
    def run(self, graph: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        spec = self.modules[graph]
        inputs = (torch.from_numpy(np.ascontiguousarray(feeds[n])).to(self.device) for n in spec.input_names)
        outputs = spec.module(*inputs)
        outputs = outputs if isinstance(outputs, (tuple, list)) else (outputs,)
        return {name: out.detach().cpu().numpy() for name, out in zip(spec.output_names, outputs)}


def _to_onnx_bytes(graph: Graph) -> bytes:
    example = tuple(torch.from_numpy(graph.examples[0][n]) for n in graph.input_names)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
        torch.onnx.export(
            graph.module.eval(),
            example,
            buffer,
            input_names=list(graph.input_names),
            output_names=list(graph.output_names),
            dynamic_axes=graph.dynamic_axes,
            opset_version=OPSET,
            dynamo=False,
            do_constant_folding=True,
        )
    return buffer.getvalue()


def _with_metadata(model_bytes: bytes, config: dict[str, Any], graph: Graph) -> bytes:
    import onnx

    proto = onnx.load_from_string(model_bytes)
    meta = {METADATA_KEY: json.dumps(config, sort_keys=True), "apptool.task": config["task"], "apptool.graph": graph.name}
    del proto.metadata_props[:]
    for key, value in meta.items():
        proto.metadata_props.add(key=key, value=value)
    proto.doc_string = f"apptool {config['task']} · graph {graph.name}"
    try:
        onnx.checker.check_model(proto, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"graph {graph.name!r} fails onnx.checker: {exc}") from None
    return proto.SerializeToString()


def parity(graph: Graph, path: Path) -> float:
    """Largest |torch − ONNX Runtime| over every output of every example feed, divided by the output's
    largest magnitude where that exceeds 1 (float32 rounding grows with the value: features of
    magnitude 30 differ by 1e-4 where logits of magnitude 1 differ by 3e-6)."""
    session = open_session(path, ["CPUExecutionProvider"])
    torch_runner = TorchRunner([graph])
    worst = 0.0
    for feeds in graph.examples:
        expected = torch_runner.run(graph.name, feeds)
        got = dict(zip(graph.output_names, session.run(list(graph.output_names), feeds)))
        for name in graph.output_names:
            if expected[name].shape != got[name].shape:
                raise ExportError(
                    f"graph {graph.name!r} output {name!r}: torch shape {expected[name].shape}, "
                    f"ONNX Runtime shape {got[name].shape} for inputs {_shapes(feeds)}"
                )
            reference = expected[name].astype(np.float64)
            scale = max(1.0, float(np.max(np.abs(reference), initial=0.0)))
            diff = float(np.max(np.abs(reference - got[name].astype(np.float64)), initial=0.0)) / scale
            if diff > graph.atol or not np.isfinite(diff):
                raise ExportError(
                    f"graph {graph.name!r} output {name!r}: torch and ONNX Runtime differ by {diff:.3g} (relative above 1) "
                    f"(tolerance {graph.atol:g}) for inputs {_shapes(feeds)}"
                )
            worst = max(worst, diff)
    return worst


def _shapes(feeds: dict[str, np.ndarray]) -> str:
    return ", ".join(f"{k}{list(v.shape)}" for k, v in feeds.items())


def export_onnx(task: Task, model: torch.nn.Module, config: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """Write ``<graph>.onnx`` for each of the task's graphs; return the parity report."""
    graphs = task.graphs(model.eval(), config)
    config["graphs"] = [g.name for g in graphs]
    report: dict[str, Any] = {"opset": OPSET, "parity_max_abs_diff": {}, "parity_shapes": {}}
    for graph in graphs:  # a graph replaces the bundle's file only after it passed its checks
        target = Path(out_dir) / f"{graph.name}.onnx"
        data = _with_metadata(_to_onnx_bytes(graph), config, graph)
        try:
            with staged_file(target) as candidate:
                write_synced(candidate, data)
                report["parity_max_abs_diff"][graph.name] = parity(graph, candidate)
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, str(target)) from exc
        report["parity_shapes"][graph.name] = [_shapes(f) for f in graph.examples]
    return report
