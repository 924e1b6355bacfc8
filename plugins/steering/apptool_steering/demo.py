"""The steering tab: predict on an uploaded road image, and watch the model drive an unseen track."""

from __future__ import annotations

import uuid
from functools import partial

import cv2
import numpy as np

from apptool.errors import InputError
from apptool.images import to_rgb, write_video
from apptool_steering import overlay, sim

MAX_DRIVE_S = 60.0


def predict_image(ctx, image: np.ndarray | None):
    """The uploaded frame with the predicted steering drawn on it, and the prediction."""
    if image is None:
        raise InputError("upload a road image (a forward camera view) first")
    rgb = to_rgb(image, "uploaded image")
    result = ctx.predictor.predict([rgb])[0]
    return ctx.task.render(rgb, result, ctx.config), result


def drive_video(ctx, seconds: float):
    """Drive the held-out track under the model's steering; the video and the autonomy figure."""
    try:
        seconds = float(seconds)
    except (TypeError, ValueError):
        raise InputError(f"drive length must be a number of seconds, got {seconds!r}") from None
    if not 1.0 <= seconds <= MAX_DRIVE_S:
        raise InputError(f"drive length must be between 1 and {MAX_DRIVE_S:.0f} s, got {seconds:g}")
    config = ctx.config
    drive = sim.drive(
        sim.model_policy(ctx.predictor.runner, config), config, seconds, on_frame=partial(overlay.drive_frame, scale=2)
    )
    frames = [cv2.resize(f, (f.shape[1] * 3 // 4, f.shape[0] * 3 // 4), interpolation=cv2.INTER_AREA) for f in drive.frames]
    path = write_video(ctx.work_dir / f"drive-{uuid.uuid4().hex[:8]}.mp4", frames, fps=1.0 / float(config["data"]["sim"]["dt"]))
    summary = (
        f"**Autonomy {drive.autonomy:.1f}%**: {drive.interventions} intervention(s) in {drive.seconds:.0f} s "
        f"({drive.distance_m:.0f} m driven at {config['data']['sim']['speed']:g} m/s); an intervention is "
        f"counted when the car is more than {config['data']['sim']['max_offset_m']:g} m off centre, and costs 6 s "
        f"(Bojarski et al. 2016). Mean distance from the centre: {np.mean(np.abs(drive.offsets)):.2f} m."
    )
    return str(path), summary


def build_demo(ctx) -> None:
    import gradio as gr

    task, config = ctx.task, ctx.config
    examples = [[path] for path in ctx.example_files(task.sample_inputs(config, 4, seed=7))]

    gr.Markdown(
        "PilotNet (Bojarski et al. 2016) predicts the steering command from one forward camera frame. "
        "Upload a road image: the green band is the path the car would take, the wheel shows the command."
    )
    with gr.Row():
        with gr.Column():
            image_in = gr.Image(type="numpy", label="Road image")
            predict = gr.Button("Predict steering", variant="primary")
            gr.Examples(examples=examples, inputs=image_in)
        with gr.Column():
            image_out = gr.Image(type="numpy", label="Predicted steering")
            result = gr.JSON(label="Prediction")
    predict.click(
        ctx.guard(partial(predict_image, ctx)),
        inputs=image_in,
        outputs=[image_out, result],
        concurrency_id=ctx.concurrency_id,
        api_name=ctx.api_name("predict"),
    )

    gr.Markdown("### Closed loop: the model drives a track it never saw")
    with gr.Row():
        seconds = gr.Slider(5, MAX_DRIVE_S, value=20, step=5, label="Simulated seconds")
        drive = gr.Button("Drive", variant="primary")
    video = gr.Video(label="Drive (camera view, predicted path, offset from centre)")
    summary = gr.Markdown()
    drive.click(
        ctx.guard(partial(drive_video, ctx)),
        inputs=seconds,
        outputs=[video, summary],
        concurrency_id=ctx.concurrency_id,
        api_name=ctx.api_name("simulate"),
    )
