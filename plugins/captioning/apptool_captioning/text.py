"""Tokenisation and the vocabulary: one definition shared by training, decoding and the metrics.

Tokenisation: lowercase; apostrophes are deleted ("man's" -> "mans"); every
other character that is not a letter or a digit becomes a space; then split
on whitespace.  So leading/trailing spaces, newlines, trailing periods and
mixed case in real caption files all disappear.  BLEU and CIDEr-D are
computed on these tokens (sacrebleu is told ``tokenize="none"``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

PAD, START, END, UNK = "<pad>", "<start>", "<end>", "<unk>"
SPECIALS = (PAD, START, END, UNK)
PAD_ID, START_ID, END_ID, UNK_ID = range(4)

_APOSTROPHES = re.compile(r"['\u2019`]")


def tokenize(caption: str) -> list[str]:
    """The caption's word tokens (see the module docstring for the rules)."""
    text = _APOSTROPHES.sub("", caption.lower())
    text = "".join(ch if ch.isalnum() else " " for ch in text)
    return text.split()


def build_vocab(captions: Iterable[Sequence[str]], min_freq: int = 1) -> list[str]:
    """Specials, then every word seen at least ``min_freq`` times, most frequent first (ties by spelling)."""
    counts = Counter(word for tokens in captions for word in tokens)
    words = sorted((w for w, n in counts.items() if n >= min_freq and w not in SPECIALS), key=lambda w: (-counts[w], w))
    return [*SPECIALS, *words]


def encode(tokens: Sequence[str], index: dict[str, int], max_len: int) -> np.ndarray:
    """``<start> w1 .. wn <end>`` as ids, truncated to ``max_len`` words and padded to ``max_len + 2``."""
    ids = [index.get(w, UNK_ID) for w in tokens[:max_len]]
    row = np.full(max_len + 2, PAD_ID, dtype=np.int64)
    row[: len(ids) + 2] = [START_ID, *ids, END_ID]
    return row
