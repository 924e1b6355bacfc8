"""Closed-loop driving on a track the model never saw (numpy/OpenCV only).

Each step renders the camera view with the same renderer as the training
data, asks the policy for a steering command, and moves the kinematic car.
When the car is more than ``max_offset_m`` from the centre a "safety driver"
intervenes: the car is put back on the centreline, heading along the road,
and the intervention is counted.  Autonomy follows Bojarski et al. 2016.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from apptool_steering import metrics, road, vehicle
from apptool_steering.data import MARGIN, network_rows, preprocess, split_seed

#: A policy maps (camera frame, expert command) to a steering command; a model ignores the expert.
Policy = Callable[[np.ndarray, float], float]


@dataclass
class Drive:
    """What happened on one drive."""

    seconds: float
    interventions: int
    distance_m: float
    offsets: list[float] = field(default_factory=list)
    commands: list[float] = field(default_factory=list)
    expert: list[float] = field(default_factory=list)
    intervened_at: list[int] = field(default_factory=list)  # step indices
    frames: list[np.ndarray] = field(default_factory=list)

    @property
    def autonomy(self) -> float:
        return metrics.autonomy(self.interventions, self.seconds)


def sim_track(config: dict[str, Any], seconds: float) -> road.Track:
    """The held-out drive track: its own seed stream, long enough for the drive, a new scene every ``scene_length_m``."""
    sim = config["data"]["sim"]
    length = float(sim["speed"]) * seconds + road.VIEW_AHEAD + 3 * MARGIN
    return road.make_track(split_seed(config, "sim"), length, float(config["data"]["min_radius"]), float(sim["scene_length_m"]))


def lighting_at(s: float, phase: float) -> road.Lighting:
    """Light that drifts along the road as clouds pass: slow brightness and glare changes."""
    return road.Lighting(
        brightness=1.0 + 0.3 * math.sin(2 * math.pi * s / 230.0 + phase),
        tint=(1.0, 1.0, 1.0),
        glare=0.2 * math.sin(2 * math.pi * s / 410.0 + 2 * phase),
        noise=2.0,
    )


def drive(
    policy: Policy,
    config: dict[str, Any],
    seconds: float | None = None,
    on_frame: Callable[[np.ndarray, dict], np.ndarray] | None = None,
) -> Drive:
    """Drive ``seconds`` of simulated time under ``policy``; ``on_frame`` (if given) returns video frames."""
    sim = config["data"]["sim"]
    seconds = float(seconds if seconds is not None else sim["seconds"])
    dt, speed = float(sim["dt"]), float(sim["speed"])
    track = sim_track(config, seconds)
    rng = np.random.default_rng(split_seed(config, "sim", 1))  # disturbances: the same whatever is rendered
    sensor = np.random.default_rng(split_seed(config, "sim", 2))  # image noise
    phase = float(rng.uniform(0, 2 * math.pi))
    hint = int(MARGIN / road.DS)
    pose = track.pose(hint * road.DS)
    wheel = 0.0  # front-wheel angle, radians, positive left
    camera = road.Camera()
    rows = None if on_frame is not None else network_rows(config["input"], camera.height_px)
    result = Drive(seconds=0.0, interventions=0, distance_m=0.0)
    steps = int(round(seconds / dt))
    for step in range(steps):
        light = lighting_at(hint * road.DS, phase)
        image = road.render(track, vehicle.camera_pose(pose), vehicle.camera_hint(hint), camera, light, sensor, rows)
        expert = vehicle.expert_command(track, pose, hint)
        command = float(np.clip(policy(image, expert), -1.0, 1.0))
        target = -math.radians(vehicle.MAX_STEER_DEG) * command
        wheel += (target - wheel) * min(1.0, dt / float(sim["steer_lag_s"]))
        pose = vehicle.bicycle_step(pose, wheel, speed, dt)
        pose = (pose[0], pose[1], pose[2] + math.radians(float(sim["yaw_noise_deg"])) * rng.standard_normal())
        hint, offset = track.locate(pose[0], pose[1], hint)
        result.offsets.append(offset)
        result.commands.append(command)
        result.expert.append(expert)
        if on_frame is not None:
            state = {
                "step": step,
                "time": (step + 1) * dt,
                "offset": offset,
                "command": command,
                "expert": expert,
                "interventions": result.interventions,
            }
            result.frames.append(on_frame(image, state))
        if abs(offset) > float(sim["max_offset_m"]):
            result.interventions += 1
            result.intervened_at.append(step)
            pose, wheel = track.pose(hint * road.DS), 0.0
    result.seconds = steps * dt
    result.distance_m = hint * road.DS - MARGIN
    return result


def model_policy(runner, config: dict[str, Any]) -> Callable[[np.ndarray, float], float]:
    """A policy that steers by the model alone (the expert's command is ignored); ``runner`` runs the bundle."""
    spec = config["input"]

    def policy(image: np.ndarray, expert: float) -> float:
        return float(runner.run("model", {"image": preprocess(image, spec)[None]})["steering"].reshape(-1)[0])

    return policy
