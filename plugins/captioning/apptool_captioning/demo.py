"""The captioning tab: upload an image, read the best caption and every beam with its score."""

from __future__ import annotations

import cv2

from apptool.errors import InputError
from apptool.images import to_rgb


def build_demo(ctx) -> None:
    """Components inside the hub's tab; the model runs through ``ctx.predictor`` (ONNX Runtime)."""
    import gradio as gr

    task = ctx.task
    shown = [
        cv2.resize(image, (256, 256), interpolation=cv2.INTER_NEAREST) for image in task.sample_inputs(ctx.config, 4, seed=7)
    ]
    examples = ctx.example_files(shown)
    gr.Markdown(
        "Show and Tell: a convnet encodes the image, an LSTM writes the sentence. Beam search keeps the "
        f"{ctx.config['decode']['beam_size']} best partial captions at every word; the score is the caption's "
        "log-probability (length-normalised as configured)."
    )
    with gr.Row():
        image = gr.Image(type="numpy", label="image")
        with gr.Column():
            caption = gr.Textbox(label="best caption", interactive=False)
            beams = gr.Dataframe(headers=["caption", "score", "log-probability"], label="beams, best first", interactive=False)
    run = gr.Button("Describe", variant="primary")

    def describe(picture):
        if picture is None:
            raise InputError("no image: upload one or pick an example")
        result = ctx.predictor.predict([to_rgb(picture, "uploaded image")])[0]
        rows = [[b["caption"], round(b["score"], 4), round(b["logprob"], 4)] for b in result["beams"]]
        return result["caption"], rows

    run.click(ctx.guard(describe), image, [caption, beams], concurrency_id=ctx.concurrency_id, api_name=ctx.api_name())
    gr.Examples(examples, image)
