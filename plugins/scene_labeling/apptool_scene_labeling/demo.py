"""The scene-labeling demo tab: an image or a video in, the colour overlay with its legend and class areas out."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from apptool.errors import InputError
from apptool.images import iter_video_frames, to_rgb, video_fps, write_video
from apptool_scene_labeling.scenes import generate_scene

MAX_VIDEO_FRAMES = 48  # frames labelled per video: enough to watch, little enough for a CPU
VIDEO_RATE = 8.0  # frames per second sampled from a video


def _example_files(ctx) -> tuple[list[str], str]:
    """Example images from the generator and a short panning video, written into the demo's work dir."""
    work = Path(ctx.work_dir) / "scene_labeling"
    work.mkdir(parents=True, exist_ok=True)
    images = []
    for k, image in enumerate(ctx.task.sample_inputs(ctx.config, 4, seed=7)):
        path = work / f"scene-{k}.png"
        cv2.imwrite(str(path), image[:, :, ::-1])
        images.append(str(path))
    height = int(ctx.config["data"]["height"])
    wide, _ = generate_scene(np.random.default_rng([7, 3]), height, height * 3)
    frames = [wide[:, x : x + height] for x in range(0, 2 * height, max(height // 16, 1))]
    video = write_video(work / "pan.mp4", frames, fps=8.0)
    return images, str(video)


def build_demo(ctx) -> None:
    import gradio as gr

    task, classes = ctx.task, ctx.config.get("classes")

    def label_image(image):
        if image is None:
            raise InputError("upload an image first")
        image = to_rgb(image, "uploaded image")
        result = ctx.predictor.predict([image])[0]
        return task.render(image, result, ctx.config), {k: v for k, v in result["area"].items() if v > 0}

    def label_video(path):
        if not path:
            raise InputError("upload a video first")
        every = max(1, int(round(video_fps(path) / VIDEO_RATE)))
        frames, totals = [], np.zeros(len(classes))
        for _, frame in iter_video_frames(path, every=every, limit=MAX_VIDEO_FRAMES):
            result = ctx.predictor.predict([frame])[0]
            frames.append(task.render(frame, result, ctx.config))
            totals += [result["area"][name] for name in classes]
        if not frames:
            raise InputError(f"{Path(path).name}: no frames could be read")
        out = write_video(Path(ctx.work_dir) / f"labelled-{Path(path).stem}.mp4", frames, fps=VIDEO_RATE)
        shares = totals / len(frames)
        return str(out), {name: float(v) for name, v in zip(classes, shares) if v > 0}

    images, video = _example_files(ctx)
    gr.Markdown(
        "Per-pixel labels of outdoor scenes: " + ", ".join(classes) + ". "
        "The overlay's legend lists the classes found and the share of the image each covers."
    )
    with gr.Tab("Image"):
        with gr.Row():
            with gr.Column():
                image_in = gr.Image(type="numpy", label="Outdoor image")
                image_button = gr.Button("Label pixels", variant="primary")
            with gr.Column():
                image_out = gr.Image(type="numpy", label="Labels (overlay and legend)")
                image_areas = gr.Label(label="Area per class", num_top_classes=len(classes))
        gr.Examples([[p] for p in images], inputs=[image_in])
        image_button.click(
            ctx.guard(label_image),
            inputs=[image_in],
            outputs=[image_out, image_areas],
            concurrency_id=ctx.concurrency_id,
            api_name=ctx.api_name("predict"),
        )
    with gr.Tab("Video"):
        with gr.Row():
            with gr.Column():
                video_in = gr.Video(label="Outdoor video")
                video_button = gr.Button("Label frames", variant="primary")
            with gr.Column():
                video_out = gr.Video(label=f"Labelled frames (up to {MAX_VIDEO_FRAMES}, {VIDEO_RATE:g} per second)")
                video_areas = gr.Label(label="Mean area per class", num_top_classes=len(classes))
        gr.Examples([[video]], inputs=[video_in])
        video_button.click(
            ctx.guard(label_video),
            inputs=[video_in],
            outputs=[video_out, video_areas],
            concurrency_id=ctx.concurrency_id,
            api_name=ctx.api_name("video"),
        )
