"""The calibration of an ensemble's answer together, fitted through the recogniser's own path on
validation rows that none of its heads trained on (the commands: python -m mgcma.ensemble
--calibrate, python -m mgcma.calibrate).

The mean of calibrated heads is not itself calibrated, and its answers do not all err alike: the
answer from the words alone, measured on the bundled model, is less sure than it is right where the
voice and words together are not. So each kind of answer (members.what_it_hears) gets a
temperature of its own, fitted on the rows that answer reads, each corpus weighing the same.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from ..calibration import calibrate, calibrated, not_sure_threshold
from .members import what_it_hears
from .recognizer import EmotionRecognizer
from .scoring import predict_one

TEXT_ROWS_PER_CORPUS = 500   # words alone: each corpus weighs the same in the fit whatever its size; these keep the pass short


@dataclass
class FittedTogether:
    temperatures: dict[str, float]            # by what the answers read: "both", "speech", "text"
    not_sure_below: float                     # over every row, each at its own temperature
    ece: dict[str, tuple[float, float]]       # by what they read: (before, after), the mean over corpora
    rows: dict[str, int]                      # by corpus

    @property
    def main_temperature(self) -> float:
        """The main answer's: the one that reads the most the rows offered."""
        return next(self.temperatures[k] for k in ("both", "speech", "text") if k in self.temperatures)

    def describe(self) -> str:
        names = {"both": "voice and words", "speech": "the voice alone", "text": "the words alone"}
        return "; ".join(f"{names[k]}: temperature {t:.2f}, ECE (mean over corpora) {100 * self.ece[k][0]:.1f} -> "
                         f"{100 * self.ece[k][1]:.1f} %" for k, t in self.temperatures.items())


def calibration_rows(records, val_idx: list[int], seed: int = 0, spoken: bool = True) -> list:
    """Every spoken validation row (none with `spoken` False); of a corpus of words alone,
    TEXT_ROWS_PER_CORPUS drawn by `seed`."""
    rows = [records[i] for i in val_idx]
    chosen = [r for r in rows if r.has_audio] if spoken else []
    rng = np.random.default_rng(seed)
    for corpus in sorted({r.corpus for r in rows if not r.has_audio}):
        words = [r for r in rows if r.corpus == corpus and not r.has_audio]
        chosen += [words[k] for k in sorted(rng.permutation(len(words))[:TEXT_ROWS_PER_CORPUS])]
    return chosen


def fit_together(recognizer: EmotionRecognizer, rows) -> FittedTogether:
    """A temperature for each kind of answer among `rows` (a spoken row is answered from all it
    has, a row of words from the words), each corpus weighing the same within it; the "not sure"
    threshold over all of them at their own temperatures. Fitted on the answers before any
    temperature of the answer together, so a refit finds the same."""
    config = recognizer.config
    logits, targets, groups, reads = [], [], [], []
    for r in tqdm(rows, desc="calibrating the answer together", unit="row", file=sys.stderr):
        if r.label in config.labels:
            logits.append(predict_one(recognizer, r.path, r.text, "both" if r.has_audio else "text").logits)
            targets.append(config.labels.index(r.label))
            groups.append(r.corpus)
            reads.append(what_it_hears("both", r.has_audio and config.uses_speech, r.has_text and config.uses_text))
    logits, targets, groups, reads = np.array(logits), np.array(targets), np.array(groups), np.array(reads)
    fits = {kind: calibrate(logits[reads == kind], targets[reads == kind], groups[reads == kind])
            for kind in ("both", "speech", "text") if kind in reads}
    temperatures = {kind: fit.temperature for kind, fit in fits.items()}
    ece = {kind: (fit.ece_before, fit.ece_after) for kind, fit in fits.items()}
    each = np.array([temperatures[k] for k in reads])[:, None]                                   # (N, 1)
    return FittedTogether(temperatures, not_sure_threshold(calibrated(logits, each), targets, groups), ece,
                          {g: int((groups == g).sum()) for g in sorted(set(groups))})
