"""The demo tab: search the bundle's database by a query image, and look at what the first RBM learned."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from safetensors.numpy import load_file

from apptool.bundle import WEIGHTS
from apptool.errors import InputError
from apptool.images import to_rgb
from apptool_dbn_hashing.data import display_image
from apptool_dbn_hashing.index import INDEX_FILE, HammingIndex

TILE = 40


def code_picture(image: np.ndarray, bits: str, size: int = 128) -> np.ndarray:
    """The image enlarged, its code drawn under it as a strip of white (1) and black (0) cells."""
    picture = display_image(image, size)
    cols = min(len(bits), 16)
    rows = -(-len(bits) // cols)
    cell = size // cols
    strip = np.full((rows * cell + 4, size, 3), 128, np.uint8)
    for i, bit in enumerate(bits):
        r, c = divmod(i, cols)
        strip[2 + r * cell : 2 + (r + 1) * cell - 1, c * cell : (c + 1) * cell - 1] = 255 if bit == "1" else 0
    return np.concatenate([picture, strip])


def filter_mosaic(weights: np.ndarray, shape: tuple[int, int, int], count: int = 64) -> np.ndarray:
    """The first ``count`` hidden units' weights as images (grey = 0, each scaled to its own largest weight)."""
    channels, height, width = shape
    tiles = []
    for row in weights[:count]:
        w = row.reshape(channels, height, width).transpose(1, 2, 0)
        w = 0.5 + 0.5 * w / max(float(np.abs(w).max()), 1e-8)
        tile = cv2.resize(np.uint8(np.clip(w, 0, 1) * 255), (TILE, TILE), interpolation=cv2.INTER_NEAREST)
        tiles.append(np.pad(to_rgb(tile), ((1, 1), (1, 1), (0, 0)), constant_values=255))
    cols = 8
    while len(tiles) % cols:
        tiles.append(np.full_like(tiles[0], 255))
    return np.concatenate([np.concatenate(tiles[i : i + cols], 1) for i in range(0, len(tiles), cols)], 0)


def first_layer_view(bundle_dir: Path, config: dict[str, Any]) -> tuple[np.ndarray | None, str]:
    """The mosaic of the first RBM's weights from the bundle (no torch), and a caption."""
    if config["model"]["features"] != "pixels":
        return None, "The first RBM sees backbone features, not pixels, so its weights are not images."
    tensors = load_file(str(Path(bundle_dir) / WEIGHTS))
    weights, caption = tensors["rbm_filters"], "Weights of the first RBM after greedy pretraining (contrastive divergence)."
    if not np.any(weights):
        weights, caption = tensors["up.0.weight"], "This model was not pretrained: weights of its first layer after backprop."
    return filter_mosaic(weights, tuple(config["input_shape"])), caption


@functools.lru_cache(maxsize=2)
def _load_index(path: str, modified_ns: int) -> tuple[HammingIndex, dict[str, Any]]:
    return HammingIndex.load(Path(path))


def bundle_index(predictor) -> tuple[HammingIndex, dict[str, Any]]:
    """The predictor's bundle's index, read again once the file changes: the hub may replace a served bundle."""
    path = Path(predictor.bundle_dir) / INDEX_FILE
    return _load_index(str(path), path.stat().st_mtime_ns)


def build_demo(ctx) -> None:
    import gradio as gr

    task = ctx.task
    bundle_dir, config = Path(ctx.predictor.bundle_dir), ctx.config
    index = bundle_index(ctx.predictor)[0]
    shown = [cv2.resize(image, (64, 64), interpolation=cv2.INTER_NEAREST) for image in task.sample_inputs(config, 8, seed=11)]
    examples = [[path] for path in ctx.example_files(shown)]

    gr.Markdown(
        f"Upload an image: the DBN turns it into a {index.bits}-bit code, and the {len(index):,} database "
        f"images nearest in Hamming distance come back ({index.backend} search)."
    )
    with gr.Row():
        with gr.Column(scale=1):
            query = gr.Image(type="numpy", label="query image", image_mode="RGB")
            k = gr.Slider(1, 50, value=10, step=1, label="how many results (top-k)")
            button = gr.Button("Search", variant="primary")
            gr.Examples(examples=examples, inputs=[query])
        with gr.Column(scale=2):
            code = gr.Markdown()
            gallery = gr.Gallery(label="nearest database images", columns=5, height="auto")
    mosaic, caption = first_layer_view(bundle_dir, config)
    if mosaic is not None:
        gr.Image(value=mosaic, label="features the first RBM learned", interactive=False)
    gr.Markdown(caption)

    def search(image, top_k):
        if image is None:
            raise InputError("upload a query image first")
        predictor = ctx.predictor
        index, meta = bundle_index(predictor)
        classes = meta.get("classes", [])
        result = predictor.predict([to_rgb(image, "query image")])[0]
        packed = np.frombuffer(bytes.fromhex(result["code"]), np.uint8)[None]
        dist, idx = index.search(packed, int(top_k))
        shown = []
        for d, j in zip(dist[0], idx[0]):
            label = classes[index.labels[j]] if 0 <= index.labels[j] < len(classes) else "?"
            shown.append((display_image(index.images[j]), f"d={d} · {label} · {index.codes[j].tobytes().hex()}"))
        text = f"**code** `{result['bits']}` (hex `{result['code']}`); smallest |logit| {result['min_abs_logit']:.2f}"
        return text, shown

    button.click(
        ctx.guard(search), [query, k], [code, gallery], concurrency_id=ctx.concurrency_id, api_name=ctx.api_name("predict")
    )
