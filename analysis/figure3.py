"""The paper's Figure 3: a 2-D UMAP of speech and text representations, coloured by emotion,
dark = speech, light = text of the same emotion; one panel per alignment setting, with numbers
behind the picture (analysis.alignment's retrieval, pair/random distance, silhouette) in each
panel's title. Any representation space can be drawn: fused (what the classifier sees), mu,
instance, projected, encoder."""
from __future__ import annotations

import numpy as np

from .alignment import alignment_metrics, normalise

# tab20 pairs: (dark, light) per emotion
PALETTE = [("#1f77b4", "#aec7e8"), ("#ff7f0e", "#ffbb78"), ("#2ca02c", "#98df8a"), ("#d62728", "#ff9896"),
           ("#9467bd", "#c5b0d5"), ("#8c564b", "#c49c94"), ("#e377c2", "#f7b6d2"), ("#7f7f7f", "#c7c7c7")]


def umap_2d(speech: np.ndarray, text: np.ndarray, seed: int = 0):
    """Joint map of both modalities -> (speech (N, 2), text (N, 2))."""
    import umap
    joint = normalise(np.concatenate([speech, text]))
    reducer = umap.UMAP(n_neighbors=15, min_dist=0.1, metric="euclidean", random_state=seed, n_jobs=1)
    coords = reducer.fit_transform(joint)
    return coords[:len(speech)], coords[len(speech):]


def space_vectors(embeddings, space: str):
    """(speech, text) vectors of one representation space (see analysis.alignment)."""
    if embeddings.spaces and space in embeddings.spaces:
        return embeddings.spaces[space]
    if space == "fused":
        return embeddings.speech, embeddings.text
    raise ValueError(f"these embeddings have no {space!r} space; they have: fused"
                     + "".join(f", {k}" for k in (embeddings.spaces or {}) if k != "fused"))


def panel_title(name: str, m: dict) -> str:
    pair = (f"pair {m['pair_distance']:.2f} vs random {m['random_distance']:.2f}, R@1 {m['r_at_1']:.2f}"
            if "pair_distance" in m else "no shared space")
    sil = "/".join("-" if m[k] is None else f"{m[k]:.2f}" for k in ("silhouette_speech", "silhouette_text"))
    return f"{name}\n{pair}\nsilhouette speech/text {sil}"


def figure3(panels: dict, seed: int = 0, space: str | dict = "fused", columns: int | None = None):
    """panels: name -> Embeddings, drawn in one representation space (`space`), or each in its own
    ({name: space}; then each panel keeps its own axes), `columns` panels a row. Returns (matplotlib figure,
    {name: metrics of analysis.alignment}, {name: coords})."""
    import matplotlib.pyplot as plt
    missing = [n for n in panels if panels[n] is None]   # a space the model lacks (its module is off)
    names = [n for n in panels if panels[n] is not None]
    spaces = space if isinstance(space, dict) else {n: space for n in names}
    vectors = {n: space_vectors(panels[n], spaces[n]) for n in names}
    coords = {n: umap_2d(*vectors[n], seed) for n in names}
    metrics = {n: alignment_metrics(*vectors[n], panels[n].labels, panels[n].texts) for n in names}
    emotions = sorted({l for n in names for l in panels[n].labels}, key=lambda e: list(panels[names[0]].labels).index(e)
                      if e in panels[names[0]].labels else 99)
    all_xy = np.concatenate([np.concatenate(c) for c in coords.values()])
    pad = 0.05 * (all_xy.max(0) - all_xy.min(0))
    lo, hi = all_xy.min(0) - pad, all_xy.max(0) + pad
    cols = columns or len(panels)
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 4.3 * rows + 0.4), squeeze=False)
    slots = dict(zip(panels, axes.flat))
    for ax in list(axes.flat[len(panels):]) + [slots[n] for n in missing]:
        ax.axis("off")
    for n in missing:
        slots[n].set_title(f"{n}\n(no such space: the module is off)", fontsize=9)
    shared = len(set(spaces.values())) == 1
    for n in names:
        ax = slots[n]
        labels = np.array(panels[n].labels)
        for i, emotion in enumerate(emotions):
            dark, light = PALETTE[i % len(PALETTE)]
            m = labels == emotion
            ax.scatter(*coords[n][1][m].T, s=7, color=light, label=f"{emotion} (text)", alpha=0.8, linewidths=0)
            ax.scatter(*coords[n][0][m].T, s=7, color=dark, label=f"{emotion} (speech)", alpha=0.8, linewidths=0)
        ax.set_title(panel_title(n, metrics[n]), fontsize=9)
        ax.set(xticks=[], yticks=[])
        if shared:   # one space: the same axes, so that panels compare
            ax.set(xlim=(lo[0], hi[0]), ylim=(lo[1], hi[1]))
        ax.set_xlabel("UMAP 1")
    for ax in axes[:, 0]:
        ax.set_ylabel("UMAP 2")
    handles, labs = slots[names[0]].get_legend_handles_labels()
    fig.legend(handles, labs, loc="lower center", ncol=min(8, len(labs)), fontsize=8, markerscale=2.5, frameon=False)
    fig.tight_layout(rect=(0, 0.08 / rows, 1, 1))
    return fig, metrics, coords


def figure3_plotly(panels: dict, coords: dict):
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots
    names = list(panels)
    fig = make_subplots(rows=1, cols=len(names), subplot_titles=names)
    emotions = list(dict.fromkeys(panels[names[0]].labels))
    for c, n in enumerate(names, start=1):
        labels = np.array(panels[n].labels)
        for i, emotion in enumerate(emotions):
            m = labels == emotion
            for kind, xy, colour in (("speech", coords[n][0], PALETTE[i % 8][0]), ("text", coords[n][1], PALETTE[i % 8][1])):
                fig.add_trace(go.Scattergl(x=xy[m, 0], y=xy[m, 1], mode="markers", marker=dict(size=4, color=colour),
                                           name=f"{emotion} ({kind})", legendgroup=f"{emotion}{kind}",
                                           showlegend=c == 1), 1, c)
    fig.update_layout(height=480, title="speech (dark) and text (light) representations, UMAP")
    return fig
