"""The PoseNet demo tab: upload a photo, see where the network puts the camera.

The predicted pose is drawn on a top-down map with the training trajectory;
for the built-in scene, the view is re-rendered from the predicted pose and
shown beside the input, so a wrong pose is visible at a glance.
"""

from __future__ import annotations

import cv2
import numpy as np

from apptool.images import to_rgb
from apptool_posenet.geometry import quat_to_rot
from apptool_posenet.mapview import draw_map
from apptool_posenet.scene import Camera, render


def rerender(config: dict, pose: np.ndarray, height: int = 256) -> np.ndarray:
    """The built-in scene seen from ``pose`` (x, y, z, qw, qx, qy, qz): the training camera's view, ``height`` pixels high."""
    width, train_height = (int(v) for v in config["data"]["render_size"])
    camera = Camera(int(round(width * height / train_height)), height, float(config["data"]["hfov_deg"]))
    return render(camera, quat_to_rot(pose[3:]), pose[:3])


def side_by_side(left: np.ndarray, right: np.ndarray, height: int = 256) -> np.ndarray:
    """Two RGB images at the same height with a white gap."""

    def fit(image):
        return cv2.resize(
            image, (max(1, int(round(image.shape[1] * height / image.shape[0]))), height), interpolation=cv2.INTER_AREA
        )

    gap = np.full((height, 8, 3), 255, np.uint8)
    return np.concatenate([fit(left), gap, fit(right)], axis=1)


def build_demo(ctx) -> None:
    import gradio as gr

    task, config = ctx.task, ctx.config
    scene = config["scene"]
    builtin = scene["source"] == "builtin"
    examples = []
    for index, image in enumerate(task.sample_inputs(config, 4, seed=11)):
        path = ctx.work_dir / f"posenet-example-{index}.png"
        cv2.imwrite(str(path), image[:, :, ::-1])
        examples.append(str(path))
    gr.Markdown(
        f"Camera relocalization: the network regresses where the photo was taken (position and orientation). "
        f"Scene: {scene['size_m'][0]:.0f} m x {scene['size_m'][1]:.0f} m of camera positions "
        f"({scene['extent_m']:.0f} m across); grey dots are the training walks, red is the prediction."
        + (" Right: the built-in scene re-rendered from the predicted pose." if builtin else "")
    )
    with gr.Row():
        photo = gr.Image(type="numpy", label="photo of the scene")
        where = gr.Image(type="numpy", label="predicted pose on the map")
    compare = gr.Image(type="numpy", label="input | view from the predicted pose", visible=builtin)
    pose = gr.JSON(label="pose")
    run = gr.Button("Locate", variant="primary")

    def locate(picture):
        if picture is None:
            raise gr.Error("Upload a photo of the scene first.")
        image = to_rgb(picture, "uploaded image")
        predictor = ctx.predictor  # the model the tab runs now (the hub may have replaced the one it was built on)
        result, served = predictor.predict([image])[0], predictor.config
        estimate = np.array(result["position_m"] + result["quaternion_wxyz"])
        hfov = float(served["data"]["hfov_deg"])
        drawn = draw_map(served["scene"], [(estimate[:3], estimate[3:], (220, 40, 40))], 420, hfov)
        view = side_by_side(image, rerender(served, estimate)) if builtin else None
        return drawn, view, result

    run.click(
        ctx.guard(locate), photo, [where, compare, pose], concurrency_id=ctx.concurrency_id, api_name=ctx.api_name("predict")
    )
    gr.Examples(examples, photo)
