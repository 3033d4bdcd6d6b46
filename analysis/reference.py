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
    w2_own: np.ndarray | None = None     # (N,) W2 between each reference clip's speech and its own text
    w2_other: np.ndarray | None = None   # (M,) W2 between speech and another clip's text

    @classmethod
    def build(cls, embeddings, seed: int = 0) -> "ReferenceMap":
        s_xy, t_xy = umap_2d(embeddings.speech, embeddings.text, seed)
        n = len(embeddings.labels)
        own = other = None
        if embeddings.mu_speech is not None:
            own, other = w2_reference(embeddings, seed)
        return cls(vectors=normalise(np.concatenate([embeddings.speech, embeddings.text])).astype(np.float32),
                   coords=np.concatenate([s_xy, t_xy]).astype(np.float32),
                   labels=np.array(list(embeddings.labels) * 2), kinds=np.array(["speech"] * n + ["text"] * n),
                   w2_own=own, w2_other=other)

    def w2_percentiles(self, w2: float) -> tuple[float, float] | None:
        """What "close" means for a clip's W2: the share (%) of the reference set's own pairs and of its
        mismatched pairs whose W2 is larger (100: closer than all of them)."""
        if self.w2_own is None or w2 is None:
            return None
        return float(100 * np.mean(self.w2_own > w2)), float(100 * np.mean(self.w2_other > w2))

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
        extra = {} if self.w2_own is None else dict(w2_own=self.w2_own, w2_other=self.w2_other)
        np.savez_compressed(path, vectors=self.vectors, coords=self.coords, labels=self.labels.astype(str),
                            kinds=self.kinds.astype(str), **extra)
        return path

    @classmethod
    def load(cls, directory: str | Path) -> "ReferenceMap":
        with np.load(Path(directory) / FILE, allow_pickle=False) as f:
            return cls(vectors=f["vectors"], coords=f["coords"], labels=f["labels"], kinds=f["kinds"],
                       w2_own=f["w2_own"] if "w2_own" in f else None, w2_other=f["w2_other"] if "w2_other" in f else None)


def w2_reference(embeddings, seed: int = 0, per_clip: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """W2 of every reference clip's own speech-text pair, and of `per_clip` mismatched pairs per clip
    (a different transcript: on a corpus of repeated sentences an identical text is no mismatch)."""
    import torch
    from mgcma.data.records import same_text
    from mgcma.losses import w2_distance
    w2 = w2_distance(*(torch.from_numpy(np.asarray(x, dtype=np.float32)) for x in
                       (embeddings.mu_speech, embeddings.sigma_speech, embeddings.mu_text, embeddings.sigma_text))).numpy()
    texts = np.array([same_text(t) for t in (embeddings.texts or [str(i) for i in range(len(w2))])])
    rng = np.random.default_rng(seed)
    other = []
    for i in range(len(w2)):
        candidates = np.flatnonzero(texts != texts[i])
        if len(candidates):
            other.append(w2[i, rng.choice(candidates, min(per_clip, len(candidates)), replace=False)])
    return np.diag(w2).astype(np.float32), np.concatenate(other).astype(np.float32) if other else np.zeros(0, np.float32)


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
