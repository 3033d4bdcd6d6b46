"""What a training run keeps on disk: the resumable state of a fold, its learning curves, and
the summary over folds (each fold, mean +- std, and per corpus and modality)."""
from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path

import numpy as np
import torch

from ..checkpoint import atomic_write, stored_state
from .steps import MODALITIES


class TrainingError(RuntimeError):
    """A run that cannot go on; the message says why and what to do."""


def save_state(path: Path, model, optimizer, scheduler, progress: dict) -> None:
    """Everything to continue exactly where an epoch ended; frozen encoders are not copied."""
    state = dict(
        model=stored_state(model),
        optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict(), progress=progress,
        torch_rng=torch.get_rng_state(), python_rng=random.getstate())
    if torch.cuda.is_available():
        state["cuda_rng"] = torch.cuda.get_rng_state_all()
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_state(path: Path, model, optimizer, scheduler) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)  # data only, never code
    except Exception as e:  # a truncated or foreign file
        raise TrainingError(f"cannot resume from {path}: the file is corrupt ({e.__class__.__name__}: {e}). "
                            "Delete it to restart this fold from scratch.") from None
    model.load_state_dict(state["model"], strict=False)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["torch_rng"])
    random.setstate(tuple(x if not isinstance(x, list) else tuple(x) for x in state["python_rng"]))
    if "cuda_rng" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return state["progress"]


def plot_curves(history: list[dict], path: Path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    epochs = [h["epoch"] + 1 for h in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    ax1.plot(epochs, [h["train_loss"] for h in history], "o--", color="grey", label="train, total (with alignment losses)")
    ax1.plot(epochs, [h["train_ce"] for h in history], "o-", label="train, cross-entropy")
    ax1.plot(epochs, [h["val_loss"] for h in history], "o-", label="validation, cross-entropy")
    ax1.set(xlabel="epoch", ylabel="loss", title="loss")
    ax2.plot(epochs, [100 * h["val_UA"] for h in history], "o-", label="validation UA")
    ax2.plot(epochs, [100 * h["val_WA"] for h in history], "s--", label="validation WA")
    ax2.set(xlabel="epoch", ylabel="%", title="validation accuracy")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def summarise(cfg, fold_metrics: list[dict]) -> dict:
    ua = np.array([m["UA"] for m in fold_metrics])
    wa = np.array([m["WA"] for m in fold_metrics])
    summary = dict(folds=[{k: m[k] for k in ("fold", "test_group", "WA", "UA", "recall", "confusion_matrix", "n_test",
                                             "best_epoch")} for m in fold_metrics],
                   WA_mean=float(wa.mean()), WA_std=float(wa.std()), UA_mean=float(ua.mean()),
                   UA_std=float(ua.std()), config=dataclasses.asdict(cfg))
    labels = fold_metrics[0]["labels"]
    rows = [f"| fold | test group | n | WA % | UA % | recall % ({' / '.join(labels)}) | confusion (rows: true) |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    rows += [f"| {m['fold']} | {m['test_group']} | {m['n_test']} | {100 * m['WA']:.2f} | {100 * m['UA']:.2f} | "
             f"{' / '.join('-' if r is None else f'{100 * r:.1f}' for r in m['recall'].values())} | "
             f"{m['confusion_matrix']} |" for m in fold_metrics]
    rows.append(f"| mean +- std | | | {100 * wa.mean():.2f} +- {100 * wa.std():.2f} | "
                f"{100 * ua.mean():.2f} +- {100 * ua.std():.2f} | | |")
    summary["by_modality"] = by_modality_summary(fold_metrics)
    if summary["by_modality"]:
        rows += ["", "| answer from | corpus | folds | WA % | UA % |", "| --- | --- | --- | --- | --- |"]
        rows += [f"| {m} | {c} | {s['folds']} | {100 * s['WA_mean']:.2f} +- {100 * s['WA_std']:.2f} | "
                 f"{100 * s['UA_mean']:.2f} +- {100 * s['UA_std']:.2f} |"
                 for m, per_corpus in summary["by_modality"].items() for c, s in per_corpus.items()]
    out = Path(cfg.out)
    atomic_write(out / "summary.json", lambda tmp: Path(tmp).write_text(json.dumps(summary, indent=2)))
    atomic_write(out / "results.md", lambda tmp: Path(tmp).write_text("\n".join(rows) + "\n"))
    return summary


def by_modality_summary(fold_metrics: list[dict]) -> dict:
    """{modality: {corpus: mean and std of WA and UA over folds}} from each fold's test scores."""
    out = {}
    for m in MODALITIES:
        per_corpus = {}
        for fm in fold_metrics:
            for corpus, sc in fm.get("by_modality", {}).get(m, {}).get("corpora", {}).items():
                per_corpus.setdefault(corpus or "all", []).append(sc)
        if per_corpus:
            out[m] = {c: dict(folds=len(v), WA_mean=float(np.mean([x["WA"] for x in v])), WA_std=float(np.std([x["WA"] for x in v])),
                              UA_mean=float(np.mean([x["UA"] for x in v])), UA_std=float(np.std([x["UA"] for x in v])))
                      for c, v in per_corpus.items()}
    return out


def save_answers(path: Path, records, parts: dict) -> None:
    """Each clip's logits (before the temperature), label, corpus and speaker, for the parts named
    {"validation": (indices, (logits, targets, rows)), "test": ...}: what later analyses (seeds
    together, a class prior) read without running the encoders again. rows index `indices`."""
    arrays = {}
    for part, (indices, (logits, targets, rows)) in parts.items():
        chosen = [records[indices[r]] for r in rows]
        arrays.update({f"{part}/logits": logits, f"{part}/targets": targets,
                       f"{part}/corpus": np.array([r.corpus for r in chosen]),
                       f"{part}/speaker": np.array([r.speaker for r in chosen]),
                       f"{part}/id": np.array([r.id for r in chosen])})

    def write(tmp):
        with open(tmp, "wb") as f:   # a file object: np.savez would add ".npz" to the temporary name
            np.savez(f, **arrays)
    atomic_write(path, write)
