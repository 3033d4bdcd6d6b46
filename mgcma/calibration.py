"""Honest confidence: a temperature fitted on validation only, the expected calibration error,
and the threshold below which the recogniser says "not sure".

Temperature scaling (Guo et al. 2017) divides the logits by one number T > 0 chosen to minimise
the validation cross-entropy; it changes no label, only how sure each answer says it is. With
several corpora, each corpus weighs the same (as in model selection), in the temperature, the
threshold and the ECE reported for the fit alike: otherwise a words corpus of thousands of rows
would choose the threshold and hide the spoken corpora's ECE. The "not sure" threshold is the top
probability below which answering does more harm than good on validation: it maximises (right
answers - wrong answers) over the answers given, so an answer is kept where it is more likely right
than wrong.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .metrics import percentiles

ECE_BINS = 15


@dataclass
class Calibration:
    temperature: float
    not_sure_below: float
    ece_before: float       # on the data it was fitted on (the mean over its groups)
    ece_after: float
    n: int

    @property
    def ece_change(self) -> str:
        return f"ECE (mean over corpora) {100 * self.ece_before:.1f} -> {100 * self.ece_after:.1f} %"


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Over the last axis, in NumPy: SciPy's import would cost the app's start 0.4 s."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def group_weights(groups, n: int) -> np.ndarray:
    """(n,) row weights summing to 1 within each group, so that every group weighs the same."""
    groups = np.zeros(n, dtype=int) if groups is None else np.asarray(groups)
    _, which, counts = np.unique(groups, return_inverse=True, return_counts=True)
    return 1.0 / counts[which]


def fit_temperature(logits: np.ndarray, targets: np.ndarray, groups=None) -> float:
    """T minimising the mean (over groups) cross-entropy of softmax(logits / T); logits (N, C)."""
    from scipy.optimize import minimize_scalar  # here: the app never fits (see log_softmax)
    logits, targets = np.asarray(logits, dtype=np.float64), np.asarray(targets)
    weight = group_weights(groups, len(targets))

    def loss(log_t):
        nll = -log_softmax(logits / np.exp(log_t))[np.arange(len(targets)), targets]
        return float(nll @ weight / weight.sum())
    return float(np.exp(minimize_scalar(loss, bounds=(-3.0, 3.0), method="bounded").x))


def fit_class_bias(logits: np.ndarray, targets: np.ndarray, groups=None, temperature: float = 1.0) -> np.ndarray:
    """(C,) added to logits / T: minimises the cross-entropy with every class of every group weighing
    the same, a prior correction towards answers that favour no class on the data it is fitted on."""
    from scipy.optimize import minimize
    scaled, targets = np.asarray(logits, dtype=np.float64) / temperature, np.asarray(targets)
    groups = np.zeros(len(targets), dtype=int) if groups is None else np.asarray(groups)
    cells = [(groups == g) & (targets == c) for g in np.unique(groups) for c in np.unique(targets)]
    cells = [cell for cell in cells if cell.any()]

    def loss(bias):
        nll = -log_softmax(scaled + bias)[np.arange(len(targets)), targets]
        return float(np.mean([nll[cell].mean() for cell in cells]))
    bias = minimize(loss, np.zeros(scaled.shape[1]), method="L-BFGS-B").x
    return bias - bias.mean()   # a shift of every class alike changes nothing


def calibrated(logits: np.ndarray, temperature: float | np.ndarray = 1.0) -> np.ndarray:
    """softmax(logits / T) over the last axis; T one number, or (N, 1): each row's own."""
    return np.exp(log_softmax(np.asarray(logits, dtype=np.float64) / temperature))


def bin_of(top: np.ndarray, bins: int = ECE_BINS) -> np.ndarray:
    """The equal-width bin (0 .. bins-1) of each top probability."""
    return np.clip(np.digitize(top, np.linspace(0.0, 1.0, bins + 1)[1:-1], right=True), 0, bins - 1)


def reliability(probs: np.ndarray, targets: np.ndarray, bins: int = ECE_BINS) -> list[dict]:
    """Per equal-width bin of the top probability: its range, count, mean confidence and accuracy."""
    top, right = probs.max(1), probs.argmax(1) == np.asarray(targets)
    edges, which = np.linspace(0.0, 1.0, bins + 1), bin_of(top, bins)
    return [dict(low=float(edges[b]), high=float(edges[b + 1]), n=int((which == b).sum()),
                 confidence=float(top[which == b].mean()) if (which == b).any() else None,
                 accuracy=float(right[which == b].mean()) if (which == b).any() else None) for b in range(bins)]


def expected_calibration_error(probs: np.ndarray, targets: np.ndarray, bins: int = ECE_BINS, groups=None) -> float:
    """Sum over bins of (bin share) x |accuracy - confidence|, bins of the top probability; with
    `groups`, the mean of each group's own ECE."""
    if groups is not None:
        groups, targets = np.asarray(groups), np.asarray(targets)
        return float(np.mean([expected_calibration_error(probs[groups == g], targets[groups == g], bins)
                              for g in np.unique(groups)]))
    cells = reliability(probs, targets, bins)
    n = sum(c["n"] for c in cells)
    return float(sum(c["n"] / n * abs(c["accuracy"] - c["confidence"]) for c in cells if c["n"]))


def ece_by_chance(top: np.ndarray, measured: float, draws: int = 1000, seed: int = 0, bins: int = ECE_BINS) -> dict:
    """The ECE that a model right exactly as often as it says would still show on these answers, by
    chance alone: in each of `draws` simulated test sets answer i is right with probability top[i],
    its own confidence. -> {low, median, high} (5th, 50th, 95th percentiles) and the share of those
    test sets whose ECE reaches the `measured` one: where that share is not small, the measured ECE is
    no evidence of miscalibration (on a couple of hundred clips the range is points wide)."""
    top = np.asarray(top, dtype=np.float64)
    which = bin_of(top, bins)
    right = np.random.default_rng(seed).random((draws, len(top))) < top       # (draws, N)
    # the ECE is the sum over bins of |right answers - summed confidence| in the bin, over N
    gaps = [right[:, which == b].sum(1) - top[which == b].sum() for b in np.unique(which)]   # each (draws,)
    ece = np.abs(np.stack(gaps, 1)).sum(1) / len(top)
    return dict(percentiles(ece), share_reaching_measured=float(np.mean(ece >= measured - 1e-12)))


def not_sure_threshold(probs: np.ndarray, targets: np.ndarray, groups=None) -> float:
    """The top probability below which answers are withheld: maximises right - wrong answered
    (each group's answers weighing the same in all)."""
    top, right = probs.max(1), probs.argmax(1) == np.asarray(targets)
    order = np.argsort(top)
    weight = group_weights(groups, len(top))[order]
    # withholding the k least sure answers gains (their wrong) - (their right)
    gain = np.concatenate([[0], np.cumsum(np.where(right[order], -weight, weight))])
    sorted_top = top[order]
    gain[1:-1][sorted_top[:-1] == sorted_top[1:]] = -np.inf     # a cut between equal answers keeps them all
    k = int(np.argmax(gain))
    return 0.0 if k == 0 else float((sorted_top[k - 1] + (sorted_top[k] if k < len(top) else 1.0)) / 2)


def top_two(probabilities: dict[str, float]) -> list[tuple[str, float]]:
    """The two likeliest labels with their probabilities: what a "not sure" answer names."""
    return sorted(probabilities.items(), key=lambda kv: -kv[1])[:2]


def accuracy_coverage(probs: np.ndarray, targets: np.ndarray, thresholds=None) -> list[dict]:
    """For each threshold: the share of clips answered (top probability >= threshold) and the accuracy on them."""
    top, right = probs.max(1), probs.argmax(1) == np.asarray(targets)
    thresholds = np.round(np.linspace(0.25, 0.95, 15), 3) if thresholds is None else thresholds
    rows = []
    for t in thresholds:
        kept = top >= t
        rows.append(dict(threshold=float(t), coverage=float(kept.mean()),
                         accuracy=float(right[kept].mean()) if kept.any() else None))
    return rows


def calibrate(logits: np.ndarray, targets: np.ndarray, groups=None) -> Calibration:
    t = fit_temperature(logits, targets, groups)
    before, after = calibrated(logits), calibrated(logits, t)
    return Calibration(temperature=t, not_sure_below=not_sure_threshold(after, targets, groups),
                       ece_before=expected_calibration_error(before, targets, groups=groups),
                       ece_after=expected_calibration_error(after, targets, groups=groups), n=len(targets))


def confidence_scores(logits: np.ndarray, targets: np.ndarray, config, temperatures: np.ndarray | None = None) -> dict:
    """ECE before and after the temperature (`temperatures`: each answer's own, else the config's);
    the share answered above the "not sure" threshold and their accuracy."""
    temperature = config.temperature if temperatures is None else np.asarray(temperatures, dtype=np.float64)[:, None]
    probs, raw = calibrated(logits, temperature), calibrated(logits)
    answered = probs.max(1) >= config.not_sure_below
    right = probs.argmax(1) == targets
    return dict(ECE=expected_calibration_error(probs, targets), ECE_uncalibrated=expected_calibration_error(raw, targets),
                answered=float(answered.mean()), accuracy_answered=float(right[answered].mean()) if answered.any() else None)
