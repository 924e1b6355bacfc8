"""Steering plugin: generator, expert labels, renderer geometry, Udacity reader, metrics, simulator, end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from apptool_steering import data, metrics, road, sim, vehicle
from apptool_steering.task import SteeringTask

from apptool.bundle import CONFIG
from apptool.errors import DataError

TASK = SteeringTask()


@pytest.fixture(scope="module")
def config():
    cfg = TASK.config("tiny")
    cfg["input"] = data.input_spec(cfg)
    return cfg


def plain_scene(seed: int = 0) -> road.Scene:
    """A scene without clutter, shadows or worn paint, for geometry checks."""
    scene = road.Scene.random(np.random.default_rng(seed))
    scene.shadow_cover, scene.kerbs, scene.shoulder = 0.0, False, 0.0
    scene.edge_lines, scene.centre_line = True, "none"
    return scene


def constant_track(kappa: float, length: float = 300.0) -> road.Track:
    return road.Track.from_curvature(np.full(int(length / road.DS) + 1, kappa), [plain_scene()])


# -- generator ------------------------------------------------------------------------
def test_generator_is_deterministic_by_seed_and_splits_differ(config):
    frames = data.GeneratedFrames(config, "train", 4, config["input"])
    again = data.GeneratedFrames(config, "train", 4, config["input"])
    image, label = frames.frame(2)
    image2, label2 = again.frame(2)
    assert np.array_equal(image, image2) and label == label2
    x, y = frames[2]
    assert x.shape == (3, 66, 200) and x.dtype == np.float32 and y == np.float32(label)
    other_seed = data.GeneratedFrames({**config, "seed": 1}, "train", 4, config["input"])
    test = data.GeneratedFrames(config, "test", 4, config["input"])
    assert not np.array_equal(image, other_seed.frame(2)[0])
    assert not np.array_equal(frames.track(0).xy, test.track(0).xy)  # held-out tracks


def test_tracks_are_deterministic_and_follow_their_curvature():
    a, b = road.make_track(7, 400), road.make_track(7, 400)
    assert np.array_equal(a.xy, b.xy) and a.scenes[0].road_width == b.scenes[0].road_width
    circle = constant_track(2 * math.pi / 300.0, 300.0)  # one full turn comes back to the start
    assert np.hypot(*circle.xy[-1]) < 0.05
    assert math.isclose(circle.heading[-1], 2 * math.pi, abs_tol=1e-3)


def test_expert_label_is_zero_centred_on_a_straight_and_recovers_symmetrically():
    track = constant_track(0.0)
    hint = 200
    s = hint * road.DS
    assert vehicle.expert_command(track, track.pose(s), hint) == pytest.approx(0.0, abs=1e-9)
    left = vehicle.expert_command(track, track.pose(s, offset=0.5), hint)
    right = vehicle.expert_command(track, track.pose(s, offset=-0.5), hint)
    assert left > 0.05 and right == pytest.approx(-left)  # left of centre: steer right (positive)
    turned_left = vehicle.expert_command(track, track.pose(s, yaw=math.radians(3)), hint)
    assert turned_left > 0.05


def test_expert_label_on_an_arc_is_the_arc_curvature():
    for kappa in (1 / 60.0, -1 / 120.0):
        track = constant_track(kappa)
        expected = -math.degrees(math.atan(vehicle.WHEELBASE * kappa)) / vehicle.MAX_STEER_DEG
        assert vehicle.expert_command(track, track.pose(50.0), 200) == pytest.approx(expected, abs=2e-3)
    assert vehicle.command_to_curvature(vehicle.curvature_to_command(0.01)) == pytest.approx(0.01)


def test_recovery_label_matches_the_expert_at_the_moved_pose():
    track = constant_track(1 / 80.0)
    hint, s = 200, 50.0
    base = vehicle.expert_command(track, track.pose(s), hint)
    for shift, yaw in ((0.5, 0.0), (0.0, 2.0), (-0.4, -1.5)):
        moved = vehicle.expert_command(track, track.pose(s, shift, math.radians(yaw)), hint)
        assert vehicle.recovery_command(base, shift, math.radians(yaw)) == pytest.approx(moved, abs=0.01)


def test_rendered_road_sits_where_the_label_says():
    track = constant_track(0.0)
    hint = 200
    light = road.Lighting()

    def road_centre_column(offset: float) -> float:
        pose = track.pose(hint * road.DS, offset)
        image = road.render(track, vehicle.camera_pose(pose), vehicle.camera_hint(hint), light=light)
        row = image[120].astype(float)
        asphalt = np.abs(row - track.scenes[0].asphalt).sum(axis=1) < 30
        return float(np.flatnonzero(asphalt).mean())

    centred = road_centre_column(0.0)
    assert centred == pytest.approx(160, abs=3)
    assert road_centre_column(0.8) > centred + 20  # car left of centre: the road appears to the right


def test_rows_option_renders_the_same_band(config):
    track = road.make_track(3, 300)
    pose, hint = track.pose(60.0, 0.2), 240
    full = road.render(track, pose, hint)
    band = road.render(track, pose, hint, rows=(60, 135))
    assert np.array_equal(full[60:135], band[60:135]) and not band[:60].any()


# -- Udacity reader -------------------------------------------------------------------------
def write_udacity(root: Path, config, n_train: int = 4, n_test: int = 2, header: bool = False) -> Path:
    """A Udacity-layout folder whose logs have real-world quirks; images come from the renderer."""
    frames = data.GeneratedFrames(config, "train", n_train + n_test, config["input"])
    for split, indices in (("train", range(n_train)), ("test", range(n_train, n_train + n_test))):
        img_dir = root / split / "IMG"
        img_dir.mkdir(parents=True)
        lines = ["center,left,right,steering,throttle,brake,speed"] if header else []
        for k, i in enumerate(indices):
            track = frames.track(i)
            pose = track.pose(40.0 + 5 * k)
            hint = int((40.0 + 5 * k) / road.DS)
            names = []
            for cam, lateral in (("center", 0.0), ("left", 0.8), ("right", -0.8)):
                image = road.render(track, vehicle.camera_pose(pose, lateral), vehicle.camera_hint(hint))
                name = f"{cam}_2016_12_01_13_30_48_{k:03d}.jpg"
                cv2.imwrite(str(img_dir / name), image[:, :, ::-1])
                names.append(name)
            label = vehicle.expert_command(track, pose, hint)
            if k % 3 == 0:  # recorded on Windows: only the basename exists here
                paths = [f"C:\\Users\\driver\\Desktop\\sim\\IMG\\{n}" for n in names]
            elif k % 3 == 1:  # recorded on a Mac
                paths = [f"/Users/driver/Desktop/data/IMG/{n}" for n in names]
            else:  # relative, and one absolute path that exists here
                paths = [str((img_dir / names[0]).resolve()), f"IMG/{names[1]}", f"IMG/{names[2]}"]
            lines.append(f"{paths[0]}, {paths[1]}, {paths[2]}, {label:.6f}, 0.5, 0, 30.19" + ("," if k % 2 else ""))
        (root / split / "driving_log.csv").write_text("\n".join(lines) + "\n\n")  # a trailing blank line
    return root


def test_udacity_reader_resolves_quirky_paths(tmp_path, config):
    root = write_udacity(tmp_path / "udacity", config, n_train=3)
    rows = data.read_driving_log(root / "train", root)
    assert len(rows) == 3
    for k, row in enumerate(rows):
        assert row.center.is_file() and row.center.name.startswith("center_") and row.center.name.endswith(f"{k:03d}.jpg")
        assert row.left.name.startswith("left_") and row.right.name.startswith("right_")
    assert rows[0].where.endswith("driving_log.csv:1")
    first = (root / "train" / "driving_log.csv").read_text().splitlines()[0]
    assert rows[0].steering == pytest.approx(float(first.split(",")[3]))


def test_udacity_header_and_side_cameras(tmp_path, config):
    root = write_udacity(tmp_path / "udacity", config, n_train=2, header=True)
    rows = data.read_driving_log(root / "train", root)
    assert len(rows) == 2
    cfg = json.loads(json.dumps(config["data"]))
    cfg["augment"].update(flip=False, shift_m=0.0, yaw_deg=0.0)
    train = data.UdacityFrames(rows, config["input"], cfg, train=True)
    test = data.UdacityFrames(rows, config["input"], cfg, train=False)
    assert len(train) == 6 and len(test) == 2
    labels = [train[i][1] for i in range(3)]
    assert labels[1] == pytest.approx(rows[0].steering + cfg["side_correction"])
    assert labels[2] == pytest.approx(rows[0].steering - cfg["side_correction"])


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("IMG/a.jpg, IMG/a.jpg, IMG/a.jpg, straight, 0, 0, 0", "steering 'straight' is not a number"),
        ("IMG/a.jpg, IMG/a.jpg", "expected at least 4 columns"),
        ("IMG/missing.jpg, , , 0.1, 0, 0, 0", "not found"),
        ("../../outside/a.jpg, , , 0.1, 0, 0, 0", "leaves the data folder"),
        ("IMG/a.jpg, , , nan, 0, 0, 0", "not finite"),
    ],
)
def test_malformed_rows_name_file_and_line(tmp_path, line, message):
    split = tmp_path / "data" / "train"
    (split / "IMG").mkdir(parents=True)
    cv2.imwrite(str(split / "IMG" / "a.jpg"), np.zeros((160, 320, 3), np.uint8))
    (split / "driving_log.csv").write_text("IMG/a.jpg, IMG/a.jpg, IMG/a.jpg, 0.0, 0, 0, 0\n" + line + "\n")
    with pytest.raises(DataError) as caught:
        data.read_driving_log(split, tmp_path / "data")
    assert "driving_log.csv:2" in str(caught.value) and message in str(caught.value)


def test_missing_split_and_empty_log_are_data_errors(tmp_path, config):
    (tmp_path / "d" / "train").mkdir(parents=True)
    with pytest.raises(DataError, match="missing test/"):
        TASK.load_data(config, tmp_path / "d")
    (tmp_path / "d" / "test").mkdir()
    (tmp_path / "d" / "train" / "driving_log.csv").write_text("\n")
    with pytest.raises(DataError, match="no rows"):
        TASK.load_data(config, tmp_path / "d")


def test_shift_rotate_augmentation_moves_the_view_and_the_label():
    aug = {"horizon": 0.35, "hfov_deg": 60.0, "camera_height": 1.4}
    image = np.zeros((160, 320, 3), np.uint8)
    image[:, 160] = 255
    assert np.array_equal(data.shift_rotate(image, 0.0, 0.0, aug), image)
    focal = 320 / (2 * math.tan(math.radians(30)))
    turned = data.shift_rotate(image, 0.0, 2.0, aug)
    assert np.argmax(turned[100, :, 0]) == round(160 + focal * math.tan(math.radians(2)))
    shifted = data.shift_rotate(image, 0.5, 0.0, aug)
    assert np.argmax(shifted[20, :, 0]) == 160 and np.argmax(shifted[150, :, 0]) > 170  # sky stays, ground moves
    assert vehicle.recovery_command(0.0, 0.5, 0.0) > 0 and vehicle.recovery_command(0.0, 0.0, math.radians(2)) > 0


# -- metrics and the simulator ---------------------------------------------------------------
def test_metrics_against_hand_computed_values():
    assert metrics.rmse([0.0, 3.0], [4.0, 0.0]) == pytest.approx(math.sqrt(12.5))
    assert metrics.rmse([0.1, 0.1], [0.1, 0.1]) == 0.0
    assert metrics.autonomy(2, 600.0) == pytest.approx(98.0)
    assert metrics.autonomy(0, 10.0) == 100.0
    assert metrics.autonomy(10, 30.0) == 0.0
    with pytest.raises(ValueError):
        metrics.rmse([], [])


def test_expert_drives_without_interventions_and_zero_steering_does_not(config):
    expert = sim.drive(lambda image, command: command, config, seconds=30.0)
    assert expert.interventions == 0 and expert.autonomy == 100.0 and max(map(abs, expert.offsets)) < 0.5
    recorded = sim.drive(lambda image, command: command, config, seconds=3.0, on_frame=lambda image, state: image)
    assert recorded.offsets == expert.offsets[:30] and recorded.frames[0].shape == (160, 320, 3)  # the video is the scored drive
    blind = sim.drive(lambda image, command: 0.0, config, seconds=30.0)
    assert blind.interventions > 0
    assert blind.autonomy == pytest.approx(max(0.0, (1 - blind.interventions * 6 / 30.0) * 100))


def test_render_draws_the_prediction(config):
    image = TASK.sample_inputs(config, 1)[0]
    drawn = TASK.render(image, {"steering": 0.3}, config)
    assert drawn.shape == image.shape and not np.array_equal(drawn, image)


def test_timm_backbone_option_builds_an_encoder_and_reads_rgb():
    import torch

    cfg = TASK.config("tiny", {"model": {"backbone": "mobilenetv3_small_100"}})
    model = TASK.build_model(cfg).eval()
    assert hasattr(model, "encoder") and data.input_spec(cfg)["color"] == "rgb"
    with torch.no_grad():
        assert model(torch.zeros(2, 3, 66, 200)).shape == (2, 1)


def test_imagenet_backbone_stores_its_normalisation_and_onnx_predict_uses_it(tmp_path):
    """``--backbone efficientnet_lite0 --pretrained imagenet``: inputs standardised by 127.5 (mean/std 0.5), parity on ONNX."""
    import torch

    from apptool.onnx_export import export_onnx
    from apptool.runtime import OnnxRunner

    cfg = TASK.config("tiny", {"model": {"backbone": "efficientnet_lite0", "pretrained": "imagenet", "input_size": [64, 96]}})
    cfg["input"] = data.input_spec(cfg)
    assert cfg["input"]["mean"] == [127.5] * 3 and cfg["input"]["std"] == [127.5] * 3 and cfg["input"]["color"] == "rgb"
    image = TASK.sample_inputs(cfg, 1, seed=3)[0]
    pixels = data.to_network_pixels(image, cfg["input"]).astype(np.float32)
    assert np.allclose(data.preprocess(image, cfg["input"]), (pixels.transpose(2, 0, 1) - 127.5) / 127.5)
    model = TASK.build_model(cfg).eval()
    report = export_onnx(TASK, model, cfg, tmp_path)
    assert max(report["parity_max_abs_diff"].values()) <= 1e-4
    predicted = TASK.predict(OnnxRunner(tmp_path, TASK.name, cfg["graphs"]), [image], cfg)[0]["steering"]
    with torch.no_grad():
        expected = float(model(torch.from_numpy(data.preprocess(image, cfg["input"])[None])).clamp(-1, 1))
    assert abs(predicted - expected) <= 1e-4


# -- end to end --------------------------------------------------------------------------------
def test_train_on_udacity_folder_then_eval_on_onnx_runtime(tmp_path, config):
    from typer.testing import CliRunner

    from apptool.cli import app

    root = write_udacity(tmp_path / "udacity", config, n_train=6, n_test=3)
    bundle = tmp_path / "bundle"
    runner = CliRunner()
    done = runner.invoke(app, ["train", "steering", "--preset", "tiny", "--data", str(root), "--out", str(bundle)])
    assert done.exit_code == 0, done.output
    saved = json.loads((bundle / CONFIG).read_text())
    assert saved["input"]["color"] == "yuv" and "Udacity" in saved["source"]
    done = runner.invoke(app, ["eval", str(bundle), "--data", str(root), "--json"])
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout[done.stdout.index("{") :])
    assert {"rmse", "rmse_zero_baseline", "autonomy", "interventions", "sim_seconds"} <= set(result)
    assert result["test_samples"] == 3 and result["provider"]
