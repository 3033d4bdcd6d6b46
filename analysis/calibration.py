"""Reliability diagrams (before and after the temperature, with where a calibrated model would land
by chance) and the accuracy-coverage curve, from the calibration that `python -m mgcma.evaluate
--out FILE.json` records."""
from __future__ import annotations

import matplotlib.pyplot as plt


def bars(ax, cells: list[dict], colour: str, label: str, offset: float) -> None:
    width = (cells[0]["high"] - cells[0]["low"]) * 0.4
    for c in cells:
        if c["n"]:
            mid = (c["low"] + c["high"]) / 2
            ax.bar(mid + offset * width, c["accuracy"], width=width, color=colour, alpha=0.8,
                   label=label if c is next(x for x in cells if x["n"]) else None)


def chance_bars(ax, cells: list[dict], offset: float) -> None:
    """Where a model right exactly as often as it says would land in each bin by chance: the 5th-95th
    percentile of Binomial(n, the bin's confidence) / n. A bar beyond it is more than chance."""
    from scipy.stats import binom
    width = (cells[0]["high"] - cells[0]["low"]) * 0.4
    shown = [c for c in cells if c["n"]]
    for c in shown:
        x = (c["low"] + c["high"]) / 2 + offset * width
        low, high = binom.ppf([0.05, 0.95], c["n"], c["confidence"]) / c["n"]
        ax.plot([x, x], [low, high], color="black", lw=1.6, solid_capstyle="butt",
                label="a calibrated model, by chance (5-95 %)" if c is shown[0] else None)


def calibration_figure(reports: dict[str, dict]):
    """reports: {name: an evaluate JSON's "calibration"} -> one row per report: the reliability
    diagram before and after the temperature, and the accuracy-coverage curve."""
    fig, axes = plt.subplots(len(reports), 2, figsize=(10.5, 3.6 * len(reports)), squeeze=False)
    for (name, c), (rel, cov) in zip(reports.items(), axes):
        rel.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
        bars(rel, c["reliability_uncalibrated"], "tab:grey", f"before: ECE {100 * c['ECE_uncalibrated']:.1f} %", -0.5)
        chance = c.get("ECE_by_chance")   # written by evaluate since 2026-12-07
        bars(rel, c["reliability"], "tab:blue", f"temperature {c['temperature']:.2f}: ECE {100 * c['ECE']:.1f} %"
             + (f" (by chance {100 * chance['low']:.1f}-{100 * chance['high']:.1f})" if chance else ""), 0.5)
        chance_bars(rel, c["reliability"], 0.5)
        rel.set(xlim=(0.2, 1), ylim=(0, 1.5), yticks=[0, 0.2, 0.4, 0.6, 0.8, 1.0],
                xlabel="confidence (top probability, 15 bins)", ylabel="accuracy in bin", title=f"{name}: reliability")
        rel.legend(fontsize=7.5, loc="upper left")   # above the bars: room left by the y limit
        points = [p for p in c["accuracy_coverage"] if p["accuracy"] is not None]
        cov.plot([100 * p["coverage"] for p in points], [100 * p["accuracy"] for p in points], "o-", color="tab:blue")
        for p in points[::2]:
            cov.annotate(f"{p['threshold']:.2f}", (100 * p["coverage"], 100 * p["accuracy"]), fontsize=7,
                         xytext=(3, 3), textcoords="offset points")
        cov.axvline(100 * c["answered"], color="tab:red", ls=":",
                    label=f"'not sure' below {c['not_sure_below']:.2f}: {100 * c['answered']:.0f} % answered, "
                          f"{100 * (c['accuracy_answered'] or 0):.0f} % right")
        cov.set(xlabel="clips answered (%)", ylabel="accuracy on them (%)", title=f"{name}: accuracy vs coverage",
                xlim=(0, 102))
        cov.legend(fontsize=8, loc="lower left")
        for ax in (rel, cov):
            ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
