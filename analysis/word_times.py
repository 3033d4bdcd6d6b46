"""Words under the cross-attention heatmap: Whisper's word times (mgcma/infer/word_timer.py) matched to
the model's words, and how much of a word's attention falls inside its own spoken span.
"""
from __future__ import annotations

import re
from difflib import SequenceMatcher

import numpy as np

from mgcma.infer.word_timer import Word, WordTimer


def normalise(word: str) -> str:
    return re.sub(r"[^a-z0-9']", "", word.lower())


def spans_for(words: list[str], timed: list[Word]) -> list[tuple[float, float] | None]:
    """The (start, end) of each of `words` (the heatmap's rows), matched to Whisper's timed words
    by their letters in order; None where Whisper has no such word."""
    a, b = [normalise(w) for w in words], [normalise(w) for w, _, _ in timed]
    out: list[tuple[float, float] | None] = [None] * len(words)
    for block in SequenceMatcher(a=a, b=b, autojunk=False).get_matching_blocks():
        for k in range(block.size):
            _, start, end = timed[block.b + k]
            out[block.a + k] = (start, end)
    return out


def in_span_share(w2s: np.ndarray, times: np.ndarray, spans: list[tuple[float, float] | None]) -> dict | None:
    """w2s: (W, Ts) each word's attention over the speech frames (rows sum to 1); times: (Ts,) frame
    centres. -> the mean share of a word's attention inside its own spoken span, and the share
    that uniform attention (chance) puts there, over the words that have a span."""
    inside, chance = [], []
    for row, span in zip(w2s, spans):
        if span is None:
            continue
        frames = (times >= span[0]) & (times <= span[1])
        if not frames.any():
            continue
        inside.append(float(row[frames].sum() / max(row.sum(), 1e-12)))
        chance.append(float(frames.mean()))
    if not inside:
        return None
    return dict(in_span=float(np.mean(inside)), chance=float(np.mean(chance)), words=len(inside),
                ratio=float(np.mean(inside) / max(np.mean(chance), 1e-12)))


def clip_word_attention(recognizer, timer: WordTimer, audio, text: str | None = None):
    """One clip -> (prediction, words, s2w, w2s, times, spans, {"mean": share, "heads": [share per head]})."""
    from .heatmap import attention_maps
    pred = recognizer.predict(audio, text)
    words, s2w, w2s, times = attention_maps(pred.output, pred.words, recognizer.model.frame_seconds,
                                          text=pred.transcript, offsets=pred.offsets)
    spans = spans_for(words, timer.align(pred.wave, pred.transcript))   # the clip as the model heard it (trimmed)
    shares = dict(mean=in_span_share(w2s.mean(0), times, spans),
                  heads=[in_span_share(w2s[h], times, spans) for h in range(len(w2s))])
    return pred, words, s2w, w2s, times, spans, shares


def word_attention_over(recognizer, timer: WordTimer, records, progress: bool = True) -> dict:
    """Over many clips: the mean in-span share of the head-averaged attention and of each head,
    against chance."""
    from tqdm import tqdm
    means, heads = [], []
    for r in tqdm(records, desc="word spans", disable=not progress):
        *_, shares = clip_word_attention(recognizer, timer, r.path, r.text or None)
        if shares["mean"] is not None:
            means.append(shares["mean"])
            heads.append(shares["heads"])
    if not means:
        raise ValueError("no clip had words that Whisper could place")
    summary = lambda xs: dict(in_span=float(np.mean([x["in_span"] for x in xs])),   # noqa: E731
                              chance=float(np.mean([x["chance"] for x in xs])))
    out = dict(clips=len(means), mean_of_heads=summary(means), heads=[summary([h[k] for h in heads]) for k in range(len(heads[0]))])
    for s in [out["mean_of_heads"], *out["heads"]]:
        s["ratio"] = s["in_span"] / max(s["chance"], 1e-12)
    return out
