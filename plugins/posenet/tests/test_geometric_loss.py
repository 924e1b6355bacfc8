"""Kendall & Cipolla's geometric loss: the NVM reader and writer, the scene's points, the reprojection term."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from apptool_posenet.geometry import intrinsics, look_rotation, quat_to_rot, rot_to_quat, turned_towards
from apptool_posenet.model import REPROJECTION_CLIP, reprojection_error
from apptool_posenet.nvm import read_nvm, write_nvm
from apptool_posenet.scene import landmark
from apptool_posenet.structure import POINTS_PER_IMAGE, scene_structure

from apptool.errors import DataError


@pytest.fixture(scope="module")
def task():
    from apptool.plugins import get_plugins

    return get_plugins().task("posenet")


def walk_poses(n: int = 4) -> np.ndarray:
    """Cameras on the built-in square at eye height, looking every way."""
    rng = np.random.default_rng(3)
    quats = [rot_to_quat(look_rotation(yaw, 0.05, 0.0)) for yaw in rng.uniform(-np.pi, np.pi, n)]
    centres = np.column_stack([rng.uniform(-8, 8, (n, 2)), np.full(n, 1.6)])
    return np.concatenate([centres, quats], axis=1)


def test_nvm_round_trip_and_measurements_are_pixels_from_the_image_centre(tmp_path):
    poses = walk_poses()
    points, seen = scene_structure(landmark(), poses, (86, 64), 60.0, seed=0)
    assert all(0 < len(ids) <= POINTS_PER_IMAGE for ids in seen)
    names = [f"seq1/frame{i + 1:05d}.png" for i in range(len(poses))]
    focal = intrinsics(86, 64, 60.0)[0, 0]
    path = write_nvm(tmp_path / "reconstruction.nvm", names, poses, focal, points, seen)
    model = read_nvm(path)
    assert model.keys == [name.removesuffix(".png") for name in names]
    np.testing.assert_allclose(model.centres, poses[:, :3], atol=1e-6)
    np.testing.assert_allclose(model.points, points, atol=1e-4)
    assert all(np.array_equal(a, b) for a, b in zip(model.seen, seen))
    first = int(seen[0][0])  # the point's line: x y z r g b n, then (camera feature u v) per camera seeing it
    fields = path.read_text().splitlines()[3 + len(names) + 2 + first].split()
    camera, u, v = int(fields[7]), float(fields[9]), float(fields[10])
    in_camera = quat_to_rot(poses[camera, 3:]) @ (points[first] - poses[camera, :3])
    np.testing.assert_allclose([u, v], focal * in_camera[:2] / in_camera[2], atol=0.01)
    assert -43 <= u <= 43 and -32 <= v <= 32  # inside the 86 x 64 image, from its centre


def test_nvm_reader_accepts_the_real_files_quirks(tmp_path):
    text = (
        "NVM_V3 FixedK 1670 960 1670 540\r\n\r\n"
        "2\r\n"
        "./seq1/frame00001.jpg 1670 1 0 0 0 0 0 0 0 0\r\n"
        "seq1\\frame00002.jpg 1670 1 0 0 0 1 0 0 0.01 0\r\n"
        "\r\n2\r\n"
        "1 2 3 255 0 0 2 0 5 1.5 -2.5 1 7 3 4\r\n"
        "4 5 6 0 255 0 1 1 2 0 0\r\n"
        "\r\n1\r\nlast 1 1 0 0 0 0 0 0 0 0\r\n0\r\n\r\n0\r\n#the last part of NVM file points to the PLY files\r\n1 0\r\n"
    )
    path = tmp_path / "reconstruction.nvm"
    path.write_bytes(text.encode())
    model = read_nvm(path)  # the first model only; further models and the PLY list are not its points
    assert model.keys == ["seq1/frame00001", "seq1/frame00002"]
    np.testing.assert_array_equal(model.points, [[1, 2, 3], [4, 5, 6]])
    assert [ids.tolist() for ids in model.seen] == [[0], [0, 1]]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("NVM_V3_R9T\n\n0\n", "line 1: expected an NVM_V3 header"),
        ("NVM_V3\n\ntwo\n", "line 3: expected the number of cameras"),
        ("NVM_V3\n\n2\nseq1/a.png 1 1 0 0 0 0 0 0 0 0\n", "line end: expected a camera"),
        ("NVM_V3\n\n1\nseq1/a.png 1 1 0 0 0 x 0 0 0 0\n", "line 4: the camera centre must be numbers"),
        ("NVM_V3\n\n1\na.png 1 1 0 0 0 0 0 0 0 0\n1\n1 2 3 0 0 0 2 0 0 1 1\n", "line 6: '2' measurements announced, 1 given"),
        ("NVM_V3\n\n1\na.png 1 1 0 0 0 0 0 0 0 0\n1\n1 2 3 0 0 0 1 4 0 1 1\n", "line 6: image index '4' is not one of the 1"),
        ("NVM_V3\n\n1\na.png 1 1 0 0 0 0 0 0 0 0\n1\nnan 2 3 0 0 0 0\n", "line 6: the point's x y z must be finite"),
    ],
)
def test_nvm_reader_names_file_and_line_of_what_does_not_parse(tmp_path, text, message):
    path = tmp_path / "reconstruction.nvm"
    path.write_text(text)
    with pytest.raises(DataError, match=message) as caught:
        read_nvm(path)
    assert str(path) in str(caught.value)


def batch_of_points(poses: np.ndarray, count: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    points, seen = scene_structure(landmark(), poses, (86, 64), 60.0, seed=0)
    rows = [np.column_stack([points[ids[:count]], np.ones(count)]) for ids in seen]
    return torch.tensor(poses, dtype=torch.float64), torch.tensor(np.stack(rows))


def test_reprojection_error_is_zero_at_the_truth_and_grows_with_the_offset():
    target, points = batch_of_points(walk_poses())
    xyz, quat = target[:, :3], target[:, 3:]
    assert reprojection_error(xyz, quat, target, points).item() == pytest.approx(0.0, abs=1e-9)
    errors = [reprojection_error(xyz + torch.tensor([step, 0.0, 0.0]), quat, target, points).item() for step in (0.1, 0.5, 2.0)]
    assert 0 < errors[0] < errors[1] < errors[2]
    turned = torch.tensor(np.array([turned_towards(q, np.tan(0.1), 0.0, 1.0) for q in quat.numpy()]))  # 0.1 rad to the right
    assert 0.09 < reprojection_error(xyz, turned, target, points).item() < 0.15  # tan(0.1) at the centre, more off it
    assert reprojection_error(xyz, -quat, target, points).item() == pytest.approx(0.0, abs=1e-9)  # q and -q: one rotation
    padded = points.clone()
    padded[:, 16:, 3] = 0
    padded[:, 16:, :3] = 1e3  # padding rows are ignored whatever they hold
    np.testing.assert_allclose(
        reprojection_error(xyz + 0.3, quat, target, padded).item(),
        reprojection_error(xyz + 0.3, quat, target, points[:, :16]).item(),
    )


def test_a_point_behind_the_predicted_camera_costs_the_clip():
    target, points = batch_of_points(walk_poses(1))
    flipped = torch.tensor(rot_to_quat(np.diag([-1.0, 1.0, -1.0]) @ quat_to_rot(target[0, 3:].numpy())))[None]  # turned round
    assert reprojection_error(target[:, :3], flipped, target, points).item() == pytest.approx(REPROJECTION_CLIP)


def test_descending_the_reprojection_error_finds_the_camera():
    target, points = batch_of_points(walk_poses())
    xyz = (target[:, :3] + torch.tensor([1.5, -1.0, 0.5])).requires_grad_(True)
    optimizer = torch.optim.Adam([xyz], lr=0.05)
    for _ in range(200):
        optimizer.zero_grad()
        reprojection_error(xyz, target[:, 3:], target, points).backward()
        optimizer.step()
    assert torch.linalg.vector_norm(xyz - target[:, :3], dim=1).max().item() < 0.3


def test_the_geometric_loss_reads_the_folders_reconstruction(task, tmp_path):
    from apptool_posenet.data import REPROJECTION_POINTS, write_cambridge

    config = task.config("tiny", {"model": {"reprojection_weight": 1.0}})
    data = write_cambridge(tmp_path / "cambridge", config)
    splits = task.load_data(config, data)
    image, target, points = splits.train[0]
    assert points.shape == (REPROJECTION_POINTS, 4) and (points[:, 3] == 1).all()
    assert len(splits.test[0]) == 2  # evaluation needs no points
    model = task.build_model(config)
    batch = task.collate([splits.train[i] for i in range(4)])
    loss = task.loss(model, batch)
    plain = task.loss(model, batch[:2])
    assert torch.isfinite(loss) and loss.item() > plain.item()  # the geometric term is added, not swapped in
    loss.backward()

    nvm = data / "reconstruction.nvm"
    lines = nvm.read_text().splitlines()
    for row in range(3, 3 + int(lines[2])):  # the same cameras 100 m away: another frame than the pose list's
        fields = lines[row].split()
        fields[6] = str(float(fields[6]) + 100)
        lines[row] = " ".join(fields)
    nvm.write_text("\n".join(lines))
    with pytest.raises(DataError, match="not the frame of the pose list"):
        task.load_data(config, data)
    nvm.unlink()
    with pytest.raises(DataError, match="reconstruction.nvm: not there; model.reprojection_weight > 0 needs"):
        task.load_data(config, data)
    assert len(task.load_data(task.config("tiny"), data).train[0]) == 2  # without the term the file is not needed


def test_the_geometric_term_trains_on_the_builtin_scene_and_its_weight_is_checked(task):
    from apptool.config import check_config
    from apptool.errors import ConfigError

    config = task.config("tiny", {"model": {"reprojection_weight": 1.0}})
    image, target, points = task.load_data(config, None).train[0]
    assert (points[:, 3] == 1).all()
    with pytest.raises(ConfigError, match="model.reprojection_weight = -1"):
        check_config(task, task.config("tiny", {"model": {"reprojection_weight": -1.0}}))
