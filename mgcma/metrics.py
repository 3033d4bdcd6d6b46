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
