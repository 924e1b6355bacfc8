"""The gesture tab: draw with the mouse (timed points reach the model) or upload a .ts/.csv sequence.

The canvas is a ``gr.HTML`` whose ``js_on_load`` records pointer events as
[x, y, t_ms, stroke] and, when a stroke ends, writes them as JSON into a
hidden ``gr.Textbox`` (``#gesture-points``).  The Recognise button's ``js``
reads the canvas again right before the call, so the model always gets the
latest stroke.  The answer shows the offline class probabilities and, from
the streaming ``step`` graph, how each class's probability evolved frame by
frame along the gesture.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from apptool.errors import InputError
from apptool_gesture.drawing import draw_sequence, plot_probabilities
from apptool_gesture.features import input_spec, prepare, softmax
from apptool_gesture.settings import class_names
from apptool_gesture.streaming import stream, streaming_available
from apptool_gesture.stroke import stroke_to_sequence

PAD_ID = "gesture-pad"
POINTS_ID = "gesture-points"

CANVAS_HTML = f"""
<div id="{PAD_ID}" class="gesture-pad">
  <canvas width="400" height="400" aria-label="drawing pad"></canvas>
  <div class="pad-bar">
    <button type="button" class="pad-clear">Clear</button>
    <span class="pad-info">Draw a gesture (a cross takes two strokes). Pausing over 1.5 s starts a new one.</span>
  </div>
</div>
"""

CANVAS_CSS = """
.gesture-pad canvas { width: 100%; max-width: 400px; aspect-ratio: 1; border: 1px solid #999;
                      border-radius: 6px; background: #fff; touch-action: none; cursor: crosshair; }
.gesture-pad .pad-bar { display: flex; gap: 8px; align-items: center; margin-top: 4px; font-size: 0.85em; }
.gesture-pad .pad-clear { padding: 2px 10px; border: 1px solid #999; border-radius: 4px; }
"""

CANVAS_JS = f"""
const canvas = element.querySelector('canvas');
const pen = canvas.getContext('2d');
let points = [], stroke = -1, drawing = false, t0 = null, lastUp = 0;
function publish() {{
  const json = points.length ? JSON.stringify({{width: canvas.width, height: canvas.height, points: points}}) : '';
  canvas.dataset.points = json;
  const box = document.querySelector('#{POINTS_ID} textarea, #{POINTS_ID} input');
  if (box) {{ box.value = json; box.dispatchEvent(new Event('input', {{bubbles: true}})); }}
}}
function clear() {{
  points = []; stroke = -1; t0 = null;
  pen.clearRect(0, 0, canvas.width, canvas.height);
  publish();
}}
function record(e) {{
  const r = canvas.getBoundingClientRect();
  const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [];
  for (const ev of (events.length ? events : [e])) {{
    const x = (ev.clientX - r.left) * canvas.width / r.width, y = (ev.clientY - r.top) * canvas.height / r.height;
    const last = points[points.length - 1];
    points.push([x, y, ev.timeStamp - t0, stroke]);
    if (last && last[3] === stroke) {{
      pen.strokeStyle = '#1f5fbf'; pen.lineWidth = 3; pen.lineCap = 'round';
      pen.beginPath(); pen.moveTo(last[0], last[1]); pen.lineTo(x, y); pen.stroke();
    }}
  }}
}}
canvas.addEventListener('pointerdown', (e) => {{
  if (points.length && e.timeStamp - lastUp > 1500) clear();
  if (t0 === null) t0 = e.timeStamp;
  drawing = true; stroke += 1;
  canvas.setPointerCapture(e.pointerId);
  record(e);
}});
canvas.addEventListener('pointermove', (e) => {{ if (drawing) record(e); }});
for (const name of ['pointerup', 'pointercancel']) {{
  canvas.addEventListener(name, (e) => {{
    if (!drawing) return;
    drawing = false; lastUp = e.timeStamp; publish();
  }});
}}
element.querySelector('.pad-clear').addEventListener('click', clear);
"""

#: Before the Recognise call: take the points straight from the canvas (the hidden box may lag a frame).
READ_CANVAS_JS = f"(points) => document.querySelector('#{PAD_ID} canvas')?.dataset.points || points"


def analyse(ctx, seq: np.ndarray, path: np.ndarray | None, source: str) -> tuple[dict, np.ndarray | None, np.ndarray, str]:
    """Offline class probabilities, the streaming probability curves, a picture of the input and a note."""
    config = ctx.config
    names = class_names(config)
    result = ctx.predictor.predict([seq])[0]
    picture = draw_sequence(path if path is not None else seq, f"{result['label']} {result['confidence']:.0%}")
    note = f"**{result['label']}** ({result['confidence']:.0%}) from {source}: {result['frames']} frames."
    if not streaming_available(config):
        return (
            result["probabilities"],
            None,
            picture,
            note + (" Streaming is unavailable: this model is bidirectional, so it needs the whole sequence."),
        )
    spec = input_spec(config)
    x = prepare(seq, spec)[None]
    per_frame = softmax(stream(ctx.predictor.runner, x, np.array([x.shape[1]]), config)[0][0])
    streamed = names[int(per_frame[-1].argmax())]
    rate = float(spec.get("fps") or 0) / int(spec.get("pool", 1))  # one streaming step per pooled block of frames
    plot = plot_probabilities(per_frame, names, rate, f"streaming: {streamed} at the last frame · offline: {result['label']}")
    top = per_frame.argmax(1) == result["index"]
    if top[-1]:
        since = len(top) - int(np.argmin(top[::-1])) if not top.all() else 0
        note += f" Streaming ranked it first from step {since + 1} of {len(top)} on."
    return result["probabilities"], plot, picture, note


def build_demo(ctx) -> None:
    import gradio as gr

    config = ctx.config
    drawable = config.get("dataset", {}).get("format") == "generator"
    gr.Markdown(
        "Draw a gesture — "
        + ", ".join(n.replace("_", " ") for n in class_names(config))
        + " — or upload a UCR/UEA `.ts` or a `.csv` sequence. The stroke's timed points (x, y, t) go to the "
        "LSTM, resampled at the model's frame rate; the curves show each class's probability as the gesture "
        "unfolds, frame by frame, through the streaming graph."
    )
    with gr.Row():
        with gr.Column():
            gr.HTML(value="", html_template=CANVAS_HTML, css_template=CANVAS_CSS, js_on_load=CANVAS_JS, visible=drawable)
            points = gr.Textbox(label="stroke points (JSON)", elem_id=POINTS_ID, visible="hidden")
            draw_button = gr.Button("Recognise drawing", variant="primary", visible=drawable)
            upload = gr.File(label="Sequence file (.ts or .csv)", file_types=[".ts", ".csv"], type="filepath")
            case = gr.Number(label="Case number in a .ts file", value=1, precision=0, minimum=1)
            file_button = gr.Button("Recognise file")
        with gr.Column():
            label = gr.Label(label="class probabilities (offline)", num_top_classes=5)
            curves = gr.Image(label="streaming: probability over time", type="numpy")
            picture = gr.Image(label="input sequence", type="numpy", height=240)
            note = gr.Markdown()

    def from_drawing(text: str):
        seq, path = stroke_to_sequence(text, config)
        return analyse(ctx, seq, path, "the drawing")

    def from_file(file: str | None, number: float | None):
        if not file:
            raise InputError("upload a .ts or .csv sequence first")
        items = list(ctx.task.read_input(Path(file)))
        index = int(number or 1)
        if not 1 <= index <= len(items):
            raise InputError(f"{Path(file).name} has {len(items)} case(s); pick a case number from 1 to {len(items)}")
        name, seq = items[index - 1]
        return analyse(ctx, seq, None, name)

    outputs = [label, curves, picture, note]
    draw_button.click(
        ctx.guard(from_drawing),
        inputs=[points],
        outputs=outputs,
        js=READ_CANVAS_JS,
        concurrency_id=ctx.concurrency_id,
        api_name=ctx.api_name("predict"),
    )
    file_button.click(
        ctx.guard(from_file),
        inputs=[upload, case],
        outputs=outputs,
        concurrency_id=ctx.concurrency_id,
        api_name=ctx.api_name("predict_file"),
    )
    gr.Examples(examples=[[str(p)] for p in write_examples(ctx, config)], inputs=[upload], label="example sequences")


def write_examples(ctx, config: dict[str, Any]) -> list[Path]:
    """A few generated sequences as CSV files in the demo's work folder."""
    task, folder = ctx.task, Path(ctx.work_dir) / "gesture-examples"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, seq in enumerate(task.sample_inputs(config, 4, seed=11)):
        header = ["x", "y"] if seq.shape[1] == 2 else [f"ch{d + 1}" for d in range(seq.shape[1])]
        path = folder / f"example_{i + 1}.csv"
        np.savetxt(path, seq, delimiter=",", header=",".join(header), comments="", fmt="%.5f")
        paths.append(path)
    return paths
