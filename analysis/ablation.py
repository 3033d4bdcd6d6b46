"""Ablation table and confusion matrices from the trainer's output folders."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np

from mgcma.training.ablation import DESCRIPTIONS, ablation_summary, ablation_table, versus_table

__all__ = ["ablation_figure", "ablation_summary", "ablation_table", "confusion_figure", "versus_table"]
ANSWER_TITLES = {"both": "", "speech": ", voice-only answers", "text": ", words-only answers"}


def ablation_figure(summaries: dict, answer: str = "both"):
    """Bars of WA and UA (mean over seeds x folds, std as error bars) per setting of an ablation_summary."""
    import matplotlib.pyplot as plt
    names = list(summaries)
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(1.5 * len(names) + 2, 3.8))
    for offset, key, colour in ((-0.18, "WA", "#1f77b4"), (0.18, "UA", "#ff7f0e")):
        means = [100 * summaries[n][f"{key}_mean"] for n in names]
        stds = [100 * summaries[n][f"{key}_std"] for n in names]
        bars = ax.bar(x + offset, means, 0.36, yerr=stds, capsize=3, color=colour, label=key)
        ax.bar_label(bars, fmt="%.1f", fontsize=7, padding=2)
    ax.set_xticks(x, [textwrap.fill(DESCRIPTIONS[n].replace("without ", "w/o "), 18) + f"\n(n={len(summaries[n]['runs'])})"
                      for n in names], fontsize=8)
    ax.set(ylabel="%", ylim=(0, 105), title=f"ablation{ANSWER_TITLES[answer]} (mean +- std over n seed x fold runs)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))   # outside: the bars reach the top
    fig.tight_layout()
    return fig


def confusion_figure(run_dir: str | Path):
    """One confusion matrix per fold of a run (rows: true, columns: predicted), row-normalised."""
    import matplotlib.pyplot as plt
    folds = sorted(Path(run_dir).glob("fold-*/metrics.json"))
    if not folds:
        raise FileNotFoundError(f"no fold-*/metrics.json under {run_dir}")
    metrics = [json.loads(p.read_text()) for p in folds]
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.6 * len(metrics), 3.6), squeeze=False)
    for ax, m in zip(axes[0], metrics):
        cm = np.array(m["confusion_matrix"], dtype=float)
        norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
        ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
        for i in range(len(cm)):
            for j in range(len(cm)):
                ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center", fontsize=8,
                        color="white" if norm[i, j] > 0.5 else "black")
        ax.set_xticks(range(len(m["labels"])), m["labels"], rotation=45, fontsize=8)
        ax.set_yticks(range(len(m["labels"])), m["labels"], fontsize=8)
        ax.set(xlabel="predicted", ylabel="true", title=f"fold {m['fold']}: UA {100 * m['UA']:.1f}, WA {100 * m['WA']:.1f}")
    fig.tight_layout()
    return fig
