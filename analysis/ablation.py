"""Ablation table, held-out groups (collapse, confidence) and confusion matrices from the trainer's output folders."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np

from mgcma.calibration import expected_calibration_error, fit_class_bias, log_softmax
from mgcma.metrics import classification_metrics
from mgcma.training.ablation import DESCRIPTIONS, ablation_summary, ablation_table, versus_table

__all__ = ["ablation_figure", "ablation_summary", "ablation_table", "confusion_figure", "held_out_summary",
           "held_out_table", "versus_table"]
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


def held_out_summary(run_dirs, class_balanced: bool = False) -> dict:
    """Per held-out group of a run (leave one corpus out, say): UA, WA, recall, the share of its most
    frequent answer (collapse onto one class shows there), ECE, and the selection's epoch-to-epoch
    swing, from each fold-*/metrics.json. Percentages, rounded as reported. Several runs (seeds):
    their calibrated answers averaged per clip, from each fold's answers.npz; `class_balanced`:
    each run's answers first moved by a class bias fitted on its own validation answers
    (mgcma.calibration.fit_class_bias). The selection's figures are the first run's."""
    runs = [Path(run_dirs)] if isinstance(run_dirs, (str, Path)) else [Path(r) for r in run_dirs]
    folds = sorted(runs[0].glob("fold-*/metrics.json"))
    if not folds:
        raise FileNotFoundError(f"no fold-*/metrics.json under {runs[0]}: run python -m mgcma.ablate or mgcma.train first")
    out = {}
    for path in folds:
        m = json.loads(path.read_text())
        if len(runs) == 1 and not class_balanced:
            scores = dict(m, ECE={a: s["ECE"] for a, s in m["by_modality"].items()})
        else:
            scores = answered_scores([run / path.parent.name for run in runs], m["labels"], class_balanced)
        val = [round(100 * h["val_UA"], 1) for h in m["history"]]
        out[m["test_group"]] = dict(
            fold=m["fold"], n=int(np.sum(scores["confusion_matrix"])), **in_percent(scores),
            best_epoch=m["best_epoch"], validation_UA_by_epoch=val,
            largest_swing_from_epoch_5=largest_swing(val),
            largest_swing_by_corpus=largest_swing_by_corpus(m["history"]),
            temperature=(m.get("calibration") or {}).get("temperature"))
    return out


def in_percent(scores: dict) -> dict:
    cm = np.array(scores["confusion_matrix"])
    return dict(UA=round(100 * scores["UA"], 2), WA=round(100 * scores["WA"], 2),
                recall={k: None if v is None else round(100 * v, 1) for k, v in scores["recall"].items()},
                confusion_matrix=scores["confusion_matrix"], labels=scores["labels"],
                most_frequent_answer=scores["labels"][int(cm.sum(0).argmax())],
                most_frequent_answer_share=round(100 * cm.sum(0).max() / max(cm.sum(), 1), 1),
                ECE={a: round(100 * e, 1) for a, e in scores["ECE"].items()})


def answered_scores(fold_dirs: list[Path], labels: list[str], class_balanced: bool) -> dict:
    """One fold of several runs answering together: the mean of their calibrated probabilities per clip."""
    probs, targets = [], None
    for fold in fold_dirs:
        if not (fold / "answers.npz").is_file():
            raise FileNotFoundError(f"{fold}/answers.npz is missing: runs trained before 2026-12-07 did not keep "
                                    "their answers; give one such run alone, without --class-balanced")
        temperature = (json.loads((fold / "metrics.json").read_text()).get("calibration") or {}).get("temperature", 1.0)
        with np.load(fold / "answers.npz") as a:
            order = np.argsort(a["test/id"], kind="stable")   # the same clip in the same row for every run
            logits, targets = a["test/logits"][order] / temperature, a["test/targets"][order]
            if class_balanced:
                logits = logits + fit_class_bias(a["validation/logits"], a["validation/targets"],
                                                 a["validation/corpus"], temperature)
        probs.append(np.exp(log_softmax(logits)))
    mean = np.mean(probs, axis=0)
    return dict(classification_metrics(targets, mean.argmax(1), labels),
                ECE={"both": expected_calibration_error(mean, targets)})


def largest_swing(scores: list[float], after: int = 5) -> float | None:
    """The largest move of a selection score from one epoch to the next, from epoch `after` on."""
    tail = scores[after - 1:]
    return round(float(np.abs(np.diff(tail)).max()), 1) if len(tail) > 1 else None


def largest_swing_by_corpus(history: list[dict]) -> dict:
    """largest_swing of each validation corpus's own UA (runs that recorded it per corpus)."""
    corpora = history[0].get("val_UA_by_corpus", {}) if history else {}
    return {c: largest_swing([100 * h["val_UA_by_corpus"][c] for h in history]) for c in corpora}


def held_out_table(summary: dict, against: dict | None = None, against_name: str = "earlier") -> str:
    """A markdown row per held-out group, and the mean UA; `against`: another held_out_summary, its UA beside."""
    first = next(iter(summary.values()))
    rows = [f"| held out | n | WA % | UA % | recall {' / '.join(first['labels'])} % | most frequent answer | ECE % |"
            + (f" UA % {against_name} |" if against else ""),
            "| --- | --- | --- | --- | --- | --- | --- |" + (" --- |" if against else "")]
    for group, s in summary.items():
        recall = " / ".join("-" if v is None else f"{v:.1f}" for v in s["recall"].values())
        row = (f"| {group} | {s['n']} | {s['WA']:.2f} | **{s['UA']:.2f}** | {recall} | "
               f"{s['most_frequent_answer']} {s['most_frequent_answer_share']:.0f} % | {s['ECE'].get('both', '-')} |")
        if against:
            row += f" {against[group]['UA']:.2f} |" if group in against else " - |"
        rows.append(row)
    mean = np.mean([s["UA"] for s in summary.values()])
    row = f"| mean | | {np.mean([s['WA'] for s in summary.values()]):.2f} | **{mean:.2f}** | | | |"
    if against:
        shared = [g for g in summary if g in against]
        row += f" {np.mean([against[g]['UA'] for g in shared]):.2f} |"
    return "\n".join(rows + [row]) + "\n"
