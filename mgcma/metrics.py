"""WA = overall accuracy; UA = mean per-class recall (balanced accuracy). Named exactly so."""
from __future__ import annotations

import numpy as np


def confusion_matrix(y_true, y_pred, n_classes: int) -> np.ndarray:
    """Rows: true class, columns: predicted class."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return cm


def classification_metrics(y_true, y_pred, labels: list[str]) -> dict:
    cm = confusion_matrix(y_true, y_pred, len(labels))
    support = cm.sum(1)
    present = support > 0  # a class absent from this split has no recall to average
    recall = np.where(present, np.diag(cm) / np.maximum(support, 1), np.nan)
    return {
        "WA": float(np.trace(cm) / max(cm.sum(), 1)),
        "UA": float(np.nanmean(recall)) if present.any() else float("nan"),
        "recall": {name: (None if np.isnan(r) else float(r)) for name, r in zip(labels, recall)},
        "confusion_matrix": cm.tolist(),
        "labels": list(labels),
        "n": int(cm.sum()),
    }


def resampled_speaker_uas(y_true, predictions, speakers, n_classes: int, draws: int = 1000, seed: int = 0):
    """The UA of each of M answers to the same clips on `draws` test sets, each as many speakers drawn
    with replacement from those tested, every one with all of their clips; the same draws for all M,
    so that their differences are paired. -> (draws, M), or None with fewer than two speakers."""
    names, which = np.unique(np.asarray(speakers), return_inverse=True)
    if len(names) < 2:
        return None
    y_true = np.asarray(y_true, dtype=np.int64)
    drawn = np.random.default_rng(seed).integers(0, len(names), (draws, len(names)))   # (draws, S)
    times = np.stack([np.bincount(d, minlength=len(names)) for d in drawn])             # (draws, S)
    uas = []
    for y_pred in predictions:
        per_speaker = np.zeros((len(names), n_classes, n_classes))                      # (S, C, C)
        np.add.at(per_speaker, (which, y_true, np.asarray(y_pred, dtype=np.int64)), 1)
        cm = np.einsum("ds,sij->dij", times, per_speaker)                              # (draws, C, C)
        support = cm.sum(2)
        recall = np.where(support > 0, np.diagonal(cm, axis1=1, axis2=2) / np.maximum(support, 1), np.nan)
        uas.append(np.nanmean(recall, axis=1))
    return np.stack(uas, 1)


def percentiles(values) -> dict:
    """{low, median, high}: the 5th, 50th and 95th percentiles."""
    low, median, high = np.percentile(values, [5, 50, 95])
    return dict(low=float(low), median=float(median), high=float(high))


def ua_over_resampled_speakers(y_true, y_pred, speakers, n_classes: int, draws: int = 1000, seed: int = 0) -> dict | None:
    """How much a UA owes to which speakers happened to be tested (resampled_speaker_uas):
    {low, median, high, speakers}; None with fewer than two speakers."""
    uas = resampled_speaker_uas(y_true, [y_pred], speakers, n_classes, draws, seed)
    return None if uas is None else dict(percentiles(uas[:, 0]), speakers=len(set(speakers)))
