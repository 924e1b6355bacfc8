"""fp16 and int8 variants: they load, keep the bundle's metadata and float32 edges, and eval reports their cost."""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from apptool.errors import ConfigError, ExportError


@pytest.fixture(scope="module")
def variants(scaffold_bundle, tmp_path_factory):
    """A copy of the scaffold bundle with both variants exported through the CLI."""
    from typer.testing import CliRunner

    from apptool.cli import app

    bundle = tmp_path_factory.mktemp("variants") / "bundle"
    shutil.copytree(scaffold_bundle, bundle)
    for name in ("fp16", "int8"):
        done = CliRunner().invoke(app, ["export", str(bundle), "--format", name])
        assert done.exit_code == 0, done.output
    return bundle


@pytest.mark.parametrize("name", ["fp16", "int8"])
def test_variant_keeps_metadata_and_float32_edges(variants, name):
    model = onnx.load(str(variants / "variants" / name / "model.onnx"))
    meta = {p.key: p.value for p in model.metadata_props}
    assert json.loads(meta["apptool.config"])["task"] == "digits_demo"
    assert meta["apptool.variant"] == name
    for value in list(model.graph.input) + list(model.graph.output):
        assert value.type.tensor_type.elem_type == TensorProto.FLOAT, value.name
    info = json.loads((variants / "variants" / name / "variant.json").read_text())
    assert info["graphs"]["model"]["bytes"] < info["graphs"]["model"]["fp32_bytes"]


def test_fp16_weights_are_half_precision(variants):
    model = onnx.load(str(variants / "variants" / "fp16" / "model.onnx"))
    kinds = {i.data_type for i in model.graph.initializer}
    assert TensorProto.FLOAT16 in kinds and TensorProto.FLOAT not in kinds


def test_int8_is_static_qdq_calibrated_and_timed_against_float32(variants):
    """A conv graph gets calibrated QDQ: every convolution reads quantized activations and int8 weights."""
    model = onnx.load(str(variants / "variants" / "int8" / "model.onnx"))
    producers = {out: n for n in model.graph.node for out in n.output}
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    assert convs and all(producers[i].op_type == "DequantizeLinear" for n in convs for i in n.input[:2])
    assert not {"ConvInteger", "DynamicQuantizeLinear"} & {n.op_type for n in model.graph.node}
    assert any(i.data_type == TensorProto.INT8 for i in model.graph.initializer)
    graph = json.loads((variants / "variants" / "int8" / "variant.json").read_text())["graphs"]["model"]
    assert graph["cpu_ms_fp32"] > 0 and graph["cpu_ms_int8"] > 0


@pytest.mark.parametrize("name", ["fp16", "int8"])
def test_eval_reports_the_variant_metric_and_its_change(variants, name):
    from typer.testing import CliRunner

    from apptool.cli import app

    done = CliRunner().invoke(app, ["eval", str(variants), "--variant", name, "--json"])
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert report["variant"] == name and report["task"] == "digits_demo"
    assert report["delta"]["accuracy"] == pytest.approx(report["accuracy"] - report["fp32"]["accuracy"])
    assert abs(report["delta"]["accuracy"]) < 0.05, "reduced precision should barely move a digit classifier"
    assert report["bytes"] < report["fp32_bytes"]


def test_variant_predictions_match_fp32_closely(variants, scaffold_task):
    from apptool.runtime import OnnxRunner

    images = np.random.default_rng(0).random((4, 1, 8, 8), dtype=np.float32)
    reference = OnnxRunner(variants, "digits_demo", ["model"]).run("model", {"image": images})["logits"]
    for name, tolerance in (("fp16", 0.02), ("int8", 0.25)):
        logits = OnnxRunner(variants / "variants" / name, "digits_demo", ["model"]).run("model", {"image": images})["logits"]
        assert np.abs(logits - reference).max() < tolerance * max(1.0, np.abs(reference).max()), name


def test_a_stale_variant_is_refused(variants, tmp_path):
    from apptool.evaluation import evaluate_bundle

    bundle = tmp_path / "bundle"
    shutil.copytree(variants, bundle)
    model = onnx.load(str(bundle / "model.onnx"))
    model.doc_string = "re-exported"
    onnx.save(model, str(bundle / "model.onnx"))
    with pytest.raises(ConfigError, match="older model.onnx"):
        evaluate_bundle(bundle, variant="int8")


def test_missing_variant_says_how_to_make_it(scaffold_bundle):
    from apptool.evaluation import evaluate_bundle

    with pytest.raises(ConfigError, match="--format int8"):
        evaluate_bundle(scaffold_bundle, variant="int8")


def _unary(op: str, dtype: int) -> bytes:
    graph = helper.make_graph(
        [helper.make_node(op, ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", dtype, [2])],
        [helper.make_tensor_value_info("y", dtype, [2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def test_an_op_without_a_kernel_is_kept_in_float32(tmp_path):
    from apptool.quantize import _convert, load_problem

    assert load_problem(_unary("Relu", TensorProto.INT16)) == "Relu"
    assert load_problem(_unary("Relu", TensorProto.FLOAT)) is None
    attempts = []

    def attempt(kept):
        attempts.append(set(kept))
        return _unary("Relu", TensorProto.FLOAT if "Relu" in kept else TensorProto.INT16)

    data, kept = _convert(tmp_path / "m.onnx", attempt, lambda op: (op,))
    assert kept == ["Relu"] and attempts == [set(), {"Relu"}]
    with pytest.raises(ExportError, match="cannot run Relu"):
        _convert(tmp_path / "m.onnx", lambda kept: _unary("Relu", TensorProto.INT16), lambda op: ())


def test_fp16_of_a_graph_whose_outputs_feed_other_nodes_and_come_from_a_cast(tmp_path):
    """Like the hashing task: ``logits`` is an output and feeds a threshold whose Cast to float is ``bits``."""
    from apptool.quantize import to_fp16, to_int8

    rng = np.random.default_rng(0)
    graph = helper.make_graph(
        [
            helper.make_node("Gemm", ["x", "w", "b"], ["logits"], name="fc", transB=1),
            helper.make_node("Greater", ["logits", "zero"], ["positive"], name="threshold"),
            helper.make_node("Cast", ["positive"], ["bits"], name="to_float", to=TensorProto.FLOAT),
        ],
        "hashing",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16])],
        [
            helper.make_tensor_value_info("bits", TensorProto.FLOAT, ["batch", 8]),
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 8]),
        ],
        initializer=[
            helper.make_tensor("w", TensorProto.FLOAT, [8, 16], rng.standard_normal(128).tolist()),
            helper.make_tensor("b", TensorProto.FLOAT, [8], rng.standard_normal(8).tolist()),
            helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    model.metadata_props.add(key="apptool.config", value=json.dumps({"task": "hashing"}))
    path = tmp_path / "model.onnx"
    onnx.save(model, str(path))
    import onnxruntime as ort

    x = rng.standard_normal((3, 16)).astype(np.float32)
    expected = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    for convert in (to_fp16, to_int8):
        data, kept = convert(path)
        got = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, {"x": x})
        assert np.array_equal(got[0], expected[0]) or np.mean(got[0] == expected[0]) > 0.9, convert.__name__
        assert np.allclose(got[1], expected[1], atol=0.1), convert.__name__
