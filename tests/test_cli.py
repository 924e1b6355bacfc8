"""The command-line contract, run as a user runs it: in a subprocess, on a real (scaffold) plugin."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest


def apptool(env, *args, ok=True, timeout=300):
    done = subprocess.run(
        [sys.executable, "-m", "apptool", *map(str, args)], env=env, capture_output=True, text=True, timeout=timeout
    )
    if ok:
        assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def cli_bundle(scaffold_env, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "bundle"
    apptool(
        scaffold_env,
        "train",
        "digits_demo",
        "--preset",
        "tiny",
        "--epochs",
        "3",
        "--seed",
        "7",
        "--set",
        "train.lr=0.004",
        "--quiet",
        "--out",
        out,
    )
    return out


def test_train_writes_the_overrides_into_the_bundle(cli_bundle):
    config = json.loads((cli_bundle / "config.json").read_text())
    assert config["train"]["epochs"] == 3 and config["seed"] == 7 and config["train"]["lr"] == 0.004
    assert (cli_bundle / "curves.png").stat().st_size > 0
    assert (cli_bundle / "metrics.csv").read_text().count("\n") == 4  # header + 3 epochs


def test_eval_json_has_the_metric(scaffold_env, cli_bundle):
    metrics = json.loads(apptool(scaffold_env, "eval", cli_bundle, "--json").stdout)
    assert 0.5 < metrics["accuracy"] <= 1.0
    # the provider reported is the first of TensorRT -> CUDA -> CPU that really loads this model here
    import onnxruntime as ort

    from apptool.runtime import PREFERRED_PROVIDERS

    model, offered = str(cli_bundle / "model.onnx"), ort.get_available_providers()
    loads = [
        p for p in PREFERRED_PROVIDERS if p in offered and ort.InferenceSession(model, providers=[p]).get_providers()[0] == p
    ]
    assert metrics["provider"] == loads[0]


def test_export_into_another_folder_passes_parity(scaffold_env, cli_bundle, tmp_path):
    apptool(scaffold_env, "export", cli_bundle, "--format", "onnx", "--out", tmp_path / "exported")
    report = json.loads((tmp_path / "exported" / "metrics.json").read_text())["export"]
    assert report["parity_max_abs_diff"]["model"] <= 1e-4
    assert len(report["parity_shapes"]["model"]) == 2


def test_predict_files_folders_and_video(scaffold_env, cli_bundle, tmp_path):
    from apptool.images import write_video

    rng = np.random.default_rng(0)
    images = tmp_path / "images"
    images.mkdir()
    frames = [rng.integers(0, 255, (32, 32, 3), dtype=np.uint8) for _ in range(3)]
    for i, frame in enumerate(frames[:2]):
        cv2.imwrite(str(images / f"{i}.png"), frame)
    (images / "notes.txt").write_text("ignored: not an image")
    video = write_video(tmp_path / "clip.mp4", frames, fps=5)
    out = tmp_path / "annotated"
    result = json.loads(apptool(scaffold_env, "predict", cli_bundle, images, video, "--json", "--out", out).stdout)
    assert len(result["predictions"]) == 5
    assert all(set(p["result"]) == {"label", "probabilities"} for p in result["predictions"])
    drawn = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert drawn == ["clip.pred.mp4", "images/0.pred.png", "images/1.pred.png"]
    assert sorted(Path(p).relative_to(out).as_posix() for p in result["outputs"]) == drawn


def test_predict_out_never_replaces_an_input_or_another_drawing(scaffold_env, cli_bundle, tmp_path):
    images = tmp_path / "images"
    for name in ("road.png", "a/x.png", "b/x.png"):
        (images / name).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(images / name), np.full((16, 16, 3), 20 * len(name), np.uint8))
    before = {p: p.read_bytes() for p in images.rglob("*.png")}
    result = json.loads(apptool(scaffold_env, "predict", cli_bundle, images, "--json", "--out", images).stdout)
    assert all(p.read_bytes() == data for p, data in before.items()), "an input was overwritten"
    expected = sorted(str(images / n) for n in ("a/x.pred.png", "b/x.pred.png", "road.pred.png"))
    assert sorted(result["outputs"]) == expected and all(Path(p).is_file() for p in expected)
    again = apptool(scaffold_env, "predict", cli_bundle, images, "--out", images, ok=False)  # the drawings are inputs now
    assert again.returncode == 2 and "would replace the input" in again.stderr and "Traceback" not in again.stderr
    assert all(p.read_bytes() == data for p, data in before.items())


def test_predict_batch_size_zero_and_bench_repeats_zero_are_one_line(scaffold_env, cli_bundle, tmp_path):
    for args, message in (
        (("predict", cli_bundle, tmp_path, "--batch-size", "0"), "--batch-size must be at least 1, got 0"),
        (("bench", cli_bundle, "--repeats", "0"), "--repeats must be at least 1, got 0"),
    ):
        done = apptool(scaffold_env, *args, ok=False)
        assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


def test_bench_prints_the_ratio(scaffold_env, cli_bundle):
    report = json.loads(apptool(scaffold_env, "bench", cli_bundle, "--batch", "4", "--repeats", "3", "--json").stdout)
    assert set(report["speedup"]) == {"1", "4"} and all(r > 0 for r in report["speedup"].values())
    assert {(r["batch"], r["runtime"]) for r in report["rows"]} == {(b, r) for b in (1, 4) for r in ("torch", "onnxruntime")}


@pytest.mark.parametrize(
    "args, message",
    [
        (("train", "no_such_task", "--out", "x"), "no task 'no_such_task'"),
        (("train", "digits_demo", "--preset", "huge", "--out", "x"), "no preset 'huge'"),
        (("train", "digits_demo", "--set", "oops", "--out", "x"), "expected KEY=VALUE"),
        (("train", "digits_demo", "--set", "train.optimizer=adam", "--out", "x"), "train.optimizer"),
        (("train", "digits_demo", "--set", "train.epochs=1.7", "--out", "x"), "train.epochs = 1.7: expected an integer"),
        (("train", "digits_demo", "--set", "train.lrr=0.1", "--out", "x"), "did you mean 'train.lr'?"),
        (("eval", "/nonexistent/bundle"), "not a bundle directory"),
        (("export", "/nonexistent/bundle"), "not a bundle directory"),
    ],
)
def test_user_errors_are_one_line_without_traceback(scaffold_env, args, message, tmp_path):
    done = apptool(scaffold_env, *args, ok=False)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr


def test_predict_on_a_bad_file_names_it(scaffold_env, cli_bundle, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"definitely not a png")
    done = apptool(scaffold_env, "predict", cli_bundle, bad, ok=False)
    assert done.returncode == 2 and "broken.png: not a readable image" in done.stderr


def test_export_to_an_unknown_format_lists_the_known(scaffold_env, cli_bundle):
    done = apptool(scaffold_env, "export", cli_bundle, "--format", "tflite", ok=False)
    assert "no exporter for format 'tflite'" in done.stderr and "onnx" in done.stderr


def test_new_plugin_refuses_bad_names(scaffold_env, tmp_path):
    done = apptool(scaffold_env, "new-plugin", "Bad-Name", "--dir", tmp_path, ok=False)
    assert done.returncode == 2 and "lower-case letters" in done.stderr
