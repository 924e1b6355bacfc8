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
    """For each image's initial state, its ``n_best`` hypotheses: ids (no specials), score, log-prob; best first."""
    n_images = h.shape[0]
    owner = np.arange(n_images)
    tokens = np.full(n_images, START_ID, dtype=np.int64)
    logprob = np.zeros(n_images)
    seqs: list[list[int]] = [[] for _ in range(n_images)]
    finished: list[list[dict[str, Any]]] = [[] for _ in range(n_images)]

    def finish(image: int, seq: list[int], lp: float, ended: bool) -> None:
        length = len(seq) + ended
        finished[image].append({"ids": seq, "score": float(lp / max(length, 1) ** length_penalty), "logprob": float(lp)})

    for step in range(1, max_len + 1):
        out = runner.run("decoder_step", {"token": tokens, "h": h, "c": c})
        logp = np.asarray(out["log_probs"], dtype=np.float64)
        logp[:, list(BANNED)] = -np.inf
        vocab = logp.shape[1]
        total = logprob[:, None] + logp
        rows, next_tokens, next_lp = [], [], []
        for image in np.unique(owner):
            mine = np.flatnonzero(owner == image)
            flat = total[mine].ravel()
            k = min(2 * beam_size, flat.size)
            top = np.argpartition(-flat, k - 1)[:k]
            kept = 0
            for rank, pick in enumerate(top[np.argsort(-flat[top], kind="stable")]):
                if not np.isfinite(flat[pick]):
                    break  # only banned tokens are left
                row, token = mine[pick // vocab], int(pick % vocab)
                if token == END_ID or step == max_len:
                    if rank < beam_size:  # an ending outside the top beam_size is not a beam
                        finish(image, seqs[row] + ([] if token == END_ID else [token]), flat[pick], token == END_ID)
                elif kept < beam_size:
                    rows.append(row)
                    next_tokens.append(token)
                    next_lp.append(flat[pick])
                    kept += 1
                if len(finished[image]) >= beam_size:
                    break
            if len(finished[image]) >= beam_size:  # done: drop this image's live beams
                while rows and owner[rows[-1]] == image:
                    rows.pop(), next_tokens.pop(), next_lp.pop()
        if not rows:
            break
        rows_arr = np.asarray(rows)
        owner, tokens, logprob = owner[rows_arr], np.asarray(next_tokens, dtype=np.int64), np.asarray(next_lp)
        h, c = out["h_out"][rows_arr], out["c_out"][rows_arr]
        seqs = [seqs[r] + [t] for r, t in zip(rows, next_tokens)]
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
