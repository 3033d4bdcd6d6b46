"""The speech and text Gaussians of one utterance, where they differ most, with W2 and Sim;
and, over a dataset, W2 of matched vs. mismatched speech-text pairs."""
from __future__ import annotations

import numpy as np

SPEECH_COLOUR, TEXT_COLOUR = "#1f4e9c", "#e07b39"


def top_dimensions(mu_s, sigma_s, mu_t, sigma_t, k: int = 4) -> np.ndarray:
    """The k dimensions with the largest share of W2^2 = sum_i (mu_s - mu_t)_i^2 + (sigma_s - sigma_t)_i^2."""
    contribution = (mu_s - mu_t) ** 2 + (sigma_s - sigma_t) ** 2
    return np.argsort(-contribution)[:k]


def closeness_text(w2: float, reference: tuple | None) -> str:
    """What "close" means for this W2 on the reference set's own and mismatched pairs."""
    if reference is None:
        return "no reference set: W2 alone"
    own, other = (np.asarray(x) for x in reference)
    return (f"smaller than {100 * np.mean(other > w2):.0f} % of mismatched pairs' W2 "
            f"and {100 * np.mean(own > w2):.0f} % of matched pairs' (reference set)")


def gaussian_figure(mu_s, sigma_s, mu_t, sigma_t, w2: float, sim: float, k: int = 8, reference: tuple | None = None):
    """matplotlib: means +- sigma of both Gaussians on the k dimensions that add most to W2; and this
    clip's W2 against the reference set's matched and mismatched pairs (`reference` = (own, other))."""
    import matplotlib.pyplot as plt
    dims = top_dimensions(mu_s, sigma_s, mu_t, sigma_t, k)
    share = (mu_s - mu_t) ** 2 + (sigma_s - sigma_t) ** 2
    share = share / max(share.sum(), 1e-12)
    fig, (ax, hist) = plt.subplots(1, 2, figsize=(10, 0.32 * len(dims) + 2.4), gridspec_kw=dict(width_ratios=[3, 2]))
    y = np.arange(len(dims))
    for offset, mu, sigma, colour, name in ((-0.15, mu_s, sigma_s, SPEECH_COLOUR, "speech"),
                                            (0.15, mu_t, sigma_t, TEXT_COLOUR, "text")):
        ax.errorbar(mu[dims], y + offset, xerr=sigma[dims], fmt="o", color=colour, capsize=3, label=f"{name}: mean ± σ")
    ax.set_yticks(y, [f"dim {d} ({100 * share[d]:.0f} % of W2²)" for d in dims], fontsize=8)
    ax.invert_yaxis()
    ax.axvline(0, color="grey", lw=0.5)
    ax.set(xlabel="value", title="the dimensions where speech and text differ most")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2)
    draw_w2_reference(hist, w2, reference)
    fig.suptitle(f"W2(speech, text) = {w2:.2f}, Sim = {sim:.2f}\n{closeness_text(w2, reference)}", fontsize=10)
    fig.tight_layout()
    return fig


def draw_w2_reference(ax, w2: float, reference: tuple | None):
    if reference is not None:
        own, other = (np.asarray(x) for x in reference)
        bins = np.linspace(0, np.percentile(np.concatenate([own, other, [w2]]), 99.5), 40)
        ax.hist(other, bins=bins, density=True, alpha=0.5, color="grey", label="mismatched pairs")
        ax.hist(own, bins=bins, density=True, alpha=0.6, color=SPEECH_COLOUR, label="matched pairs")
    ax.axvline(w2, color="black", lw=2, label="this clip")
    ax.set(xlabel="W2", yticks=[], title="W2 on the reference set")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=3)


def gaussian_plotly(mu_s, sigma_s, mu_t, sigma_t, w2: float, sim: float, k: int = 8, reference: tuple | None = None):
    """plotly version of gaussian_figure, for the app."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots
    dims = top_dimensions(mu_s, sigma_s, mu_t, sigma_t, k)
    names = [f"dim {d}" for d in dims]
    fig = make_subplots(rows=1, cols=2, column_widths=[0.6, 0.4], horizontal_spacing=0.12,
                        subplot_titles=("means ± σ where speech and text differ most", "W2 on the reference set"))
    for mu, sigma, colour, name in ((mu_s, sigma_s, SPEECH_COLOUR, "speech"), (mu_t, sigma_t, TEXT_COLOUR, "text")):
        fig.add_trace(go.Scatter(x=mu[dims], y=names, mode="markers", marker=dict(color=colour, size=8), name=name,
                                 error_x=dict(type="data", array=sigma[dims], color=colour)), 1, 1)
    fig.update_yaxes(autorange="reversed", row=1, col=1)
    if reference is not None:
        for values, colour, name in ((reference[1], "grey", "mismatched pairs"), (reference[0], SPEECH_COLOUR, "matched pairs")):
            fig.add_trace(go.Histogram(x=np.asarray(values), histnorm="probability density", marker_color=colour,
                                       opacity=0.55, name=name, nbinsx=40), 1, 2)
        fig.update_layout(barmode="overlay")
    fig.add_vline(x=w2, line=dict(color="black", width=2), row=1, col=2)
    fig.update_yaxes(showticklabels=False, row=1, col=2)
    fig.update_layout(title=dict(text=f"W2 = {w2:.2f}, Sim = {sim:.2f}<br><sup>{closeness_text(w2, reference)}</sup>",
                                 font=dict(size=14), x=0.01),
                      height=380, margin=dict(l=10, r=10, t=90, b=30), legend=dict(orientation="h", y=-0.15))
    return fig


def w2_pairs_figure(w2: np.ndarray):
    """Histogram of W2 for matched pairs (speech i, text i) vs. mismatched (speech i, text j != i)."""
    import matplotlib.pyplot as plt
    n = w2.shape[0]
    matched = np.diag(w2)
    mismatched = w2[~np.eye(n, dtype=bool)]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    bins = np.linspace(0, np.percentile(w2, 99.5), 50)
    ax.hist(mismatched, bins=bins, density=True, alpha=0.6, color="grey", label=f"mismatched ({mismatched.size})")
    ax.hist(matched, bins=bins, density=True, alpha=0.7, color=SPEECH_COLOUR, label=f"matched ({n})")
    ax.set(xlabel="W2(speech, text)", ylabel="density",
           title=f"median W2: matched {np.median(matched):.2f}, mismatched {np.median(mismatched):.2f}")
    ax.legend()
    fig.tight_layout()
    return fig
