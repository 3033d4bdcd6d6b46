"""The paper's Figure 3: a 2-D UMAP of speech and text representations, coloured by emotion,
dark = speech, light = text of the same emotion; one panel per alignment setting, with numbers
behind the picture (speech-text pair distance, silhouette by emotion)."""
from __future__ import annotations

import numpy as np
from sklearn.metrics import silhouette_score

# tab20 pairs: (dark, light) per emotion
PALETTE = [("#1f77b4", "#aec7e8"), ("#ff7f0e", "#ffbb78"), ("#2ca02c", "#98df8a"), ("#d62728", "#ff9896"),
           ("#9467bd", "#c5b0d5"), ("#8c564b", "#c49c94"), ("#e377c2", "#f7b6d2"), ("#7f7f7f", "#c7c7c7")]


def normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def umap_2d(speech: np.ndarray, text: np.ndarray, seed: int = 0):
    """Joint map of both modalities -> (speech (N, 2), text (N, 2))."""
    import umap
    joint = normalise(np.concatenate([speech, text]))
    reducer = umap.UMAP(n_neighbors=15, min_dist=0.1, metric="euclidean", random_state=seed, n_jobs=1)
    coords = reducer.fit_transform(joint)
    return coords[:len(speech)], coords[len(speech):]


def alignment_metrics(speech: np.ndarray, text: np.ndarray, labels: list[str]) -> dict:
    """In the representation space (L2-normalised): mean distance between a clip's speech and its
    own text, against the mean distance to other utterances' text; silhouette of the emotions
    over both modalities together (higher: emotions separate, whatever the modality)."""
    s, t = normalise(speech), normalise(text)
    pair = np.linalg.norm(s - t, axis=1).mean()
    rng = np.random.default_rng(0)
    other = np.linalg.norm(s - t[rng.permutation(len(t))], axis=1).mean()
    joint_labels = list(labels) * 2
    sil = silhouette_score(np.concatenate([s, t]), joint_labels) if len(set(labels)) > 1 else float("nan")
    return dict(pair_distance=float(pair), random_pair_distance=float(other), silhouette=float(sil), n=len(labels))


def figure3(panels: dict, seed: int = 0):
    """panels: name -> Embeddings. Returns (matplotlib figure, {name: metrics}, {name: coords})."""
    import matplotlib.pyplot as plt
    names = list(panels)
    coords = {n: umap_2d(panels[n].speech, panels[n].text, seed) for n in names}
    metrics = {n: alignment_metrics(panels[n].speech, panels[n].text, panels[n].labels) for n in names}
    emotions = sorted({l for p in panels.values() for l in p.labels}, key=lambda e: list(panels[names[0]].labels).index(e)
                      if e in panels[names[0]].labels else 99)
    all_xy = np.concatenate([np.concatenate(c) for c in coords.values()])
    pad = 0.05 * (all_xy.max(0) - all_xy.min(0))
    lo, hi = all_xy.min(0) - pad, all_xy.max(0) + pad
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 4.6), squeeze=False)
    for ax, n in zip(axes[0], names):
        labels = np.array(panels[n].labels)
        for i, emotion in enumerate(emotions):
            dark, light = PALETTE[i % len(PALETTE)]
            m = labels == emotion
            ax.scatter(*coords[n][1][m].T, s=7, color=light, label=f"{emotion} (text)", alpha=0.8, linewidths=0)
            ax.scatter(*coords[n][0][m].T, s=7, color=dark, label=f"{emotion} (speech)", alpha=0.8, linewidths=0)
        mt = metrics[n]
        ax.set_title(f"{n}\npair dist {mt['pair_distance']:.2f} (random {mt['random_pair_distance']:.2f}), "
                     f"silhouette {mt['silhouette']:.2f}", fontsize=9)
        ax.set(xlim=(lo[0], hi[0]), ylim=(lo[1], hi[1]), xticks=[], yticks=[])
        ax.set_xlabel("UMAP 1")
    axes[0, 0].set_ylabel("UMAP 2")
    handles, labs = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labs, loc="lower center", ncol=min(8, len(labs)), fontsize=8, markerscale=2.5, frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
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
