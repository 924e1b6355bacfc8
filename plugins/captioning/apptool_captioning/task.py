"""The captioning task: Show and Tell (Vinyals et al., 2015) as an apptool Task.

Only numpy and OpenCV are imported at module level: predict, evaluate and the
demo run over ONNX Runtime on machines without torch.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from apptool.bundle import atomic_write_json
from apptool.imagenet import fill_normalization
from apptool.images import to_rgb
from apptool.task import Graph, Splits, Task, deep_merge
from apptool_captioning.baselines import baseline_metrics
from apptool_captioning.data import SAMPLE_STREAM, load_splits, preprocess
from apptool_captioning.decoding import beam_search, caption_images, initial_state
from apptool_captioning.metrics import cider_d, corpus_bleu
from apptool_captioning.scenes import grammar_words, make_scenes
from apptool_captioning.text import PAD_ID, SPECIALS


def _vocab(config: dict[str, Any]) -> list[str]:
    """The bundle's vocabulary; before any data is loaded, the built-in grammar's (its complete word list)."""
    return list(config.get("vocab") or [*SPECIALS, *grammar_words()])


def _text(ids: Sequence[int], vocab: Sequence[str]) -> list[str]:
    return [vocab[i] for i in ids]


class CaptioningTask(Task):
    name = "captioning"
    title = "Captioning"
    description = (
        "Describes an image in a sentence, after Vinyals et al., Show and Tell (2015): a timm convnet encodes the "
        "image, an LSTM reads the image embedding first and then generates the caption word by word; beam search "
        "in numpy over ONNX Runtime. Metrics: corpus BLEU-1..4 (sacrebleu, own tokenisation) and CIDEr-D."
    )
    metrics = ("bleu1", "bleu2", "bleu3", "bleu4", "greedy_bleu1", "greedy_bleu4", "cider")
    primary_metric = "bleu4"
    presets = {
        "tiny": {
            "model": {"embed_dim": 32, "hidden_dim": 64},
            "data": {"train_size": 96, "test_size": 24},
            "train": {"steps": 0, "epochs": 2, "batch_size": 16},
        },
        "quick": {},
        "full": {
            "model": {"embed_dim": 128, "hidden_dim": 256},
            "data": {"train_size": 10000, "test_size": 1000},
            "train": {"steps": 7425, "epochs": 25},  # 25 epochs of 10,000 images
        },
    }

    def default_config(self) -> dict[str, Any]:
        return {
            "model": {"backbone": "test_resnet", "pretrained": None, "embed_dim": 96, "hidden_dim": 192, "dropout": 0.1},
            "data": {
                "image_size": 64,
                "train_size": 3000,
                "test_size": 500,
                "max_objects": 3,
                "captions_per_image": 5,
                "max_refs": 5,
                "max_len": 20,
                "min_word_freq": 1,
                "mean": None,  # None: what the encoder's weights expect (apptool.imagenet.normalization)
                "std": None,
            },
            "decode": {"beam_size": 3, "n_best": 3, "max_len": 20, "length_penalty": 0.0},
            "train": {
                "steps": 1080,  # optimizer steps, whatever the data: 12 epochs of the generator's 3,000 images
                "epochs": 12,
                "batch_size": 32,
                "lr": 3e-3,
                "grad_clip": 5.0,
                "backbone_lr_mult": 1.0,
                "val_fraction": 0.05,
            },
        }

    def config(self, preset: str = "quick", overrides: dict | None = None) -> dict[str, Any]:
        """As the base class; with a pretrained encoder, the decoder warms up before the encoder fine-tunes.

        ``--pretrained`` without an explicit ``train.finetune`` selects ``gradual``
        (encoder frozen for the first epoch, then trained at a tenth of the rate).
        ``data.mean``/``std``, unless given, are what the encoder's weights expect.
        """
        overrides = overrides or {}
        if (overrides.get("model") or {}).get("pretrained") and "finetune" not in (overrides.get("train") or {}):
            overrides = deep_merge({"train": {"finetune": "gradual", "unfreeze_epoch": 1, "backbone_lr_mult": 0.1}}, overrides)
        config = super().config(preset, overrides)
        fill_normalization(config["data"], config["model"]["backbone"], config["model"].get("pretrained"))
        return config

    # -- torch side --------------------------------------------------------------
    def build_model(self, config):
        from apptool_captioning.model import ShowAndTell

        m = config["model"]
        return ShowAndTell(
            len(_vocab(config)),
            m["backbone"],
            m.get("pretrained"),
            int(config["data"]["image_size"]),
            int(m["embed_dim"]),
            int(m["hidden_dim"]),
            float(m["dropout"]),
        )

    def load_data(self, config, data_dir: Path | None) -> Splits:
        train, test, info = load_splits(config, data_dir)
        return Splits(train, test, info)

    def collate(self, samples):
        """Images (B, 3, S, S) and references (B, R, L), L cut to the batch's longest caption."""
        import torch

        captions = np.stack([s[1] for s in samples])
        longest = max(2, int((captions != PAD_ID).sum(axis=-1).max()))
        return torch.from_numpy(np.stack([s[0] for s in samples])), torch.from_numpy(
            np.ascontiguousarray(captions[:, :, :longest])
        )

    def loss(self, model, batch):
        from apptool_captioning.model import caption_loss

        images, captions = batch
        return caption_loss(model, images, captions)

    def graphs(self, model, config):
        from apptool_captioning.model import DecoderInitGraph, DecoderStepGraph, EncoderGraph

        m, size = config["model"], int(config["data"]["image_size"])
        embed, hidden, vocab = int(m["embed_dim"]), int(m["hidden_dim"]), len(_vocab(config))
        rng = np.random.default_rng(0)
        batch = {0: "batch"}
        return [
            Graph(
                "encoder",
                EncoderGraph(model).eval(),
                ("image",),
                ("embedding",),
                {"image": batch, "embedding": batch},
                [{"image": rng.standard_normal((n, 3, size, size), dtype=np.float32)} for n in (1, 3)],
            ),
            Graph(
                "decoder_init",
                DecoderInitGraph(model).eval(),
                ("embedding",),
                ("h", "c"),
                {"embedding": batch, "h": batch, "c": batch},
                [{"embedding": rng.standard_normal((n, embed), dtype=np.float32)} for n in (1, 3)],
            ),
            Graph(
                "decoder_step",
                DecoderStepGraph(model).eval(),
                ("token", "h", "c"),
                ("log_probs", "h_out", "c_out"),
                {name: batch for name in ("token", "h", "c", "log_probs", "h_out", "c_out")},
                [
                    {
                        "token": rng.integers(0, vocab, n, dtype=np.int64),
                        "h": 0.5 * rng.standard_normal((n, hidden), dtype=np.float32),
                        "c": rng.standard_normal((n, hidden), dtype=np.float32),
                    }
                    for n in (1, 3, 7)
                ],
            ),
        ]

    # -- numpy side ----------------------------------------------------------------
    def predict(self, runner, items, config):
        if not items:
            return []
        vocab = _vocab(config)
        results = []
        for hypotheses in caption_images(runner, preprocess(list(items), config), config["decode"]):
            beams = [
                {"caption": " ".join(_text(h["ids"], vocab)), "score": h["score"], "logprob": h["logprob"]} for h in hypotheses
            ]
            results.append({"caption": beams[0]["caption"], "score": beams[0]["score"], "beams": beams})
        return results

    def evaluate(self, runner, dataset, config, out_dir=None):
        """BLEU-1..4 and CIDEr-D of beam search and of greedy decoding, against all references of each test image.

        Beside them, the same metrics of two baselines from the training split (``blind_*``, ``nn_*``, see
        :mod:`apptool_captioning.baselines`): a model that does not beat them has not learned to look.
        """
        vocab, decode = _vocab(config), config["decode"]
        beam_size = int(decode["beam_size"])
        beam, greedy = [], []
        for start in range(0, len(dataset), 64):
            images = preprocess([dataset.image(i) for i in range(start, min(start + 64, len(dataset)))], config)
            h, c = initial_state(runner, images)
            beam += [
                _text(hyps[0]["ids"], vocab)
                for hyps in beam_search(runner, h, c, beam_size, decode["max_len"], decode["length_penalty"])
            ]
            greedy += [
                _text(hyps[0]["ids"], vocab) for hyps in beam_search(runner, h, c, 1, decode["max_len"], decode["length_penalty"])
            ]
        references = dataset.references
        metrics: dict[str, Any] = corpus_bleu(beam, references)
        metrics["cider"] = cider_d(beam, references)
        metrics.update({f"greedy_{k}": v for k, v in corpus_bleu(greedy, references).items()})
        metrics["greedy_cider"] = cider_d(greedy, references)
        metrics["beam_size"] = beam_size
        metrics.update(baseline_metrics(runner, dataset.reference, dataset, config))
        if out_dir is not None:
            atomic_write_json(
                Path(out_dir) / "test_captions.json",
                [
                    {"beam": " ".join(b), "greedy": " ".join(g), "references": [" ".join(r) for r in refs]}
                    for b, g, refs in zip(beam, greedy, references)
                ],
            )
        return metrics

    def sample_inputs(self, config, n, seed=0):
        data = config["data"]
        scenes = make_scenes(n, (seed, SAMPLE_STREAM), size=data["image_size"], max_objects=data["max_objects"], n_captions=1)
        return [s.image for s in scenes]

    def render(self, item, result, config):
        """The image (enlarged to at least 384 px wide) above a white band with the best caption."""
        image = to_rgb(item)
        if image.shape[1] < 384:
            factor = int(np.ceil(384 / image.shape[1]))
            image = cv2.resize(image, (image.shape[1] * factor, image.shape[0] * factor), interpolation=cv2.INTER_NEAREST)
        width = image.shape[1]
        scale = max(0.5, width / 700)
        char_w = cv2.getTextSize("x", cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0]
        lines = textwrap.wrap(result.get("caption", ""), max(10, (width - 16) // char_w)) or [""]
        line_h = int(30 * scale) + 6
        band = np.full((line_h * len(lines) + 12, width, 3), 255, np.uint8)
        for i, line in enumerate(lines):
            cv2.putText(
                band,
                line,
                (8, line_h * (i + 1)),
                cv2.FONT_HERSHEY_SIMPLEX,
                scale,
                (20, 20, 20),
                max(1, round(scale * 1.5)),
                cv2.LINE_AA,
            )
        return np.ascontiguousarray(np.vstack([image, band]))

    def demo(self, ctx):
        from apptool_captioning.demo import build_demo

        build_demo(ctx)
