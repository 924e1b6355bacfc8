"""The command-line contract, run as a user runs it: in a subprocess, on a real (scaffold) plugin."""

from __future__ import annotations

import json
import subprocess
import sys

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
    assert sorted(p.name for p in out.iterdir()) == ["0.png", "1.png", "clip.mp4"]


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
