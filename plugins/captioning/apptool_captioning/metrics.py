"""Caption metrics on tokenised sentences: corpus BLEU-1..4 (sacrebleu) and CIDEr-D (numpy).

BLEU is sacrebleu's corpus BLEU with ``max_ngram_order`` n = 1..4,
``tokenize="none"`` (the sentences are already tokenised by
:func:`apptool_captioning.text.tokenize`) and no smoothing, against every
reference of each image (a variable number is fine).  BLEU-n is the
geometric mean of the 1..n-gram precisions times the brevity penalty
(closest reference length), as in Papineni et al. 2002 and the COCO caption
evaluation.  Scores are fractions in [0, 1].

CIDEr-D follows Vedantam, Zitnick, Parikh, CVPR 2015, as the COCO caption
evaluation computes it: TF-IDF vectors of 1..4-grams with document
frequencies from the evaluated references, candidate counts clipped to the
reference's ("-D"), a Gaussian length penalty (sigma 6), cosine-like
similarity averaged over references and n-gram orders, times 10.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

Tokens = Sequence[str]


def _reference_streams(references: Sequence[Sequence[Tokens]]) -> list[list[str | None]]:
    """sacrebleu's reference *streams* (k-th reference of every image); None pads images that have fewer."""
    width = max(len(r) for r in references)
    return [[" ".join(refs[k]) if k < len(refs) else None for refs in references] for k in range(width)]


def _bleu(order: int, references: Sequence[Sequence[Tokens]] | None = None):
    """sacrebleu's BLEU of one n-gram order on pre-tokenised text; with ``references``, their statistics are cached."""
    from sacrebleu.metrics import BLEU

    streams = _reference_streams(references) if references is not None else None
    return BLEU(tokenize="none", smooth_method="none", max_ngram_order=order, effective_order=False, references=streams)


def corpus_bleu(hypotheses: Sequence[Tokens], references: Sequence[Sequence[Tokens]], max_order: int = 4) -> dict[str, float]:
    """``{"bleu1": .., ..., "bleu<max_order>": ..}`` for tokenised hypotheses against all their references."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} reference sets")
    hyps = [" ".join(h) for h in hypotheses]
    streams = _reference_streams(references)
    return {f"bleu{n}": _bleu(n).corpus_score(hyps, streams).score / 100.0 for n in range(1, max_order + 1)}


def constant_caption_bleu(candidates: Sequence[Tokens], references: Sequence[Sequence[Tokens]], order: int = 4) -> np.ndarray:
    """Corpus BLEU-``order`` of each candidate said of every image of ``references`` (the references parsed once)."""
    scorer = _bleu(order, references)
    return np.array([scorer.corpus_score([" ".join(c)] * len(references), None).score / 100.0 for c in candidates])


def _ngrams(tokens: Tokens, n_max: int) -> Counter:
    return Counter(tuple(tokens[i : i + n]) for n in range(1, n_max + 1) for i in range(len(tokens) - n + 1))


def _tfidf(counts: Counter, df: Counter, log_n_images: float, n_max: int) -> tuple[list[dict], np.ndarray]:
    """Per-order TF-IDF vectors (dicts) and their norms; idf = log(N images) - log(max(1, df))."""
    vectors: list[dict] = [{} for _ in range(n_max)]
    for gram, tf in counts.items():
        vectors[len(gram) - 1][gram] = tf * (log_n_images - np.log(max(1.0, df[gram])))
    norms = np.array([np.sqrt(sum(v * v for v in vec.values())) for vec in vectors])
    return vectors, norms


def cider_d(hypotheses: Sequence[Tokens], references: Sequence[Sequence[Tokens]], n_max: int = 4, sigma: float = 6.0) -> float:
    """Corpus CIDEr-D: the mean over images of the per-image score (document frequency from ``references``)."""
    if len(hypotheses) != len(references) or not hypotheses:
        raise ValueError(f"need as many reference sets as hypotheses (got {len(hypotheses)} and {len(references)})")
    ref_counts = [[_ngrams(r, n_max) for r in refs] for refs in references]
    df: Counter = Counter()
    for counts in ref_counts:
        df.update(set().union(*counts))  # each image counts once per n-gram
    log_n = np.log(float(len(references)))
    scores = []
    for hyp, refs, counts in zip(hypotheses, references, ref_counts):
        vec_h, norm_h = _tfidf(_ngrams(hyp, n_max), df, log_n, n_max)
        total = np.zeros(n_max)
        for ref, count in zip(refs, counts):
            vec_r, norm_r = _tfidf(count, df, log_n, n_max)
            penalty = np.exp(-((len(hyp) - len(ref)) ** 2) / (2 * sigma**2))
            for n in range(n_max):
                dot = sum(min(v, vec_r[n].get(g, 0.0)) * vec_r[n].get(g, 0.0) for g, v in vec_h[n].items())
                if norm_h[n] and norm_r[n]:
                    dot /= norm_h[n] * norm_r[n]
                total[n] += dot * penalty
        scores.append(10.0 * total.mean() / len(refs))
    return float(np.mean(scores))
