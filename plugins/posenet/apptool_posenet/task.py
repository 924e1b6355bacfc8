"""The PoseNet task: 6-DOF camera pose from one image, after Kendall, Grimes & Cipolla (ICCV 2015).

Importing this module must not import torch (the deployment path has none):
torch is imported inside ``build_model``, ``loss`` and ``graphs`` only.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from apptool.errors import ConfigError, DataError, InputError
from apptool.images import read_image, to_rgb
from apptool.task import Graph, Splits, Task, run_in_batches
from apptool_posenet.cambridge import SPLIT_FILES, read_pose_file
from apptool_posenet.data import input_size, load_splits, rendered_short_side
from apptool_posenet.generator import render_sequence
from apptool_posenet.geometry import intrinsics, mean_rotation, turned_back
from apptool_posenet.mapview import draw_map, heading, to_map
from apptool_posenet.metrics import nearest_neighbours, pose_metrics
from apptool_posenet.preprocess import pixel_stats, resize_short, spread_corners, to_chw

LOSSES = ("learned", "beta")
BATCH = 32
MAX_ASPECT = 8.0
MIN_HFOV_DEG, MAX_HFOV_DEG = 5, 170  # a telephoto to a fisheye: what a pinhole camera model still describes
PREDICTED = (220, 40, 40)
TRUE = (30, 150, 60)


def infer(runner, images: list[np.ndarray], config: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Poses (N, 7) in world units and encoder features (N, C) for RGB images, in batches.

    Each answer is the mean over ``data.test_crops`` windows spread across the image: their
    positions and features averaged, their orientations averaged after turning each back by
    its window's offset when the training labels were turned with their crops.
    """
    data, stats = config["data"], config["pose_stats"]
    pixels, size = pixel_stats(data), int(data["crop"])
    count = int(data.get("test_crops", 1))  # bundles from before multi-window testing: the centre one
    frames = [resize_short(image, int(data["resize"])) for image in images]
    windows = [(i, corner) for i, frame in enumerate(frames) for corner in spread_corners(frame.shape, size, count)]

    def feeds(batch: Sequence[tuple[int, tuple[int, int]]]) -> dict[str, np.ndarray]:
        return {"image": np.stack([to_chw(frames[i][t : t + size, x : x + size], pixels) for i, (t, x) in batch])}

    out = run_in_batches(runner, "model", windows, feeds, BATCH)
    xyz = out["xyz"].astype(np.float64).reshape(len(frames), count, 3).mean(axis=1)
    xyz = xyz * float(stats["scale"]) + np.asarray(stats["mean"])
    quats = out["quat"].astype(np.float64)
    for k, (i, (top, left)) in enumerate(windows if data.get("turn_crops") else []):
        h, w = frames[i].shape[:2]
        focal = intrinsics(w, h, float(data["hfov_deg"]))[0, 0]
        quats[k] = turned_back(quats[k], left + size / 2 - w / 2, top + size / 2 - h / 2, focal)
    quat = mean_rotation(quats.reshape(len(frames), count, 4))
    feat = out["feat"].astype(np.float32).reshape(len(frames), count, -1).mean(axis=1)
    return np.concatenate([xyz, quat], axis=1), feat


def trained_folder(config: dict[str, Any]) -> Path | None:
    """The Cambridge folder a bundle was trained on (None: the built-in landmark)."""
    if config.get("scene", {}).get("source") != "cambridge" or not config.get("data_dir"):
        return None
    return Path(config["data_dir"])


class PoseNetTask(Task):
    """PoseNet on the built-in landmark or a Cambridge Landmarks folder."""

    name = "posenet"
    title = "PoseNet relocalization"
    description = (
        "Regresses the 6-DOF camera pose (position in metres, orientation quaternion) from one image with a "
        "transfer-learned convnet, after Kendall, Grimes & Cipolla (ICCV 2015) and Kendall & Cipolla (CVPR 2017)."
    )
    metrics = (
        "median_pos_err_m",
        "median_rot_err_deg",
        "mean_pos_err_m",
        "mean_rot_err_deg",
        "acc_0.25m_2deg",
        "acc_0.5m_5deg",
        "acc_5m_10deg",
        "scene_extent_m",
        "nn_median_pos_err_m",
        "nn_median_rot_err_deg",
    )
    primary_metric = "median_pos_err_m"
    greater_is_better = False
    presets = {
        "tiny": {  # a smoke run: the cheapest encoder, from random weights
            "model": {"hidden": 64, "backbone": "mobilenetv3_small_100", "pretrained": None},
            "data": {
                "render_size": [86, 64],
                "max_resize": 64,
                "train_sequences": 2,
                "test_sequences": 1,
                "frames_per_sequence": 10,
            },
            "train": {"steps": 0, "epochs": 2, "batch_size": 8},
        },
        "quick": {  # small images, many walks: diversity of viewpoints buys more than pixels on two CPU cores
            "model": {"hidden": 256},
            "data": {
                "render_size": [86, 64],
                "max_resize": 64,
                "train_sequences": 384,
                "test_sequences": 16,
                "frames_per_sequence": 12,
            },
            "train": {"steps": 2080, "epochs": 16},  # 16 epochs of the 4,147 rendered frames it trains on
        },
        "full": {},
    }

    # -- configuration ---------------------------------------------------
    def default_config(self) -> dict[str, Any]:
        return {
            "model": {
                "backbone": "efficientnet_lite0",  # ImageNet features: on the foreign courtyard they more than halve both errors
                "pretrained": "imagenet",
                "hidden": 512,
                "dropout": 0.2,
                "loss": "beta",  # the learned weighting ends at 1/10 of this weight on position: 1.53 -> 0.98 m built-in
                "beta": 0.5,  # on positions normalised by the training set's spread, so it means the same at any scale
                "reprojection_weight": 0.0,  # > 0: add Kendall & Cipolla's geometric loss (needs the scene's 3D points)
                "sx_init": 0.0,
                "sq_init": -3.0,
                "layout_channels": 16,
            },
            "data": {
                "render_size": [341, 256],
                "hfov_deg": 60.0,  # the lens: renders the built-in walks; turns moved crops' labels (Cambridge's is ~60)
                "resize": 0,  # 0: the images' shorter side, capped at max_resize (256, the paper's)
                "crop": 0,  # 0: 7/8 of resize (the paper's 224 of 256)
                "max_resize": 256,
                "crop_shift": 1.0,  # how far a training crop may leave the centre, a fraction of its side
                "turn_crops": True,  # a moved training crop gets the label of the camera turned towards its centre
                "train_sequences": 384,
                "test_sequences": 32,
                "frames_per_sequence": 12,
                "color_jitter": 0.25,
                "test_crops": 5,  # windows averaged per test image: across a 16:9 frame a centre one sees half of it
            },
            "train": {
                "steps": 3900,  # optimizer steps, whatever the data: 30 epochs of the 4,147 rendered frames it trains on
                "epochs": 30,
                "batch_size": 32,
                "lr": 2e-3,
                "weight_decay": 1e-4,
                "backbone_lr_mult": 1.0,
                "grad_clip": 2.0,
                "warmup_epochs": 1,
            },  # without them a run can stall for epochs
        }

    def validate_config(self, config: dict[str, Any]) -> None:
        """``model.loss`` names a loss ``pose_loss`` knows, the geometric term's weight is not negative,
        ``data.hfov_deg`` is a lens's field of view, ``data.test_crops`` a count."""
        loss = config["model"]["loss"]
        if loss not in LOSSES:
            raise ConfigError(f"model.loss = {loss!r}: expected one of {', '.join(map(repr, LOSSES))}")
        hfov = config["data"]["hfov_deg"]
        if not isinstance(hfov, (int, float)) or not MIN_HFOV_DEG <= hfov <= MAX_HFOV_DEG:
            raise ConfigError(
                f"data.hfov_deg = {hfov!r}: expected the lens's horizontal field of view, {MIN_HFOV_DEG} to {MAX_HFOV_DEG} degrees"
            )
        weight = config["model"]["reprojection_weight"]
        if weight < 0:
            raise ConfigError(f"model.reprojection_weight = {weight!r}: expected 0 (off) or a positive weight")
        crops = config["data"]["test_crops"]  # the schema has already refused what is not an integer
        if crops < 1:
            raise ConfigError(f"data.test_crops = {crops!r}: expected how many windows to average per test image, 1 or more")

    # -- torch side --------------------------------------------------------
    def build_model(self, config: dict[str, Any]):
        from apptool_posenet.model import PoseNet

        m, data = config["model"], config["data"]
        model = PoseNet(
            m["backbone"],
            m.get("pretrained"),
            int(m["hidden"]),
            float(m["dropout"]),
            float(m["sx_init"]),
            float(m["sq_init"]),
            int(m.get("layout_channels", 0)),
            input_size(data, rendered_short_side(data))[1],  # the data's, once training has fixed it
        )
        model.loss_kind, model.beta, model.reprojection_weight = m["loss"], float(m["beta"]), float(m["reprojection_weight"])
        model.log_vars.requires_grad_(m["loss"] == "learned")  # unused by the β loss: DDP must not wait for its gradient
        return model

    def load_data(self, config: dict[str, Any], data_dir: Path | None) -> Splits:
        recorded = trained_folder(config)
        if data_dir is None and recorded is not None:  # a bundle trained on --data
            if not recorded.is_dir():
                raise DataError(
                    f"this model was trained on the Cambridge Landmarks folder {recorded}, which is not "
                    "there any more; pass --data DIR"
                )
            data_dir = recorded
        train, test, info = load_splits(config, data_dir)
        return Splits(train, test, info)

    def loss(self, model, batch):
        from apptool_posenet.model import pose_loss

        images, target, *points = batch  # the scene's points come with the batch when the geometric term is on
        xyz, quat, _, log_vars = model(images, with_log_vars=True)
        return pose_loss(
            xyz, quat, target, log_vars, model.loss_kind, model.beta, points[0] if points else None, model.reprojection_weight
        )

    def graphs(self, model, config: dict[str, Any]) -> list[Graph]:
        size = model.input_size
        rng = np.random.default_rng(0)
        examples = [{"image": rng.standard_normal((n, 3, size, size)).astype(np.float32)} for n in (1, 3)]
        axes = {name: {0: "batch"} for name in ("image", "xyz", "quat", "feat")}
        return [Graph("model", model.eval(), ("image",), ("xyz", "quat", "feat"), axes, examples)]

    # -- numpy side ----------------------------------------------------------
    def predict(self, runner, items: Sequence[Any], config: dict[str, Any]) -> list[dict[str, Any]]:
        images = []
        for index, item in enumerate(items):
            image = to_rgb(item, f"input {index}")
            h, w = image.shape[:2]
            if max(h, w) / min(h, w) > MAX_ASPECT:
                raise InputError(f"input {index}: image is {w}x{h}; expected a camera photo (aspect ratio under {MAX_ASPECT:g})")
            images.append(image)
        if not images:
            return []
        poses, _ = infer(runner, images, config)
        scene = config["scene"]
        results = []
        for pose in poses:
            flat, direction = to_map(scene, pose[:3]), heading(scene, pose[3:])
            results.append(
                {
                    "position_m": pose[:3].round(4).tolist(),
                    "quaternion_wxyz": pose[3:].round(6).tolist(),
                    "map_xy_m": flat.round(3).tolist(),
                    "map_heading_deg": round(float(np.degrees(np.arctan2(direction[0], direction[1]))), 2),
                }
            )
        return results

    def evaluate(self, runner, dataset, config: dict[str, Any], out_dir: Path | None = None) -> dict[str, Any]:
        truth = dataset.poses
        predicted, feats = infer(runner, [dataset.image(i) for i in range(len(dataset))], config)
        reference = dataset.reference
        _, ref_feats = infer(runner, [reference.image(i) for i in range(len(reference))], config)
        baseline = reference.poses[nearest_neighbours(feats, ref_feats)]
        metrics = pose_metrics(truth, predicted)
        nn = pose_metrics(truth, baseline)
        metrics.update(
            {
                "scene_extent_m": float(config["scene"]["extent_m"]),
                "scene_size_m": config["scene"]["size_m"],
                "nn_median_pos_err_m": nn["median_pos_err_m"],
                "nn_median_rot_err_deg": nn["median_rot_err_deg"],
                "nn_mean_pos_err_m": nn["mean_pos_err_m"],
                "nn_mean_rot_err_deg": nn["mean_rot_err_deg"],
            }
        )
        if out_dir is not None:
            walks = [n.split("/")[0] for n in dataset.names]
            trails = [(truth[[i for i, w in enumerate(walks) if w == name], :3], TRUE) for name in dict.fromkeys(walks)]
            picture = draw_map(config["scene"], [], 600, trails=trails, errors=(truth[:, :3], predicted[:, :3], PREDICTED))
            cv2.imwrite(str(Path(out_dir) / "test_map.png"), picture[:, :, ::-1])
        return metrics

    def sample_inputs(self, config: dict[str, Any], n: int, seed: int = 0) -> list[np.ndarray]:
        """Test images of the Cambridge folder a bundle was trained on, else frames of a fresh built-in walk."""
        recorded = trained_folder(config)
        if recorded is not None and (recorded / SPLIT_FILES["test"]).is_file():
            paths = read_pose_file(recorded, SPLIT_FILES["test"]).paths
            picks = np.random.default_rng(seed).choice(len(paths), size=n, replace=n > len(paths))
            return [read_image(paths[i]) for i in picks]
        size = tuple(int(v) for v in config["data"]["render_size"])
        walk = render_sequence("sample", int(config["seed"]), "sample", seed, max(n, 1), size, float(config["data"]["hfov_deg"]))
        return walk.images[:n]

    def render(self, item: Any, result: dict[str, Any], config: dict[str, Any]) -> np.ndarray | None:
        """The input beside a top-down map with the training trajectory and the predicted pose."""
        pose = np.array(result["position_m"] + result["quaternion_wxyz"])
        picture = draw_map(config["scene"], [(pose[:3], pose[3:], PREDICTED)], 400, float(config["data"]["hfov_deg"]))
        image = to_rgb(item)
        thumb = cv2.resize(image, (max(1, int(round(image.shape[1] * 400 / image.shape[0]))), 400), interpolation=cv2.INTER_AREA)
        return np.concatenate([thumb, picture], axis=1)

    def demo(self, ctx) -> None:
        from apptool_posenet.demo import build_demo

        build_demo(ctx)
