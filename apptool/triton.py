"""``apptool export BUNDLE --format triton``: a Triton Inference Server model repository (onnxruntime backend).

One Triton model per ONNX graph: ``<model>/config.pbtxt`` and ``<model>/1/model.onnx``,
names, data types and dims read from the ONNX graph itself.  Batching is chosen
per graph: when every input and output starts with the same symbolic batch
dimension, the model gets ``max_batch_size`` > 0 with dynamic batching and its
dims are listed without that dimension (Triton adds it); otherwise (a state
tensor shaped (layers, batch, hidden), a graph without a batch axis) it gets
``max_batch_size: 0`` and full dims.  Dynamic dims are -1 either way.  A README
in the repository says how a client chains multi-graph bundles: a Triton
ensemble runs a fixed graph once and cannot express a beam-search or streaming
loop, so the client drives the loop, as the task's own ``predict`` does.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from apptool.bundle import atomic_write_bytes, atomic_write_json, read_config
from apptool.errors import ExportError

PLATFORM = "onnxruntime_onnx"
MAX_BATCH_SIZE = 16
TRITON_TYPES = {  # onnx.TensorProto data type -> Triton data type
    1: "TYPE_FP32",
    2: "TYPE_UINT8",
    3: "TYPE_INT8",
    4: "TYPE_UINT16",
    5: "TYPE_INT16",
    6: "TYPE_INT32",
    7: "TYPE_INT64",
    8: "TYPE_STRING",
    9: "TYPE_BOOL",
    10: "TYPE_FP16",
    11: "TYPE_FP64",
    12: "TYPE_UINT32",
    13: "TYPE_UINT64",
    16: "TYPE_BF16",
}
DYNAMIC = -1


@dataclass
class Tensor:
    """One graph input or output: name, Triton data type, dims (-1 dynamic) and each dim's symbolic name."""

    name: str
    data_type: str
    dims: list[int]
    symbols: list[str]


def graph_tensors(path: Path) -> tuple[list[Tensor], list[Tensor]]:
    """The inputs (initializers excluded) and outputs of an ONNX file, as Triton sees them."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    initializers = {i.name for i in model.graph.initializer}

    def tensor(value) -> Tensor:
        kind = value.type.tensor_type
        if kind.elem_type not in TRITON_TYPES:
            raise ExportError(f"{path}: tensor {value.name!r} has ONNX type {kind.elem_type}, which Triton cannot serve")
        dims = [d.dim_value if d.HasField("dim_value") else DYNAMIC for d in kind.shape.dim]
        symbols = [d.dim_param if d.HasField("dim_param") else "" for d in kind.shape.dim]
        return Tensor(value.name, TRITON_TYPES[kind.elem_type], dims, symbols)

    inputs = [tensor(v) for v in model.graph.input if v.name not in initializers]
    return inputs, [tensor(v) for v in model.graph.output]


def batch_axis(tensors: list[Tensor]) -> str:
    """The symbolic first dim every tensor shares when it names a batch, else '' (no Triton batching)."""
    firsts = {t.symbols[0] if t.dims else "" for t in tensors}
    name = firsts.pop() if len(firsts) == 1 else ""
    return name if "batch" in name.lower() else ""


def _tensor_block(tensor: Tensor, batched: bool) -> str:
    dims = tensor.dims[1:] if batched else tensor.dims
    lines = [f'    name: "{tensor.name}"', f"    data_type: {tensor.data_type}"]
    if dims:
        lines.append(f"    dims: [ {', '.join(map(str, dims))} ]")
    else:  # a scalar per request: Triton needs one dim, reshaped away
        lines += ["    dims: [ 1 ]", "    reshape: { shape: [ ] }"]
    return "  {\n" + "\n".join(lines) + "\n  }"


def config_pbtxt(name: str, inputs: list[Tensor], outputs: list[Tensor], max_batch_size: int = MAX_BATCH_SIZE) -> str:
    """The config.pbtxt text of one model, batched when the graph's tensors share a batch axis."""
    batched = bool(batch_axis(inputs + outputs)) and max_batch_size > 0
    parts = [
        f'name: "{name}"',
        f'platform: "{PLATFORM}"',
        f"max_batch_size: {max_batch_size if batched else 0}",
        "input [\n" + ",\n".join(_tensor_block(t, batched) for t in inputs) + "\n]",
        "output [\n" + ",\n".join(_tensor_block(t, batched) for t in outputs) + "\n]",
    ]
    if batched:
        parts.append("dynamic_batching { }")
    parts.append("instance_group [ { count: 1, kind: KIND_AUTO } ]")
    return "\n".join(parts) + "\n"


def model_name(task: str, graph: str, graphs: list[str]) -> str:
    """``<task>`` for a one-graph bundle, ``<task>_<graph>`` for each graph of a multi-graph one."""
    return task if graphs == ["model"] else f"{task}_{graph}"


def _stem(name: str) -> str:
    """A state's name without its direction, so ``h_out`` matches ``h`` and ``next_state`` matches ``state_in``."""
    for affix in ("_out", "_in", "_next", "_new", "_prev"):
        if name.endswith(affix):
            return name[: -len(affix)]
    for affix in ("out_", "in_", "next_", "new_", "prev_"):
        if name.startswith(affix):
            return name[len(affix) :]
    return name


def connections(tensors: dict[str, tuple[list[Tensor], list[Tensor]]]) -> list[tuple[str, str, str, str]]:
    """(graph, output, graph, input) pairs whose names say the output feeds the input."""
    found = []
    for source, (_, outputs) in tensors.items():
        for target, (inputs, _) in tensors.items():
            for out in outputs:
                for inp in inputs:
                    same = out.name == inp.name and source != target
                    paired = out.name != inp.name and _stem(out.name) == _stem(inp.name)
                    if same or paired:
                        found.append((source, out.name, target, inp.name))
    return found


def _describe(tensors: list[Tensor]) -> str:
    return ", ".join(
        f"`{t.name}` {t.data_type[5:].lower()}[{', '.join(s or str(d) for d, s in zip(t.dims, t.symbols))}]" for t in tensors
    )


def readme(
    config: dict[str, Any], names: dict[str, str], tensors: dict[str, tuple[list[Tensor], list[Tensor]]], predict_module: str
) -> str:
    """How to serve the repository, what each model takes, and how a client chains the graphs."""
    task = config["task"]
    rows = "\n".join(
        f"| `{names[g]}` | `{g}.onnx` | {_describe(i)} | {_describe(o)} | "
        f"{'dynamic, max_batch_size ' + str(MAX_BATCH_SIZE) if batch_axis(i + o) else 'none (max_batch_size 0, full dims)'} |"
        for g, (i, o) in tensors.items()
    )
    text = f"""# Triton model repository: apptool task `{task}`

Written by `apptool export BUNDLE --format triton`. Serve it with the onnxruntime backend:

```
docker run --rm --gpus all -p 8000:8000 -p 8001:8001 -v "$PWD":/models \\
    nvcr.io/nvidia/tritonserver:<yy.mm>-py3 tritonserver --model-repository=/models
```

| Triton model | graph | inputs | outputs | batching |
|---|---|---|---|---|
{rows}

## Batching

A graph whose inputs and outputs all start with the same symbolic batch axis gets `max_batch_size:
{MAX_BATCH_SIZE}` and `dynamic_batching`: its `dims` leave that axis out (Triton adds it) and Triton merges
concurrent requests. Any other graph gets `max_batch_size: 0` and its full dims, batch axis included.
Dims that vary (batch, time, image size) are `-1`. A per-request scalar is `dims: [ 1 ]` reshaped to `[ ]`.

## Pre- and post-processing

The models take preprocessed tensors and return raw outputs. Preprocessing (resize, normalisation,
feature extraction) and postprocessing are numpy code in the task's `predict`
(`{predict_module}`), configured by `apptool-config.json`, which is also stored in every
`model.onnx` (`metadata_props`, key `apptool.config`).
"""
    if len(tensors) > 1:
        text += chaining(names, tensors, predict_module)
    return text


def chaining(names: dict[str, str], tensors: dict[str, tuple[list[Tensor], list[Tensor]]], predict_module: str) -> str:
    """The README section on multi-graph bundles: which graph feeds which, which loops, which stands alone."""
    links = connections(tensors)
    fed = {(g, i) for _, _, g, i in links}
    used = {(g, o) for g, o, _, _ in links}
    chained = [g for g in tensors if any(s != t and g in (s, t) for s, _, t, _ in links)]
    roles = []
    for g in tensors:
        loop = [(o, i) for s, o, t, i in links if s == t == g]
        role = "chained with the others below" if g in chained else "independent: it does its job on its own"
        if loop:
            role += (
                "; called repeatedly, its "
                + ", ".join(f"`{o}`" for o, _ in loop)
                + " fed back as "
                + ", ".join(f"`{i}`" for _, i in loop)
                + " on the next call (zeros, or what feeds them, on the first)"
            )
        roles.append(f"- `{names[g]}`: {role}")
    lines = [
        f"- `{names[s]}` output `{o}` → `{names[t]}` input `{i}`" + (" (next call)" if s == t else "") for s, o, t, i in links
    ]
    client = [f"- `{names[g]}` `{t.name}`" for g, (ins, _) in tensors.items() for t in ins if (g, t.name) not in fed]
    results = [f"- `{names[g]}` `{t.name}`" for g, (_, outs) in tensors.items() for t in outs if (g, t.name) not in used]
    order = " → ".join(f"`{names[g]}`" for g in chained) or "none: each model is called on its own"
    return f"""
## Chaining the graphs

This bundle has {len(tensors)} graphs, one Triton model each. A Triton ensemble runs a fixed graph of models
once per request; it cannot express a loop whose length depends on the outputs (beam search, a stream of
frames), so the client drives it, feeding each output to the input named after it. The reference client
is the task's `predict` in `{predict_module}`, which does exactly this through `runner.run(graph, feeds)`;
replace each `runner.run` with a Triton inference request to the model named here.

{chr(10).join(roles)}

Call order of the chained models: {order}

Outputs feeding inputs:
{chr(10).join(lines) or "- none found by name: see the reference client"}

Inputs the client supplies (from the data, or chosen from earlier outputs, e.g. the next token of each beam):
{chr(10).join(client) or "- none"}

Outputs the client reads:
{chr(10).join(results) or "- none"}
"""


def export_triton(bundle_dir: Path, out_dir: Path | None) -> Path:
    """Write a Triton model repository for the bundle (default: ``BUNDLE/triton``)."""
    from apptool.plugins import get_plugins

    bundle_dir = Path(bundle_dir)
    config = read_config(bundle_dir)
    repo = Path(out_dir) if out_dir else bundle_dir / "triton"
    graphs = list(config["graphs"])
    names = {g: model_name(config["task"], g, graphs) for g in graphs}
    tensors = {}
    for graph in graphs:
        source = bundle_dir / f"{graph}.onnx"
        if not source.is_file():
            raise ExportError(f"{source}: missing; run `apptool export {bundle_dir}` first")
        tensors[graph] = graph_tensors(source)
        folder = repo / names[graph]
        (folder / "1").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, folder / "1" / "model.onnx")
        atomic_write_bytes(folder / "config.pbtxt", config_pbtxt(names[graph], *tensors[graph]).encode())
    task = get_plugins().tasks.get(config["task"])
    predict_module = type(task).__module__ if task is not None else "the task plugin"
    atomic_write_json(repo / "apptool-config.json", config)
    atomic_write_bytes(repo / "README.md", readme(config, names, tensors, predict_module).encode())
    return repo
