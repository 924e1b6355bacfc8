"""Caption decoding in numpy over a Runner: greedy and beam search, the same code on torch and ONNX Runtime.

The model is three graphs: ``encoder`` (image -> embedding), ``decoder_init``
(embedding -> h, c: the LSTM reads the image embedding as its first input, as
in Show and Tell) and ``decoder_step`` (token, h, c -> log_probs, h_out, c_out).  All
live beams of all images in a chunk run through ``decoder_step`` as one
batch.  Greedy decoding is beam search with one beam.

At each step every image keeps its ``beam_size`` best extensions; one of the
``beam_size`` best that emits ``<end>`` (or reaches ``max_len`` words) is
finished instead.  A finished hypothesis scores ``log p / length **
length_penalty`` (length counts ``<end>``; 0 ranks by raw log-probability,
1 by mean per-token log-probability).  An image stops when ``beam_size``
hypotheses have finished.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from apptool_captioning.text import END_ID, PAD_ID, START_ID, UNK_ID

#: Never generated: padding, the start symbol, and the unknown word (a caption should not say "<unk>").
BANNED = (PAD_ID, START_ID, UNK_ID)


def initial_state(runner, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """LSTM state after reading the image embedding, for preprocessed NCHW images."""
    embedding = runner.run("encoder", {"image": images})["embedding"]
    state = runner.run("decoder_init", {"embedding": embedding})
    return state["h"], state["c"]


def beam_search(
    runner, h: np.ndarray, c: np.ndarray, beam_size: int = 3, max_len: int = 20, length_penalty: float = 0.0, n_best: int = 1
) -> list[list[dict[str, Any]]]:
    """For each image's initial state, its ``n_best`` hypotheses: ids (no specials), score, log-prob; best first.

    Each step ranks the candidates of every image at once: one row per live image
    holds the extensions of all its beams side by side (``-inf`` where it has fewer
    beams), so only finished hypotheses are handled one by one in Python.
    """
    n_images = h.shape[0]
    owner = np.arange(n_images)  # the image of each live beam, non-decreasing
    tokens = np.full(n_images, START_ID, dtype=np.int64)
    logprob = np.zeros(n_images)
    history = np.zeros((n_images, 0), dtype=np.int64)  # the words of each live beam so far
    n_finished = np.zeros(n_images, dtype=np.int64)
    finished: list[list[dict[str, Any]]] = [[] for _ in range(n_images)]
    k = 2 * beam_size
    for step in range(1, max_len + 1):
        out = runner.run("decoder_step", {"token": tokens, "h": h, "c": c})
        logp = np.asarray(out["log_probs"], dtype=np.float64)
        logp[:, list(BANNED)] = -np.inf
        vocab = logp.shape[1]
        images, first, index = np.unique(owner, return_index=True, return_inverse=True)
        slot = np.arange(len(owner)) - first[index]  # each beam's place among its image's beams
        grid = np.full((len(images), int(slot.max()) + 1, vocab), -np.inf)
        grid[index, slot] = logprob[:, None] + logp
        grid = grid.reshape(len(images), -1)
        top = np.argpartition(-grid, k - 1, axis=1)[:, :k] if grid.shape[1] > k else np.argsort(-grid, axis=1)[:, :k]
        values = np.take_along_axis(grid, top, 1)
        order = np.argsort(-values, axis=1, kind="stable")
        picks, values = np.take_along_axis(top, order, 1), np.take_along_axis(values, order, 1)
        words, rows = picks % vocab, first[:, None] + picks // vocab
        valid = np.isfinite(values)  # only banned tokens are left after the first -inf
        ending = valid & ((words == END_ID) | (step == max_len))
        ending[:, beam_size:] = False  # an ending outside the top beam_size is not a beam, nor kept
        finishing = ending & (np.cumsum(ending, axis=1) <= (beam_size - n_finished[images])[:, None])
        for i, j in zip(*np.nonzero(finishing)):
            image, ended = int(images[i]), bool(words[i, j] == END_ID)
            seq = history[rows[i, j]].tolist() + ([] if ended else [int(words[i, j])])
            length = len(seq) + ended
            score = float(values[i, j] / max(length, 1) ** length_penalty)
            finished[image].append({"ids": seq, "score": score, "logprob": float(values[i, j])})
        n_finished[images] += finishing.sum(axis=1)
        keeping = valid & ~((words == END_ID) | (step == max_len))
        keeping &= np.cumsum(keeping, axis=1) <= beam_size
        keeping &= (n_finished[images] < beam_size)[:, None]  # done: this image's live beams go
        if not keeping.any():
            break
        kept = rows[keeping]
        owner, tokens, logprob = owner[kept], words[keeping].astype(np.int64), values[keeping]
        history = np.concatenate([history[kept], tokens[:, None]], axis=1)
        h, c = out["h_out"][kept], out["c_out"][kept]
    return [sorted(f, key=lambda x: -x["score"])[:n_best] for f in finished]


def caption_images(
    runner, images: np.ndarray, decode: dict[str, Any], beam_size: int | None = None, chunk: int = 64
) -> list[list[dict[str, Any]]]:
    """Beam search (or greedy with ``beam_size=1``) over preprocessed images, ``chunk`` images at a time."""
    beam = int(beam_size or decode["beam_size"])
    results: list[list[dict[str, Any]]] = []
    for start in range(0, len(images), chunk):
        h, c = initial_state(runner, images[start : start + chunk])
        results += beam_search(
            runner, h, c, beam, decode["max_len"], decode["length_penalty"], max(1, min(decode["n_best"], beam))
        )
    return results
