"""The image-classification tab: upload a photo, read the top five classes with their probabilities."""

from __future__ import annotations

from functools import partial

import numpy as np

from apptool.errors import InputError
from apptool.images import to_rgb


def classify(ctx, image: np.ndarray | None) -> dict[str, float]:
    if image is None:
        raise InputError("upload a photo first")
    result = ctx.predictor.predict([to_rgb(image, "uploaded image")])[0]
    return {entry["label"]: entry["probability"] for entry in result["top5"]}


def build_demo(ctx) -> None:
    import gradio as gr

    task, config = ctx.task, ctx.config
    examples = [[path] for path in ctx.example_files(task.sample_inputs(config, 4, seed=7))]
    model, classes = config["model"], len(config["labels"])
    gr.Markdown(
        f"`{model['backbone']}` classifier over {classes:,} classes ({config.get('source', '')}). "
        "Upload a photo to see the five most probable classes."
    )
    with gr.Row():
        with gr.Column():
            image_in = gr.Image(type="numpy", label="Photo")
            run = gr.Button("Classify", variant="primary")
            gr.Examples(examples=examples, inputs=image_in)
        with gr.Column():
            top = gr.Label(num_top_classes=5, label="Top-5")
    run.click(
        ctx.guard(partial(classify, ctx)),
        inputs=image_in,
        outputs=top,
        concurrency_id=ctx.concurrency_id,
        api_name=ctx.api_name("predict"),
    )
