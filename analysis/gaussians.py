"""The speech and text Gaussians of one utterance, where they differ most, with W2 and Sim;
and, over a dataset, W2 of matched vs. mismatched speech-text pairs."""
from __future__ import annotations

import numpy as np

SPEECH_COLOUR, TEXT_COLOUR = "#1f4e9c", "#e07b39"


def top_dimensions(mu_s, sigma_s, mu_t, sigma_t, k: int = 4) -> np.ndarray:
    """The k dimensions with the largest share of W2^2 = sum_i (mu_s - mu_t)_i^2 + (sigma_s - sigma_t)_i^2."""
    contribution = (mu_s - mu_t) ** 2 + (sigma_s - sigma_t) ** 2
    return np.argsort(-contribution)[:k]


def density(x, mu, sigma):
    return np.exp(-0.5 * ((x - mu) / sigma) ** 2) / (sigma * np.sqrt(2 * np.pi))


def gaussian_figure(mu_s, sigma_s, mu_t, sigma_t, w2: float, sim: float, k: int = 4):
    """matplotlib: k 1-D densities (largest W2 contributions) and the 2-D view of the top two
    dimensions with 1- and 2-sigma ellipses (axis-aligned: the covariances are diagonal)."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Ellipse
    dims = top_dimensions(mu_s, sigma_s, mu_t, sigma_t, k)
    share = ((mu_s - mu_t) ** 2 + (sigma_s - sigma_t) ** 2)
    share = share / max(share.sum(), 1e-12)
    fig, axes = plt.subplots(1, len(dims) + 1, figsize=(3.2 * (len(dims) + 1), 3.2))
    for ax, d in zip(axes, dims):
        lo = min(mu_s[d] - 3.5 * sigma_s[d], mu_t[d] - 3.5 * sigma_t[d])
        hi = max(mu_s[d] + 3.5 * sigma_s[d], mu_t[d] + 3.5 * sigma_t[d])
        x = np.linspace(lo, hi, 300)
        for mu, sigma, colour, name in ((mu_s, sigma_s, SPEECH_COLOUR, "speech"), (mu_t, sigma_t, TEXT_COLOUR, "text")):
            y = density(x, mu[d], sigma[d])
            ax.plot(x, y, color=colour, label=name)
            ax.fill_between(x, y, color=colour, alpha=0.2)
        ax.set_title(f"dimension {d} ({100 * share[d]:.0f} % of W2²)", fontsize=9)
        ax.set_yticks([])
    axes[0].legend(fontsize=8)
    ax = axes[-1]
    a, b = dims[:2] if len(dims) > 1 else (dims[0], dims[0])
    for mu, sigma, colour, name in ((mu_s, sigma_s, SPEECH_COLOUR, "speech"), (mu_t, sigma_t, TEXT_COLOUR, "text")):
        for n_sigma, alpha in ((1, 0.35), (2, 0.15)):
            ax.add_patch(Ellipse((mu[a], mu[b]), 2 * n_sigma * sigma[a], 2 * n_sigma * sigma[b],
                                 color=colour, alpha=alpha, label=f"{name} {n_sigma}σ"))
        ax.plot(mu[a], mu[b], "o", color=colour)
    ax.autoscale_view()
    ax.set(xlabel=f"dimension {a}", ylabel=f"dimension {b}", title="top two dimensions")
    ax.legend(fontsize=7, loc="best")
    fig.suptitle(f"speech vs. text Gaussian: W2 = {w2:.3f}, Sim = {sim:.3f}")
    fig.tight_layout()
    return fig


def gaussian_plotly(mu_s, sigma_s, mu_t, sigma_t, w2: float, sim: float, k: int = 4):
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots
    dims = top_dimensions(mu_s, sigma_s, mu_t, sigma_t, k)
    fig = make_subplots(rows=1, cols=len(dims), subplot_titles=[f"dimension {d}" for d in dims])
    for c, d in enumerate(dims, start=1):
        lo = min(mu_s[d] - 3.5 * sigma_s[d], mu_t[d] - 3.5 * sigma_t[d])
        hi = max(mu_s[d] + 3.5 * sigma_s[d], mu_t[d] + 3.5 * sigma_t[d])
        x = np.linspace(lo, hi, 200)
        for mu, sigma, colour, name in ((mu_s, sigma_s, SPEECH_COLOUR, "speech"), (mu_t, sigma_t, TEXT_COLOUR, "text")):
            fig.add_trace(go.Scatter(x=x, y=density(x, mu[d], sigma[d]), fill="tozeroy", line=dict(color=colour),
                                     name=name, legendgroup=name, showlegend=c == 1), 1, c)
        fig.update_yaxes(showticklabels=False, row=1, col=c)
    fig.update_layout(title=dict(text=f"W2 = {w2:.2f}, Sim = {sim:.2f}<br><sup>the dimensions where speech and "
                                      f"text differ most</sup>", font=dict(size=15)),
                      height=320, margin=dict(l=10, r=10, t=80, b=30))
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
