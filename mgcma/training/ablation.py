"""The ablation settings (MGCMA with and without each alignment module) and their table: mean +- std
over every seed x fold, and each setting's paired UA difference to the full model and to plain
fusion (Wilcoxon signed-rank over the same seeds and folds). The command: python -m mgcma.ablate."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy import stats

SETTINGS = {
    "full": {},
    "no-dist": dict(use_dist=False),
    "no-token": dict(use_token=False),
    "no-inst": dict(use_inst=False),
    "none": dict(use_dist=False, use_token=False, use_inst=False),
}
UNIMODAL = {"speech-only": dict(modality="speech"), "text-only": dict(modality="text")}
# chosen by name only: the pair losses' positives by emotion label (a supervised cross-modal contrast)
VARIANTS = {"full-label": dict(dist_positives="label", inst_positives="label")}
DESCRIPTIONS = {"full": "MGCMA (all three modules)", "no-dist": "without distribution alignment",
                "no-token": "without token alignment", "no-inst": "without instance alignment",
                "none": "no alignment (plain fusion)", "speech-only": "speech only", "text-only": "text only",
                "full-label": "all three modules, positives by emotion label"}


def answer_scores(metrics: dict, answer: str) -> dict | None:
    """The test scores of one answer: "both", or "speech" / "text" (a two-modality model with
    the other side hidden; a unimodal model of that modality answers as it is)."""
    if answer == "both" or metrics["config"]["modality"] == answer:
        return metrics
    if metrics["config"]["modality"] == "both":
        return metrics.get("by_modality", {}).get(answer)
    return None


def setting_runs(root: Path, name: str, seeds=None, answer: str = "both") -> list[dict]:
    """Every finished (seed, fold) test score of a setting (of the given seeds) and its training
    time, from its folds' metrics.json, so that a stopped ablation reports what it has."""
    runs = []
    for path in sorted((root / name).glob("**/fold-*/metrics.json")):
        m = json.loads(path.read_text())
        scores = answer_scores(m, answer)
        if scores is not None and (seeds is None or m["config"]["seed"] in seeds):
            runs.append(dict(seed=m["config"]["seed"], fold=m["fold"], UA=scores["UA"], WA=scores["WA"],
                             seconds=sum(h["seconds"] for h in m["history"])))   # its epochs, training and validation
    return runs


def paired_test(full: list[dict], other: list[dict]) -> dict | None:
    """UA difference to the full model over the (seed, fold) pairs both have, with the Wilcoxon
    signed-rank p (two-sided; None when every difference is 0 or fewer than 2 pairs)."""
    mine = {(r["seed"], r["fold"]): r["UA"] for r in other}
    pairs = [(mine[k], r["UA"]) for r in full if (k := (r["seed"], r["fold"])) in mine]
    if not pairs:
        return None
    diff = np.array([a - b for a, b in pairs])
    p = None
    if len(diff) > 1 and np.any(diff != 0):
        p = float(stats.wilcoxon(diff).pvalue)
    return dict(n=len(diff), mean=float(diff.mean()), std=float(diff.std()), p=p)


def earlier_runs(path: str | Path | None, name: str, seeds=None, answer: str = "both") -> list[dict]:
    """A setting's runs as recorded in an earlier ablation.json (its run folders gone, e.g. with
    another machine), without training times: those are taken from runs timed here only.
    The record holds the main answer only."""
    if path is None or answer != "both":
        return []
    runs = json.loads(Path(path).read_text()).get(name, {}).get("runs", [])
    return [dict(r, seconds=None) for r in runs if seeds is None or r["seed"] in seeds]


def ablation_summary(root: str | Path, seeds=None, earlier: str | Path | None = None, answer: str = "both") -> dict:
    """{setting: {runs, UA/WA mean and std over every (seed, fold), versus_full, seconds and
    timed (the runs with a training time)}}. `earlier`: an earlier ablation.json whose runs
    count where the folders lack that (seed, fold). `answer`: see answer_scores."""
    root = Path(root)
    out = {}
    for name in list(SETTINGS) + list(VARIANTS) + list(UNIMODAL):
        runs = setting_runs(root, name, seeds, answer)
        here = {(r["seed"], r["fold"]) for r in runs}
        runs += [r for r in earlier_runs(earlier, name, seeds, answer) if (r["seed"], r["fold"]) not in here]
        if runs:
            runs.sort(key=lambda r: (r["seed"], r["fold"]))
            ua, wa = np.array([r["UA"] for r in runs]), np.array([r["WA"] for r in runs])
            timed = [r["seconds"] for r in runs if r["seconds"] is not None]
            out[name] = dict(runs=runs, UA_mean=float(ua.mean()), UA_std=float(ua.std()), WA_mean=float(wa.mean()),
                             WA_std=float(wa.std()), seconds=float(sum(timed)), timed=len(timed))
    for name, s in out.items():
        for reference in ("full", "none"):
            s[f"versus_{reference}"] = (paired_test(out[reference]["runs"], s["runs"])
                                        if name != reference and reference in out else None)
    return out


def paired_cell(v: dict | None) -> str:
    if not v:
        return ""
    p = "" if v["p"] is None else f", p={v['p']:.3f}" if v["p"] >= 0.001 else ", p<0.001"
    return f"{100 * v['mean']:+.2f} +- {100 * v['std']:.2f} (n={v['n']}{p})"


def timing_cell(s: dict) -> str:
    if not s["timed"]:
        return "not timed here"
    partly = f" ({s['timed']} of {len(s['runs'])} runs timed)" if s["timed"] < len(s["runs"]) else ""
    return f"{s['seconds'] / 60:.1f} min{partly}"


def ablation_table(summary: dict) -> str:
    """Markdown of an ablation_summary: mean +- std over every seed x fold; the paired difference
    to the full model and to plain fusion, with its Wilcoxon p; the training time of the runs timed
    (all of them unless some come from an earlier record)."""
    rows = ["| setting | runs (seeds x folds) | WA % | UA % | UA - full (paired) | UA - no alignment (paired) | training time |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, s in summary.items():
        rows.append(f"| {DESCRIPTIONS[name]} | {len(s['runs'])} | {100 * s['WA_mean']:.2f} +- {100 * s['WA_std']:.2f} "
                    f"| {100 * s['UA_mean']:.2f} +- {100 * s['UA_std']:.2f} | {paired_cell(s['versus_full'])} "
                    f"| {paired_cell(s['versus_none'])} | {timing_cell(s)} |")
    return "\n".join(rows) + "\n"


def versus_table(summary: dict, reference: dict, name: str) -> str:
    """Markdown: each setting against the same setting of another ablation (its ablation.json, e.g.
    with frozen encoders), over the (seed, fold) pairs both ran."""
    rows = [f"| setting | pairs | UA % here | UA % {name} | here - {name} (paired) |", "| --- | --- | --- | --- | --- |"]
    for setting, s in summary.items():
        theirs = {(r["seed"], r["fold"]): r["UA"] for r in reference.get(setting, {}).get("runs", [])}
        pairs = np.array([(r["UA"], theirs[k]) for r in s["runs"] if (k := (r["seed"], r["fold"])) in theirs])
        if len(pairs):
            here, there = 100 * pairs.T
            rows.append(f"| {DESCRIPTIONS[setting]} | {len(pairs)} | {here.mean():.2f} +- {here.std():.2f} "
                        f"| {there.mean():.2f} +- {there.std():.2f} | {paired_cell(paired_test(reference[setting]['runs'], s['runs']))} |")
    return "\n".join(rows) + "\n"


def chosen_settings(spec: str, unimodal: bool) -> dict:
    every = {**SETTINGS, **UNIMODAL, **VARIANTS}
    if spec == "all":
        return dict(SETTINGS, **(UNIMODAL if unimodal else {}))
    names = spec.split(",")
    unknown = [n for n in names if n not in every]
    if unknown:
        raise ValueError(f"unknown setting(s) {unknown}; choose from {', '.join(every)}")
    return {n: every[n] for n in names}
