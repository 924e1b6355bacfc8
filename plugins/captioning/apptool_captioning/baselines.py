"""Two baselines that show whether a captioning model looks at its image, scored by the model's own metric code.

* **blind**: one caption for every test image, the *consensus* training caption: of the captions of
  ``CANDIDATE_IMAGES`` training images, the one with the highest corpus BLEU-4 when said of each of
  ``JUDGE_IMAGES`` other training images. It is what a model that ignores its input would do best to
  say; a model that only learned the grammar's favourite sentence scores about the same.
* **nearest neighbour** (Devlin et al., *Language Models for Image Captioning: The Quirks and What
  Works*, ACL 2015): the first reference of the training image whose encoder embedding (the model's
  own, on ONNX Runtime) is closest by cosine similarity, among ``NEIGHBOUR_IMAGES`` training images.
  It tells whether the decoder adds anything to what the encoder already separates.

Both use only the training split (a fixed-seed sample of it, so eval stays a few CPU-seconds).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from apptool.task import run_in_batches
from apptool_captioning.data import CaptionDataset, preprocess
from apptool_captioning.metrics import cider_d, constant_caption_bleu, corpus_bleu

CANDIDATE_IMAGES = 100
JUDGE_IMAGES = 300
NEIGHBOUR_IMAGES = 1000
ENCODER_BATCH = 64
SEED = 0


def consensus_caption(train: CaptionDataset) -> list[str]:
    """The training caption that scores best, by corpus BLEU-4, when said of every image of a training sample."""
    order = np.random.default_rng(SEED).permutation(len(train))
    half = max(1, len(order) // 2)
    candidates = sorted({tuple(c) for i in order[: min(half, CANDIDATE_IMAGES)] for c in train.references[i]})
    judges = [train.references[i] for i in (order[half : half + JUDGE_IMAGES] if len(order) > 1 else order)]
    return list(candidates[int(np.argmax(constant_caption_bleu(candidates, judges)))])


def _embeddings(runner, dataset: CaptionDataset, indices, config: dict[str, Any]) -> np.ndarray:
    images = [dataset.image(int(i)) for i in indices]
    return run_in_batches(runner, "encoder", images, lambda part: {"image": preprocess(part, config)}, ENCODER_BATCH)["embedding"]


def nearest_captions(runner, train: CaptionDataset, test: CaptionDataset, config: dict[str, Any]) -> list[list[str]]:
    """For each test image, the first reference of the training image nearest by the encoder's embedding."""
    sample = np.sort(np.random.default_rng(SEED).permutation(len(train))[:NEIGHBOUR_IMAGES])
    database = _embeddings(runner, train, sample, config)
    queries = _embeddings(runner, test, range(len(test)), config)
    database /= np.maximum(np.linalg.norm(database, axis=1, keepdims=True), 1e-12)
    queries /= np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
    nearest = sample[np.argmax(queries @ database.T, axis=1)]
    return [list(train.references[i][0]) for i in nearest]


def _scores(prefix: str, hypotheses: list[list[str]], references) -> dict[str, float]:
    result = {f"{prefix}_{k}": v for k, v in corpus_bleu(hypotheses, references).items()}
    result[f"{prefix}_cider"] = cider_d(hypotheses, references)
    return result


def baseline_metrics(runner, train: CaptionDataset | None, test: CaptionDataset, config: dict[str, Any]) -> dict[str, Any]:
    """``blind_bleu1..4``, ``blind_cider``, ``blind_caption`` and ``nn_bleu1..4``, ``nn_cider`` on ``test``."""
    if train is None or len(train) == 0:
        return {"baseline": "none: no training split to take captions from"}
    blind = consensus_caption(train)
    result: dict[str, Any] = _scores("blind", [blind] * len(test), test.references)
    result["blind_caption"] = " ".join(blind)
    result.update(_scores("nn", nearest_captions(runner, train, test, config), test.references))
    result["baseline"] = (
        "blind: the consensus training caption for every image; nn: a caption of the training image nearest by the encoder"
    )
    return result
