"""PoseNet plugin: generator, renderer geometry, Cambridge reader, metrics, loss, and an end-to-end run on --data."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest
from apptool_posenet.cambridge import read_pose_file
from apptool_posenet.generator import STEP_M, render_sequence
from apptool_posenet.geometry import (
    canonical,
    intrinsics,
    look_rotation,
    mean_rotation,
    quat_to_rot,
    rot_to_quat,
    turned_back,
    turned_towards,
)
from apptool_posenet.metrics import nearest_neighbours, pose_metrics, position_errors, rotation_errors_deg
from apptool_posenet.preprocess import crop, prepare, resize_short, spread_corners
from apptool_posenet.scene import WALK_AREA, Camera, Quad, pyramid, render

from apptool.errors import DataError

HEADER = "Visual Landmark Dataset V1\r\nImageFile, Camera Position [X Y Z W P Q R]\r\n\r\n"


@pytest.fixture(scope="module")
def task():
    from apptool.plugins import get_plugins

    return get_plugins().task("posenet")


# -- geometry ------------------------------------------------------------------
def test_quaternion_round_trip_and_hemisphere():
    rng = np.random.default_rng(0)
    for q in rng.normal(size=(20, 4)):
        r = quat_to_rot(q)
        assert np.allclose(r @ r.T, np.eye(3), atol=1e-12) and np.isclose(np.linalg.det(r), 1)
        back = rot_to_quat(r)
        assert back[0] >= 0 and np.allclose(back, canonical(q), atol=1e-9)


def test_look_rotation_points_the_optical_axis():
    r = look_rotation(yaw=math.radians(90), pitch=0.0)  # heading +x (east)
    assert np.allclose(r[2], [1, 0, 0], atol=1e-12)  # optical axis
    assert np.allclose(r[1], [0, 0, -1], atol=1e-12)  # image down = world down


# -- generator and renderer --------------------------------------------------------
def test_generator_is_deterministic_by_seed_and_streams_are_disjoint():
    a = render_sequence("a", 3, "train", 0, 4, (48, 36))
    b = render_sequence("b", 3, "train", 0, 4, (48, 36))
    c = render_sequence("c", 4, "train", 0, 4, (48, 36))
    test = render_sequence("t", 3, "test", 0, 4, (48, 36))
    assert all(np.array_equal(x, y) for x, y in zip(a.images, b.images)) and np.array_equal(a.poses, b.poses)
    assert not np.allclose(a.poses, c.poses) and not np.allclose(a.poses[:, :3], test.poses[:, :3])


def test_walk_labels_are_a_walk_through_the_square():
    seq = render_sequence("s", 0, "train", 1, 12, (48, 36))
    xyz, quat = seq.poses[:, :3], seq.poses[:, 3:]
    x0, x1, y0, y1 = WALK_AREA
    assert np.all((xyz[:, 0] >= x0) & (xyz[:, 0] <= x1) & (xyz[:, 1] >= y0) & (xyz[:, 1] <= y1))
    assert np.all(np.abs(xyz[:, 2] - 1.6) < 0.3)
    steps = np.linalg.norm(np.diff(xyz[:, :2], axis=0), axis=1)
    assert np.all(steps < 1.5 * STEP_M) and steps.sum() > 0.5 * STEP_M * 11
    assert np.allclose(np.linalg.norm(quat, axis=1), 1) and np.all(quat[:, 0] >= 0)
    assert seq.images[0].shape == (36, 48, 3) and seq.images[0].dtype == np.uint8


def test_pose_label_matches_what_the_renderer_projects():
    """A red marker placed at a known camera-frame point appears at the pixel K R (P - C) predicts."""
    seq = render_sequence("s", 0, "train", 2, 1, (160, 120))
    centre, rot = seq.poses[0, :3], quat_to_rot(seq.poses[0, 3:])
    camera = Camera(160, 120, 60.0)
    point_cam = np.array([1.0, 0.5, 5.0])
    point = centre + rot.T @ point_cam
    red = pyramid(np.full((8, 8, 3), (255, 0, 0), np.uint8))
    half = 0.15  # a 0.3 m square facing the camera, drawn in front of everything
    marker = Quad(point + rot.T @ [-half, -half, 0], rot.T @ [2 * half, 0, 0], rot.T @ [0, 2 * half, 0], red, kind="object")
    image = render(camera, rot, centre, objects=[marker])
    u, v, w = camera.k @ point_cam
    col, row = int(round(u / w)), int(round(v / w))
    assert image[row, col, 0] > 100 and image[row, col, 1] < 20 and image[row, col, 2] < 20
    assert not (image[row, 160 - col, 1] < 20 and image[row, 160 - col, 0] > 100)


def test_a_camera_turned_towards_a_pixel_sees_that_pixel_at_its_centre():
    """The label of a moved crop: the point seen at (u, v) is on the optical axis of the turned camera."""
    k = intrinsics(224, 126, 50.0)
    q = rot_to_quat(look_rotation(0.7, -0.1, 0.05))
    for point_cam in ([3.0, 1.0, 10.0], [-4.0, -2.0, 8.0]):
        u, v, w = k @ point_cam
        turned = quat_to_rot(turned_towards(q, u / w - k[0, 2], v / w - k[1, 2], k[0, 0]))
        seen = turned @ quat_to_rot(q).T @ np.array(point_cam)  # the point in the turned camera's coordinates
        assert np.allclose(seen[:2], 0, atol=1e-9) and seen[2] > 0
    assert np.allclose(turned_towards(q, 0.0, 0.0, k[0, 0]), q)


def test_moved_training_crops_carry_the_turned_label_and_test_crops_the_true_one(task):
    from apptool_posenet.data import load_splits

    walks = {"train_sequences": 1, "test_sequences": 1, "frames_per_sequence": 6}
    train_set, test_set, _ = load_splits(task.config("tiny", {"data": walks}), None)

    def turned_by(dataset) -> np.ndarray:
        return np.array([rotation_errors_deg(dataset.poses[i, 3:], dataset[i][1][3:]) for i in range(len(dataset))])

    # 86x64 frames at 64/56 px: a crop moves up to 15 px sideways, atan(15 / f) with f = 74.5 px at 60 degrees
    assert 3.0 < turned_by(train_set).max() <= 11.5 and turned_by(test_set).max() < 1e-4
    train_set.turn_crops = False
    assert turned_by(train_set).max() < 1e-4


def test_turned_back_undoes_a_turn_and_the_mean_rotation_ignores_signs():
    rng = np.random.default_rng(1)
    for q in rng.normal(size=(10, 4)):
        dx, dy = rng.uniform(-40, 40, size=2)
        assert np.allclose(turned_back(turned_towards(q, dx, dy, 70.0), dx, dy, 70.0), canonical(q), atol=1e-9)
    q = canonical(rng.normal(size=4))
    estimates = np.stack([q, -q, q * 1.0])  # one rotation, either sign
    assert np.allclose(mean_rotation(estimates[None]), q[None], atol=1e-12)


def test_test_windows_spread_along_the_longer_side():
    assert spread_corners((64, 114), 56, 5) == [(4, 0), (4, 14), (4, 29), (4, 44), (4, 58)]
    assert spread_corners((114, 64), 56, 3) == [(0, 4), (29, 4), (58, 4)]
    assert spread_corners((64, 114), 56, 1) == [(4, 29)]  # the centre, as the paper tests


def test_an_answer_averages_its_windows_and_turns_each_back():
    """A runner that answers each window of a 114x64 frame with its left edge as x, turned towards its centre."""
    from apptool_posenet.task import infer

    truth = canonical(np.array([0.9, 0.1, -0.3, 0.2]))
    data = {
        "resize": 64,
        "crop": 56,
        "hfov_deg": 60.0,
        "test_crops": 5,
        "turn_crops": True,
        "mean": [0.0] * 3,
        "std": [1 / 255] * 3,
    }
    focal = intrinsics(114, 64, 60.0)[0, 0]

    class Runner:
        def run(self, graph, feeds):
            left = feeds["image"][:, 0, 0, 0]  # the ramp image: a pixel's value is its column
            xyz = np.stack([left, np.zeros_like(left), np.ones_like(left)], axis=1)
            quat = np.stack([turned_towards(truth, x + 28 - 57, 0.0, focal) for x in left])
            return {"xyz": xyz, "quat": quat, "feat": left[:, None] * np.ones((1, 4))}

    ramp = np.broadcast_to(np.arange(114, dtype=np.uint8)[None, :, None], (64, 114, 3)).copy()
    poses, feats = infer(Runner(), [ramp], {"data": data, "pose_stats": {"mean": [1.0, 2.0, 3.0], "scale": 2.0}})
    assert np.allclose(poses[0, :3], [1 + 2 * 29, 2, 3 + 2]) and np.allclose(feats, 29)  # lefts 0, 14, 29, 44, 58
    assert np.allclose(poses[0, 3:], truth, atol=1e-6)
    unturned, _ = infer(
        Runner(), [ramp], {"data": {**data, "turn_crops": False}, "pose_stats": {"mean": [0.0] * 3, "scale": 1.0}}
    )
    raw = np.stack([turned_towards(truth, x + 28 - 57, 0.0, focal) for x in (0, 14, 29, 44, 58)])
    assert np.allclose(unturned[0, 3:], mean_rotation(raw), atol=1e-9)  # labels never turned: nor are the answers
    _, centre = infer(Runner(), [ramp], {"data": {**data, "test_crops": 1}, "pose_stats": {"mean": [0.0] * 3, "scale": 1.0}})
    assert np.allclose(centre, 29)


def test_preprocess_resizes_the_shorter_side_then_crops():
    image = np.zeros((300, 500, 3), np.uint8)
    image[150, 250] = 255
    small = resize_short(image, 128)
    assert small.shape[:2] == (128, 213)
    assert crop(small, 112).shape == (112, 112, 3)
    rng = np.random.default_rng(0)
    assert prepare(image, 128, 112, rng).shape == (3, 112, 112)


# -- Cambridge Landmarks reader --------------------------------------------------------
def _images(root, names):
    import cv2

    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / name), np.zeros((8, 8, 3), np.uint8))


def test_cambridge_reader_accepts_the_real_files_quirks(tmp_path):
    _images(tmp_path, ["seq1/frame00001.png", "seq1/frame00002.png", "seq2/frame00001.png"])
    rows = (
        "seq1/frame00001.png 1.5 -2.0 0.25 0.5 0.5 0.5 0.5  \r\n"  # trailing spaces
        "seq1/frame00002.png\t2 3 4 -0.7071068 0 0.7071068 0\r\n"  # tab, w < 0
        "seq2/frame00001.png 0 0 0 2 0 0 0\r\n"  # unnormalised quaternion
        "\r\n   \r\n\r\n"  # blank trailing lines
    )
    (tmp_path / "dataset_train.txt").write_bytes((HEADER + rows).encode())
    found = read_pose_file(tmp_path, "dataset_train.txt")
    assert [p.relative_to(tmp_path.resolve()).as_posix() for p in found.paths] == [
        "seq1/frame00001.png",
        "seq1/frame00002.png",
        "seq2/frame00001.png",
    ]
    assert np.allclose(found.poses[0], [1.5, -2.0, 0.25, 0.5, 0.5, 0.5, 0.5])
    assert np.allclose(found.poses[1, 3:], [0.7071068, 0, -0.7071068, 0], atol=1e-6)  # flipped to w >= 0
    assert np.allclose(found.poses[2, 3:], [1, 0, 0, 0])
    (tmp_path / "no_header.txt").write_text("seq1/frame00001.png 1 2 3 1 0 0 0\n")
    assert len(read_pose_file(tmp_path, "no_header.txt").paths) == 1


@pytest.mark.parametrize(
    "row, message",
    [
        ("seq1/frame00001.png 1 2 3 1 0 0", "expected 8 fields"),
        ("seq1/frame00001.png 1 2 x 1 0 0 0", "field Z is not a number"),
        ("seq1/frame00001.png 1 2 3 0 0 0 0", "quaternion W P Q R is zero"),
        ("seq1/frame00001.png 1 nan 3 1 0 0 0", "position Y = nan is not a finite number"),
        ("seq1/frame00001.png 1e300 2 3 1 0 0 0", "position X = 1e+300 m is beyond 1e+06 m"),
        ("seq1/frame00001.png 1 2 -2e6 1 0 0 0", "position Z = -2e+06 m is beyond"),
        ("seq1/frame00001.png 1 2 3 1 inf 0 0", "quaternion P = inf is not a finite number"),
        ("seq1/frame00001.png 1 2 3 1e200 1e200 0 0", "quaternion W P Q R has norm 1.41421e+200"),
        ("seq1/frame00001.png 1 2 3 1e-200 0 0 0", "quaternion W P Q R has norm 1e-200"),
        ("../outside.png 1 2 3 1 0 0 0", "the data folder"),
        ("/etc/passwd 1 2 3 1 0 0 0", "absolute"),
        ("seq1/missing.png 1 2 3 1 0 0 0", "not found"),
    ],
)
def test_cambridge_reader_names_file_and_line_of_a_bad_row(tmp_path, row, message):
    data = tmp_path / "data"
    _images(data, ["seq1/frame00001.png"])
    _images(tmp_path, ["outside.png"])
    good = "seq1/frame00001.png 1 2 3 1 0 0 0\r\n"
    (data / "dataset_test.txt").write_bytes((HEADER + good + row + "\r\n").encode())
    with pytest.raises(DataError) as caught:
        read_pose_file(data, "dataset_test.txt")
    assert "dataset_test.txt:5: " in str(caught.value) and message in str(caught.value)


def test_cambridge_reader_reports_a_missing_or_empty_list(tmp_path):
    with pytest.raises(DataError, match="dataset_train.txt: missing"):
        read_pose_file(tmp_path, "dataset_train.txt")
    (tmp_path / "dataset_train.txt").write_text(HEADER)
    with pytest.raises(DataError, match="no pose rows"):
        read_pose_file(tmp_path, "dataset_train.txt")


# -- metrics and loss ----------------------------------------------------------------
def test_metrics_against_hand_computed_values():
    c45, s45 = math.cos(math.radians(45)), math.sin(math.radians(45))
    c1, s1 = math.cos(math.radians(0.5)), math.sin(math.radians(0.5))
    truth = np.array([[0, 0, 0, 1, 0, 0, 0]] * 4, float)
    pred = np.array(
        [
            [0.1, 0, 0, -1, 0, 0, 0],  # 0.1 m, 0 deg (q and -q are one rotation)
            [0.3, 0.4, 0, c1, s1, 0, 0],  # 0.5 m, 1 deg
            [3, 4, 0, c45, 0, s45, 0],  # 5 m, 90 deg
            [0, 0, 2, 2 * c1, 0, 0, 2 * s1],  # 2 m, 1 deg (unnormalised prediction)
        ]
    )
    assert np.allclose(position_errors(truth[:, :3], pred[:, :3]), [0.1, 0.5, 5, 2])
    assert np.allclose(rotation_errors_deg(truth[:, 3:], pred[:, 3:]), [0, 1, 90, 1], atol=1e-6)
    m = pose_metrics(truth, pred)
    assert m["median_pos_err_m"] == pytest.approx(1.25) and m["mean_pos_err_m"] == pytest.approx(7.6 / 4)
    assert m["median_rot_err_deg"] == pytest.approx(1.0) and m["mean_rot_err_deg"] == pytest.approx(92 / 4)
    assert (m["acc_0.25m_2deg"], m["acc_0.5m_5deg"], m["acc_5m_10deg"]) == (0.25, 0.5, 0.75)


def test_nearest_neighbours_by_cosine():
    database = np.array([[1.0, 0, 0], [0, 1, 0], [0, 0, 1]])
    assert nearest_neighbours(np.array([[0.1, 5, 0], [3, 0, 0.2]]), database).tolist() == [1, 0]


def test_loss_formulas():
    import torch
    from apptool_posenet.model import pose_loss

    xyz = torch.tensor([[3.0, 4.0, 0.0]])
    quat = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    target = torch.tensor([[0.0, 0.0, 0.0, 0.6, 0.8, 0.0, 0.0]])
    rot = math.sqrt(0.4**2 + 0.8**2)
    log_vars = torch.tensor([0.5, -2.0])
    assert pose_loss(xyz, quat, target, log_vars, "beta", 10.0).item() == pytest.approx(5 + 10 * rot, rel=1e-6)
    learned = 5 * math.exp(-0.5) + 0.5 + rot * math.exp(2.0) - 2.0
    assert pose_loss(xyz, quat, target, log_vars, "learned").item() == pytest.approx(learned, rel=1e-6)
    assert pose_loss(xyz, -quat, target, log_vars, "learned").item() == pytest.approx(learned, rel=1e-6)  # sign-free


def test_model_outputs_unit_quaternions_and_trains_its_loss_weights(task):
    import torch

    config = task.config("tiny", {"model": {"loss": "learned"}})
    model = task.build_model(config)
    xyz, quat, feat = model(torch.randn(2, 3, 56, 56))
    assert xyz.shape == (2, 3) and feat.shape[0] == 2
    assert torch.allclose(quat.norm(dim=1), torch.ones(2), atol=1e-5)
    spatial = task.build_model(task.config("tiny", {"model": {"layout_channels": 8}}))
    assert spatial.fc[0].in_features == feat.shape[1] + 8 * 2 * 2  # 56 px -> a 2x2 map at stride 32
    assert [tuple(o.shape) for o in spatial(torch.randn(3, 3, 56, 56))] == [(3, 3), (3, 4), (3, feat.shape[1])]
    batch = (torch.randn(2, 3, 56, 56), torch.tensor([[0.1, 0.2, 0.3, 1, 0, 0, 0]] * 2))
    task.loss(model, batch).backward()
    assert model.log_vars.grad is not None and torch.all(model.log_vars.grad != 0)
    fixed = task.build_model(task.config("tiny", {"model": {"loss": "beta"}}))
    task.loss(fixed, batch).backward()
    assert not fixed.log_vars.requires_grad and fixed.log_vars.grad is None  # the β loss leaves them out, DDP included


# -- end to end on the Cambridge layout ---------------------------------------------------
def test_train_and_eval_on_a_cambridge_folder(task, tmp_path):
    from apptool_posenet.data import write_cambridge
    from typer.testing import CliRunner

    from apptool.cli import app

    data = write_cambridge(tmp_path / "cambridge", task.config("tiny"))
    train_list = data / "dataset_train.txt"
    lines = train_list.read_bytes().decode().split("\r\n")
    lines[4] += "   "  # the published files' trailing spaces and blank trailing lines
    train_list.write_bytes(("\r\n".join(lines) + "\r\n\r\n").encode())
    runner = CliRunner()
    bundle = tmp_path / "bundle"
    done = runner.invoke(app, ["train", "posenet", "--preset", "tiny", "--data", str(data), "--out", str(bundle)])
    assert done.exit_code == 0, done.output
    config = json.loads((bundle / "config.json").read_text())
    assert config["scene"]["source"] == "cambridge" and len(config["scene"]["trajectory"]) == 20
    shapes = json.loads((bundle / "metrics.json").read_text())["export"]["parity_shapes"]["model"]
    assert [s.split(",")[0] for s in shapes] == ["image[1", "image[3"]  # parity at batch 1 and 3
    done = runner.invoke(app, ["eval", str(bundle), "--data", str(data), "--json"])
    assert done.exit_code == 0, done.output
    metrics = json.loads(done.stdout[done.stdout.index("{") :])
    assert set(task.metrics) <= set(metrics) and metrics["test_samples"] == 10
    assert metrics["median_pos_err_m"] >= 0 and 0 <= metrics["nn_median_rot_err_deg"] <= 180

    from apptool.runtime import Predictor

    samples = task.sample_inputs(config, 2, seed=1)  # examples come from the folder the bundle was trained on
    assert [im.shape for im in samples] == [(64, 86, 3)] * 2
    assert len(Predictor(bundle).predict(samples)) == 2
    done = runner.invoke(app, ["eval", str(bundle), "--json"])  # without --data: the recorded folder
    assert done.exit_code == 0 and json.loads(done.stdout[done.stdout.index("{") :])["test_samples"] == 10

    lines = train_list.read_bytes().decode().split("\r\n")
    lines[6] = "seq1/frame00003.png 1.0 2.0 oops 1 0 0 0"
    train_list.write_bytes("\r\n".join(lines).encode())
    done = runner.invoke(app, ["eval", str(bundle), "--data", str(data), "--json"])
    assert isinstance(done.exception, DataError)  # the CLI's main() prints it as one line, exit code 2
    assert "dataset_train.txt:7: field Z is not a number: 'oops'" in str(done.exception)


# -- a foreign site and input settings derived from the data ---------------------------------
def test_courtyard_writes_a_cambridge_folder_of_a_site_unlike_the_builtin_one(tmp_path):
    from apptool_posenet.courtyard import CourtyardSettings, courtyard_layout, write_courtyard
    from apptool_posenet.scene import BUILTIN

    settings = CourtyardSettings(seed=3, yard_m=(40.0, 30.0), image_size=(64, 36), train_walks=2, test_walks=1, frames_per_walk=4)
    layout = courtyard_layout(settings)
    assert layout != BUILTIN and layout == courtyard_layout(settings)  # seeded
    write_courtyard(tmp_path, settings)
    train, test = read_pose_file(tmp_path, "dataset_train.txt"), read_pose_file(tmp_path, "dataset_test.txt")
    assert len(train.paths) == 8 and len(test.paths) == 4
    assert {p.parent.name for p in test.paths} == {"seq3"}  # test walks are walks of their own
    x0, x1, y0, y1 = layout.walk_area
    xyz = np.concatenate([train.poses, test.poses])[:, :3]
    assert np.all((xyz[:, 0] >= x0) & (xyz[:, 0] <= x1) & (xyz[:, 1] >= y0) & (xyz[:, 1] <= y1))
    assert cv2.imread(str(test.paths[0])).shape == (36, 64, 3)


def test_courtyard_test_walks_retrace_the_training_route_both_ways():
    """Every test frame has a training frame near it looking the same way: a benchmark a method can solve."""
    from apptool_posenet.courtyard import CourtyardSettings, courtyard_layout, loop_walk, parking_area

    settings = CourtyardSettings(seed=5)
    layout = courtyard_layout(settings)
    walks = []
    for number in range(4):
        rng = np.random.default_rng([settings.seed, 12, number])
        centres, rots = loop_walk(rng, layout, settings.frames_per_walk, settings.step_m, clockwise=number % 2 == 1)
        walks.append(np.column_stack([centres, [rot_to_quat(r) for r in rots]]))
    train, test = np.concatenate(walks[:2]), walks[2]  # one training walk each way, a test walk of its own
    apart = position_errors(test[:, None, :3], train[None, :, :3])
    turned = rotation_errors_deg(test[:, None, 3:], train[None, :, 3:])
    assert np.median(np.where(apart < 3.0, turned, np.inf).min(axis=1)) < 20  # a nearby training view, same way
    gaze = np.array([quat_to_rot(q)[2][:2] for q in test[:, 3:]])  # looking across the yard, not at the wall beside
    inward = -test[:, :2] / np.abs(test[:, :2]).max(axis=0)
    assert np.mean((gaze * inward).sum(axis=1) > 0) > 0.9
    x0, x1, y0, y1 = parking_area(layout)  # vans stand off every route
    assert not np.any((test[:, 0] > x0) & (test[:, 0] < x1) & (test[:, 1] > y0) & (test[:, 1] < y1))


def test_loss_kind_lens_and_test_crops_are_checked_with_the_config_not_at_build_time(task):
    from apptool.config import check_config
    from apptool.errors import ConfigError

    assert check_config(task, task.config("tiny", {"model": {"loss": "beta"}}))["model"]["loss"] == "beta"
    with pytest.raises(ConfigError, match="model.loss = 'l2': expected one of 'learned', 'beta'"):
        check_config(task, task.config("tiny", {"model": {"loss": "l2"}}))
    with pytest.raises(ConfigError, match="data.hfov_deg = 0: expected the lens's horizontal field of view"):
        check_config(task, task.config("tiny", {"data": {"hfov_deg": 0}}))
    with pytest.raises(ConfigError, match="data.test_crops = 0: expected how many windows to average"):
        check_config(task, task.config("tiny", {"data": {"test_crops": 0}}))


def test_input_size_and_pixel_statistics_follow_the_images_and_the_weights(task):
    from apptool_posenet.data import input_settings

    config = task.config("full")
    data = input_settings(config, 126)  # 224x126 frames: no upsampling to 256
    assert (data["resize"], data["crop"]) == (126, 110) and len(data["mean"]) == 3
    assert (input_settings(config, 1080)["resize"], input_settings(config, 1080)["crop"]) == (256, 224)  # the paper's
    assert input_settings(task.config("full", {"data": {"resize": 100, "crop": 90}}), 126)["crop"] == 90
    with pytest.raises(DataError, match="shorter side 20 px"):
        input_settings(config, 20)
