"""Captioning baselines: the consensus (blind) caption, the nearest-neighbour caption, and both in `eval --json`."""

from __future__ import annotations

import numpy as np
import pytest
from apptool_captioning.baselines import consensus_caption, nearest_captions
from apptool_captioning.data import CaptionDataset
from apptool_captioning.metrics import constant_caption_bleu, corpus_bleu

from apptool.evaluation import evaluate_bundle


@pytest.fixture(scope="module")
def task():
    from apptool.plugins import get_plugins

    return get_plugins().task("captioning")


def _dataset(images, references, config) -> CaptionDataset:
    vocab = sorted({w for refs in references for ref in refs for w in ref})
    return CaptionDataset(images, references, vocab, config)


class ColourEncoder:
    """A runner whose encoder embeds an image by its mean colour (the baseline only needs some embedding)."""

    def run(self, graph, feeds):
        assert graph == "encoder"
        return {"embedding": feeds["image"].mean(axis=(2, 3))}


def test_constant_caption_bleu_is_corpus_bleu_of_the_caption_said_of_every_image():
    references = [[["a", "red", "disc", "on", "grey"]], [["a", "red", "box", "on", "grey"], ["the", "red", "box"]]]
    candidates = [["a", "red", "box", "on", "grey"], ["a", "red", "disc"]]
    scores = constant_caption_bleu(candidates, references)
    for candidate, score in zip(candidates, scores):
        assert score == pytest.approx(corpus_bleu([candidate] * len(references), references)["bleu4"])


def test_consensus_caption_is_the_sentence_most_training_images_share(task):
    config = task.config("tiny")
    common = ["an", "image", "of", "a", "red", "disc", "above", "a", "blue", "box"]
    rng = np.random.default_rng(3)
    references = []
    for i in range(40):
        odd = f"a picture with {rng.choice(['green', 'pink', 'white'])} thing number {i}".split()
        references.append([common, odd] if i % 4 else [odd])
    train = _dataset([np.zeros((8, 8, 3), np.uint8)] * len(references), references, config)
    assert consensus_caption(train) == common


def test_nearest_caption_is_a_reference_of_the_training_image_that_looks_the_same(task):
    config = task.config("tiny")
    colours = {"red": (220, 20, 20), "green": (20, 200, 40), "blue": (30, 40, 230)}
    train_images = [np.full((16, 16, 3), rgb, np.uint8) for rgb in colours.values()]
    train = _dataset(train_images, [[[name, "square"]] for name in colours], config)
    test_images = [np.full((16, 16, 3), np.array(colours[name]) * 0.9, np.uint8) for name in ("blue", "red")]
    test = _dataset(test_images, [[["blue", "square"]], [["red", "square"]]], config)
    assert nearest_captions(ColourEncoder(), train, test, config) == [["blue", "square"], ["red", "square"]]


def test_eval_reports_the_baselines_beside_the_model(task, shared_bundle):
    metrics = evaluate_bundle(shared_bundle(task))
    for prefix in ("", "blind_", "nn_"):
        assert 0.0 <= metrics[f"{prefix}bleu4"] <= metrics[f"{prefix}bleu1"] <= 1.0
        assert metrics[f"{prefix}cider"] >= 0.0
    blind = metrics["blind_caption"].split()
    assert blind and metrics["blind_bleu1"] > 0.0  # a training caption shares words with the test references
