"""Does the alignment align? One set of numbers per representation space, used by Figure 3,
the ablation table and the app.

For speech vectors s_i and text vectors t_i of the same N utterances (both L2-normalised, so
distances are comparable across spaces and lie in [0, 2]):
  - speech -> text retrieval: R@1, R@5 and the mean rank of a clip's own transcript among all
    distinct transcripts (identical texts are one target: a repeated sentence is not a miss);
  - pair distance: mean ||s_i - t_i||; random distance: mean ||s_i - t_j|| over shuffled pairs;
  - modality gap: the distance between the speech centroid and the text centroid;
  - per modality: the silhouette of the emotions and kNN purity (share of each point's 10
    nearest neighbours with its emotion).
"""
from __future__ import annotations

import numpy as np

from mgcma.data.records import same_text


def normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def retrieval(s: np.ndarray, t: np.ndarray, texts: list[str] | None) -> dict:
    """Rank of each clip's own transcript among the distinct transcripts (1 = nearest)."""
    keys = [same_text(x) for x in texts] if texts is not None else list(range(len(s)))
    targets = sorted(set(keys), key=keys.index)
    index = {k: j for j, k in enumerate(targets)}
    centroids = normalise(np.stack([t[[i for i, k in enumerate(keys) if k == target]].mean(0) for target in targets]))
    d = np.linalg.norm(s[:, None, :] - centroids[None, :, :], axis=-1)            # (N, distinct texts)
    own = d[np.arange(len(s)), [index[k] for k in keys]]
    ranks = 1 + (d < own[:, None]).sum(1)
    return dict(r_at_1=float(np.mean(ranks <= 1)), r_at_5=float(np.mean(ranks <= 5)), mean_rank=float(ranks.mean()),
                n_targets=len(targets))


def knn_purity(x: np.ndarray, labels: np.ndarray, k: int = 10) -> float:
    d = np.linalg.norm(x[:, None, :] - x[None, :, :], axis=-1)
    np.fill_diagonal(d, np.inf)
    nearest = np.argsort(d, axis=1)[:, :min(k, len(x) - 1)]
    return float(np.mean(labels[nearest] == labels[:, None]))


def alignment_metrics(speech: np.ndarray, text: np.ndarray, labels, texts: list[str] | None = None, seed: int = 0) -> dict:
    s, t = normalise(np.asarray(speech, dtype=np.float64)), normalise(np.asarray(text, dtype=np.float64))
    labels = np.asarray(labels)
    out = dict(n=len(s))
    if s.shape[1] == t.shape[1]:   # the raw encoders of two widths have no shared space
        out.update(retrieval(s, t, texts))
        out["pair_distance"] = float(np.linalg.norm(s - t, axis=1).mean())
        rng = np.random.default_rng(seed)
        out["random_distance"] = float(np.linalg.norm(s - t[rng.permutation(len(t))], axis=1).mean())
        out["modality_gap"] = float(np.linalg.norm(s.mean(0) - t.mean(0)))
    many = len(set(labels)) > 1
    for name, x in (("speech", s), ("text", t)):
        unique = len(np.unique(np.round(x, 6), axis=0)) > len(set(labels))
        out[f"silhouette_{name}"] = float(silhouette(x, labels)) if many and unique else None
        out[f"knn_purity_{name}"] = knn_purity(x, labels)
    return out


def all_spaces(embeddings) -> dict:
    """{space: metrics} for every space an Embeddings holds."""
    return {name: alignment_metrics(s, t, embeddings.labels, embeddings.texts) for name, (s, t) in embeddings.spaces.items()}


def table(spaces: dict) -> str:
    def f(v):
        return "" if v is None else f"{v:.3f}"
    rows = ["| space | R@1 | R@5 | mean rank | pair dist | random dist | pair / random | modality gap | silhouette speech | silhouette text |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, m in spaces.items():
        ratio = m["pair_distance"] / m["random_distance"] if "pair_distance" in m else None
        rows.append(f"| {name} | {f(m.get('r_at_1'))} | {f(m.get('r_at_5'))} | {f(m.get('mean_rank'))} | "
                    f"{f(m.get('pair_distance'))} | {f(m.get('random_distance'))} | {f(ratio)} | {f(m.get('modality_gap'))} | "
                    f"{f(m.get('silhouette_speech'))} | {f(m.get('silhouette_text'))} |")
    return "\n".join(rows) + "\n"


def silhouette(x, labels) -> float:
    from sklearn.metrics import silhouette_score   # here, not at import: scikit-learn costs the app 1 s at start
    return silhouette_score(x, labels)
