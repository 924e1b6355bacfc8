"""The Triton model repository: every config.pbtxt checked against the ONNX graph it serves."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from apptool.triton import TRITON_TYPES, Tensor, config_pbtxt

TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\]:,]|[^\s{}\[\]:,"]+')


def parse_pbtxt(text: str) -> dict:
    """Protobuf text format as nested dicts; every field is a list of its values (repeated or not)."""
    tokens = TOKEN.findall(re.sub(r"#.*", "", text))
    pos = 0

    def value():
        nonlocal pos
        token = tokens[pos]
        pos += 1
        if token == "{":
            return message("}")
        if token == "[":
            items = []
            while tokens[pos] != "]":
                items.append(value())
                if tokens[pos] == ",":
                    pos += 1
            pos += 1
            return items
        if token.startswith('"'):
            return json.loads(token)
        try:
            return int(token)
        except ValueError:
            return token

    def message(end):
        nonlocal pos
        fields: dict[str, list] = {}
        while pos < len(tokens) and tokens[pos] != end:
            key = tokens[pos]
            pos += 1
            if tokens[pos] == ":":
                pos += 1
            parsed = value()
            fields.setdefault(key, []).extend(
                parsed if isinstance(parsed, list) and key in ("input", "output", "instance_group") else [parsed]
            )
            if pos < len(tokens) and tokens[pos] == ",":
                pos += 1
        pos += 1
        return fields

    return message(None)


def onnx_dims(value) -> list[int]:
    return [d.dim_value if d.HasField("dim_value") else -1 for d in value.type.tensor_type.shape.dim]


def check_repository(repo: Path) -> dict[str, dict]:
    """Every model folder's config against its 1/model.onnx; returns the parsed configs by model name."""
    configs = {}
    for folder in sorted(p for p in repo.iterdir() if p.is_dir()):
        config = parse_pbtxt((folder / "config.pbtxt").read_text())
        graph = onnx.load(str(folder / "1" / "model.onnx")).graph
        assert config["name"] == [folder.name]
        assert config["platform"] == ["onnxruntime_onnx"]
        batch = config["max_batch_size"][0]
        initializers = {i.name for i in graph.initializer}
        for section, values in (("input", [v for v in graph.input if v.name not in initializers]), ("output", graph.output)):
            declared = config[section]
            assert [d["name"][0] for d in declared] == [v.name for v in values]
            for entry, value in zip(declared, values):
                assert entry["data_type"] == [TRITON_TYPES[value.type.tensor_type.elem_type]]
                dims = onnx_dims(value)
                if batch > 0:  # batched: the leading batch axis is implicit
                    assert dims[0] == -1
                    dims = dims[1:]
                if dims:
                    assert entry["dims"][0] == dims
                else:
                    assert entry["dims"][0] == [1] and entry["reshape"][0]["shape"] == [[]]
        assert ("dynamic_batching" in config) == (batch > 0)
        configs[folder.name] = config
    return configs


def test_scaffold_repository_matches_its_graph(scaffold_bundle, tmp_path):
    from typer.testing import CliRunner

    from apptool.cli import app

    repo = tmp_path / "repo"
    done = CliRunner().invoke(app, ["export", str(scaffold_bundle), "--format", "triton", "--out", str(repo)])
    assert done.exit_code == 0, done.output
    configs = check_repository(repo)
    assert list(configs) == ["digits_demo"]
    assert configs["digits_demo"]["max_batch_size"] == [16]
    assert configs["digits_demo"]["input"][0]["dims"][0] == [1, 8, 8]
    assert (repo / "digits_demo" / "1" / "model.onnx").read_bytes() == (scaffold_bundle / "model.onnx").read_bytes()
    assert json.loads((repo / "apptool-config.json").read_text())["task"] == "digits_demo"
    assert "onnxruntime" in (repo / "README.md").read_text()


def _tagged(graph, task: str) -> onnx.ModelProto:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    model.metadata_props.add(key="apptool.config", value=json.dumps({"task": task}))
    onnx.checker.check_model(model)
    return model


@pytest.fixture
def two_graph_bundle(tmp_path) -> Path:
    """A bundle shaped like captioning: an encoder, and a step graph whose state is (layers, batch, hidden).

    The step's ``token`` input is unused by the toy graph: the client supplies it, as in beam search.
    """
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    rng = np.random.default_rng(0)
    weight = helper.make_tensor("w", TensorProto.FLOAT, [12, 8], rng.standard_normal(96).astype(np.float32).tolist())
    encoder = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["image"], ["pooled"], axes=[2, 3], keepdims=0),
            helper.make_node("Tile", ["pooled", "reps"], ["embedding"]),
        ],
        "encoder",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, "height", "width"])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", 12])],
        initializer=[helper.make_tensor("reps", TensorProto.INT64, [2], [1, 4])],
    )
    step = helper.make_graph(
        [
            helper.make_node("MatMul", ["embedding", "w"], ["proj"]),
            helper.make_node("Add", ["h", "proj"], ["h_out"]),
            helper.make_node("ReduceMean", ["h_out"], ["logits"], axes=[0], keepdims=0),
        ],
        "step",
        [
            helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", 12]),
            helper.make_tensor_value_info("token", TensorProto.INT64, ["batch"]),
            helper.make_tensor_value_info("h", TensorProto.FLOAT, [1, "batch", 8]),
        ],
        [
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 8]),
            helper.make_tensor_value_info("h_out", TensorProto.FLOAT, [1, "batch", 8]),
        ],
        initializer=[weight],
    )
    for name, graph in (("encoder", encoder), ("step", step)):
        onnx.save(_tagged(graph, "two_graph"), str(bundle / f"{name}.onnx"))
    (bundle / "config.json").write_text(json.dumps({"task": "two_graph", "graphs": ["encoder", "step"]}))
    return bundle


def test_multi_graph_bundle_gets_one_model_per_graph_and_a_chaining_readme(two_graph_bundle, tmp_path):
    from apptool.export_formats import run_exporter

    repo = run_exporter("triton", two_graph_bundle, tmp_path / "repo")
    configs = check_repository(repo)
    assert sorted(configs) == ["two_graph_encoder", "two_graph_step"]
    encoder, step = configs["two_graph_encoder"], configs["two_graph_step"]
    assert encoder["max_batch_size"] == [16] and encoder["input"][0]["dims"][0] == [3, -1, -1]
    assert step["max_batch_size"] == [0], "state shaped (layers, batch, hidden) cannot be batched by Triton"
    assert step["input"][1]["data_type"] == ["TYPE_INT64"] and step["input"][2]["dims"][0] == [1, -1, 8]
    readme = (repo / "README.md").read_text()
    assert "ensemble" in readme and "Chaining the graphs" in readme
    assert "`two_graph_encoder` output `embedding` → `two_graph_step` input `embedding`" in readme
    assert "`two_graph_step` output `h_out` → `two_graph_step` input `h` (next call)" in readme
    assert "Call order of the chained models: `two_graph_encoder` → `two_graph_step`" in readme
    assert "`two_graph_step` `token`" in readme.split("Inputs the client supplies")[1].split("Outputs the client reads")[0]


def test_per_request_scalars_are_reshaped_in_a_batched_model():
    text = config_pbtxt(
        "m", [Tensor("lengths", "TYPE_INT64", [-1], ["batch"])], [Tensor("y", "TYPE_FP32", [-1, 4], ["batch", ""])]
    )
    config = parse_pbtxt(text)
    assert config["max_batch_size"] == [16]
    assert config["input"][0]["dims"] == [[1]] and config["input"][0]["reshape"] == [{"shape": [[]]}]
    assert config["output"][0]["dims"] == [[4]]


def test_a_graph_without_a_shared_batch_axis_is_not_batched():
    text = config_pbtxt("m", [Tensor("x", "TYPE_FP32", [-1, 3], ["time", ""])], [Tensor("y", "TYPE_FP32", [-1], ["time"])])
    config = parse_pbtxt(text)
    assert config["max_batch_size"] == [0] and "dynamic_batching" not in config
    assert config["input"][0]["dims"] == [[-1, 3]]


def test_export_refuses_a_bundle_without_its_graph(scaffold_bundle, tmp_path):
    import shutil

    from apptool.errors import ExportError
    from apptool.export_formats import run_exporter

    broken = tmp_path / "broken"
    shutil.copytree(scaffold_bundle, broken, ignore=shutil.ignore_patterns("*.onnx", "variants", "triton"))
    with pytest.raises(ExportError, match="model.onnx: missing"):
        run_exporter("triton", broken, tmp_path / "repo")
