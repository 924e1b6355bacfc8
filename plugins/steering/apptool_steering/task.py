"""Steering regression after Bojarski et al. 2016 (PilotNet / DAVE-2).

One road image in, one steering command out (Udacity convention: [-1, 1],
positive right, +-25 degrees of wheel angle).  Measured open loop by RMSE on a
held-out split and closed loop by autonomy on a track the model never saw.
This module imports no torch: the torch side is imported inside the methods.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from apptool.errors import DataError
from apptool.images import read_image, to_rgb
from apptool.task import Graph, Runner, Splits, Task, run_in_batches
from apptool_steering import data, metrics, sim
from apptool_steering.data import preprocess, preprocess_batch
from apptool_steering.overlay import draw_steering
from apptool_steering.plots import write_plots
from apptool_steering.sim import model_policy
from apptool_steering.vehicle import MAX_STEER_DEG

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from apptool.demo_context import DemoContext

EVAL_BATCH = 64


class SteeringTask(Task):
    name = "steering"
    title = "Steering (PilotNet)"
    description = (
        "End-to-end steering after Bojarski et al. 2016: PilotNet (or a timm backbone) maps a road image to "
        "the steering command, trained on a procedural road renderer or a Udacity driving log, measured by "
        "RMSE and by closed-loop autonomy on an unseen track."
    )
    metrics = ("rmse", "rmse_zero_baseline", "autonomy", "interventions", "sim_seconds")
    primary_metric = "rmse"
    greater_is_better = False
    presets = {
        "tiny": {
            "data": {
                "n_train": 128,
                "n_test": 32,
                "tracks_train": 8,
                "tracks_test": 4,
                "stats_samples": 16,
                "sim": {"seconds": 10.0},
            },
            "train": {"steps": 0, "epochs": 1, "batch_size": 32},
        },
        "quick": {},
        "full": {
            "data": {"n_train": 30000, "n_test": 2000, "tracks_train": 300, "tracks_test": 60, "sim": {"seconds": 900.0}},
            "train": {"steps": 8440, "epochs": 20},  # 20 epochs of the 27,000 generated frames it trains on
        },
    }

    def default_config(self) -> dict[str, Any]:
        return {
            "model": {"backbone": "pilotnet", "pretrained": None, "dropout": 0.1, "input_size": [66, 200]},
            "data": {
                # procedural generator
                "n_train": 4000,
                "n_test": 600,
                "tracks_train": 40,
                "tracks_test": 20,
                "track_length": 600.0,
                "min_radius": 45.0,
                "offset_m": 1.3,
                "yaw_deg": 6.0,
                "camera_jitter": 1.0,
                # network input: rows cropped off the top (sky) and bottom (hood), as fractions of the height
                "crop_top": 0.375,
                "crop_bottom": 0.15625,
                "stats_samples": 64,
                # Udacity logs: side cameras and shift/rotate views with recovery labels
                "side_cameras": True,
                "side_correction": 0.2,
                "augment": {
                    "flip": True,
                    "shift_m": 0.6,
                    "yaw_deg": 3.0,
                    "horizon": 0.35,
                    "hfov_deg": 60.0,
                    "camera_height": 1.4,
                },
                # closed-loop evaluation
                "sim": {
                    "seconds": 300.0,
                    "dt": 0.1,
                    "speed": 10.0,
                    "max_offset_m": 1.0,
                    "steer_lag_s": 0.2,
                    "yaw_noise_deg": 0.3,
                    "scene_length_m": 400.0,
                },
            },  # fmt: skip
            "train": {
                "steps": 342,  # optimizer steps, whatever the data: 6 epochs of the generator's 3,600 training frames
                "epochs": 6,
                "batch_size": 64,
                "lr": 1e-3,
                "weight_decay": 1e-4,
                "schedule": "cosine",
                "val_fraction": 0.1,
            },
        }

    # -- torch side ----------------------------------------------------------------
    def build_model(self, config: dict[str, Any]) -> "torch.nn.Module":
        from apptool_steering.model import build

        return build(config["model"])

    def load_data(self, config: dict[str, Any], data_dir: Path | None) -> Splits:
        if data_dir is None:
            return self._generated(config)
        return self._udacity(config, Path(data_dir))

    def _generated(self, config: dict[str, Any]) -> Splits:

        cfg = config["data"]
        spec = config.get("input") or data.input_spec(config)
        train = data.GeneratedFrames(config, "train", cfg["n_train"], spec)
        if "input" not in config and spec["color"] == "yuv":
            picks = np.linspace(0, len(train) - 1, min(int(cfg["stats_samples"]), len(train))).astype(int)
            spec = data.input_spec(config, *data.pixel_statistics([train.network_pixels(i) for i in picks]))
            train.spec = spec
        test = data.GeneratedFrames(config, "test", cfg["n_test"], spec)
        info = {
            "input": spec,
            "source": "procedural road renderer",
            "train_tracks": cfg["tracks_train"],
            "test_tracks": cfg["tracks_test"],
        }
        return Splits(train, test, info)

    def _udacity(self, config: dict[str, Any], root: Path) -> Splits:

        for split in ("train", "test"):
            if not (root / split).is_dir():
                raise DataError(
                    f"{root}: missing {split}/; the Udacity layout is DIR/train/driving_log.csv and DIR/test/driving_log.csv"
                )
        train_rows = data.read_driving_log(root / "train", root)
        test_rows = data.read_driving_log(root / "test", root)
        spec = config.get("input")
        if spec is None:
            spec = data.input_spec(config)
            if spec["color"] == "yuv":
                picks = np.linspace(0, len(train_rows) - 1, min(int(config["data"]["stats_samples"]), len(train_rows))).astype(
                    int
                )
                spec = data.input_spec(
                    config,
                    *data.pixel_statistics([data.to_network_pixels(read_image(train_rows[i].center), spec) for i in picks]),
                )
        seed = int(config.get("seed", 0))
        train = data.UdacityFrames(train_rows, spec, config["data"], train=True, seed=seed)
        test = data.UdacityFrames(test_rows, spec, config["data"], train=False, seed=seed)
        info = {
            "input": spec,
            "source": f"Udacity driving logs in {root}",
            "train_rows": len(train_rows),
            "test_rows": len(test_rows),
        }
        return Splits(train, test, info)

    def loss(self, model: "torch.nn.Module", batch: Any) -> "torch.Tensor":
        import torch.nn.functional as F

        images, steering = batch
        return F.mse_loss(model(images).squeeze(1), steering.float())

    def graphs(self, model: "torch.nn.Module", config: dict[str, Any]) -> list[Graph]:

        frames = [preprocess(image, config["input"]) for image in self.sample_inputs(config, 4, seed=11)]
        examples = [{"image": np.stack(frames[:1])}, {"image": np.stack(frames[1:4])}]
        return [
            Graph("model", model.eval(), ("image",), ("steering",), {"image": {0: "batch"}, "steering": {0: "batch"}}, examples)
        ]

    # -- numpy side ----------------------------------------------------------------
    def predict(self, runner: Runner, items: Sequence[Any], config: dict[str, Any]) -> list[dict[str, Any]]:

        if not items:
            return []
        batch = preprocess_batch([to_rgb(item, f"item {i}") for i, item in enumerate(items)], config["input"])
        steering = runner.run("model", {"image": batch})["steering"].reshape(-1)
        return [
            {
                "steering": float(v),
                "steering_deg": float(v * MAX_STEER_DEG),
                "direction": "right" if v > 0.01 else "left" if v < -0.01 else "straight",
            }
            for v in np.clip(steering, -1, 1)
        ]

    def evaluate(self, runner: Runner, dataset: Any, config: dict[str, Any], out_dir: Path | None = None) -> dict[str, Any]:

        targets: list[float] = []

        def feeds(indices: Sequence[int]) -> dict[str, np.ndarray]:
            samples = [dataset[i] for i in indices]  # each frame is read once: its label is kept on the way
            targets.extend(y for _, y in samples)
            return {"image": np.stack([x for x, _ in samples])}

        predicted = run_in_batches(runner, "model", range(len(dataset)), feeds, EVAL_BATCH)["steering"].reshape(-1)
        target = np.array(targets, np.float32)
        drive = sim.drive(model_policy(runner, config), config)
        result = {
            "rmse": metrics.rmse(predicted, target),
            "rmse_zero_baseline": metrics.rmse(np.zeros_like(target), target),
            "autonomy": drive.autonomy,
            "interventions": drive.interventions,
            "sim_seconds": drive.seconds,
            "sim_distance_m": round(drive.distance_m, 1),
            "sim_mean_abs_offset_m": float(np.mean(np.abs(drive.offsets))),
            "sim_rmse_vs_expert": metrics.rmse(drive.commands, drive.expert),
        }
        if out_dir is not None:
            write_plots(Path(out_dir), predicted, target, drive)
        return result

    def sample_inputs(self, config: dict[str, Any], n: int, seed: int = 0) -> list[Any]:

        frames = []
        for i in range(n):
            rng = np.random.default_rng(data.split_seed(config, "samples", seed, i))
            track = data.cached_track(
                tuple(data.split_seed(config, "samples", seed, i)), 400.0, float(config["data"]["min_radius"])
            )
            frames.append(data.random_frame(track, rng, config["data"])[0])
        return frames

    def render(self, item: Any, result: dict[str, Any], config: dict[str, Any]) -> np.ndarray | None:

        return draw_steering(to_rgb(item), float(result["steering"]))

    def demo(self, ctx: "DemoContext") -> None:
        from apptool_steering.demo import build_demo

        build_demo(ctx)
