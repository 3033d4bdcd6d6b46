"""A reference map for the app: the UMAP of a reference set saved beside a checkpoint, and a fast,
fit-free way to place a new utterance on it (inverse-distance weighting of its nearest
reference points in representation space). Stored as .npz of plain arrays, no pickles."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .figure3 import PALETTE, normalise, umap_2d

FILE = "reference_map.npz"


@dataclass
class ReferenceMap:
    vectors: np.ndarray      # (2N, d) L2-normalised: N speech, then N text
    coords: np.ndarray       # (2N, 2)
    labels: np.ndarray       # (2N,) emotion names
    kinds: np.ndarray        # (2N,) "speech" | "text"

    @classmethod
    def build(cls, embeddings, seed: int = 0) -> "ReferenceMap":
        s_xy, t_xy = umap_2d(embeddings.speech, embeddings.text, seed)
        n = len(embeddings.labels)
        return cls(vectors=normalise(np.concatenate([embeddings.speech, embeddings.text])).astype(np.float32),
                   coords=np.concatenate([s_xy, t_xy]).astype(np.float32),
                   labels=np.array(list(embeddings.labels) * 2), kinds=np.array(["speech"] * n + ["text"] * n))

    def place(self, vector: np.ndarray, k: int = 10) -> np.ndarray:
        """(d,) or (M, d) -> (2,) or (M, 2)."""
        v = normalise(np.atleast_2d(vector).astype(np.float32))
        dist = np.sqrt(np.maximum(2 - 2 * v @ self.vectors.T, 0))          # (M, 2N), unit vectors
        nearest = np.argpartition(dist, min(k, dist.shape[1] - 1), axis=1)[:, :k]
        d = np.take_along_axis(dist, nearest, axis=1)
        w = 1.0 / np.maximum(d, 1e-6) ** 2
        xy = (w[..., None] * self.coords[nearest]).sum(1) / w.sum(1, keepdims=True)
        return xy[0] if np.ndim(vector) == 1 else xy

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / FILE
        np.savez_compressed(path, vectors=self.vectors, coords=self.coords, labels=self.labels.astype(str),
                            kinds=self.kinds.astype(str))
        return path

    @classmethod
    def load(cls, directory: str | Path) -> "ReferenceMap":
        with np.load(Path(directory) / FILE, allow_pickle=False) as f:
            return cls(vectors=f["vectors"], coords=f["coords"], labels=f["labels"], kinds=f["kinds"])


def reference_plotly(ref: ReferenceMap, speech_xy=None, text_xy=None, emotions=None):
    """The reference set (Figure 3 style, faint) with this utterance's two points on top."""
    import plotly.graph_objects as go
    emotions = emotions or list(dict.fromkeys(ref.labels.tolist()))
    fig = go.Figure()
    for i, emotion in enumerate(emotions):
        for kind, colour in (("speech", PALETTE[i % 8][0]), ("text", PALETTE[i % 8][1])):
            m = (ref.labels == emotion) & (ref.kinds == kind)
            fig.add_trace(go.Scattergl(x=ref.coords[m, 0], y=ref.coords[m, 1], mode="markers", opacity=0.7,
                                       marker=dict(size=6, color=colour), name=f"{emotion} ({kind})", hoverinfo="name"))
    for xy, name, symbol in ((speech_xy, "this clip: speech", "star"), (text_xy, "this clip: text", "diamond")):
        if xy is not None:
            fig.add_trace(go.Scatter(x=[xy[0]], y=[xy[1]], mode="markers", name=name,
                                     marker=dict(size=18, symbol=symbol, color="black", line=dict(color="white", width=2))))
    fig.update_layout(height=420, margin=dict(l=10, r=10, t=40, b=10), title="where this utterance lands among the reference set",
                      xaxis=dict(showticklabels=False, title="UMAP 1"), yaxis=dict(showticklabels=False, title="UMAP 2"))
    return fig
