"""Fitting a statistics head (mgcma/infer/stats_head.py): the pooled statistics of every hidden
state for each clip and its augmented views, the layer and regularisation chosen by holding out
whole corpora (or speakers) of its own training data, the temperature fitted on those held-out answers."""
from __future__ import annotations

import dataclasses
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from tqdm import tqdm

from ..audio import clean_speech, load_audio
from ..calibration import fit_temperature
from ..data.augment import AugmentConfig, Augmenter
from ..encoders.build import hidden_state_range
from ..infer.stats_head import StatsHead, StatsHeadConfig, pooled_statistics, read_statistics
from ..metrics import classification_metrics

C_GRID = (0.0003, 0.001, 0.003, 0.01, 0.1)
MAX_SPEAKER_FOLDS = 5


def balanced_weights(labels: np.ndarray, corpora: np.ndarray) -> np.ndarray:
    """Each corpus counts alike, and within it each class."""
    w = np.zeros(len(labels))
    for c in np.unique(corpora):
        in_c = corpora == c
        for y in np.unique(labels[in_c]):
            w[in_c & (labels == y)] = 1.0 / (in_c & (labels == y)).sum()
    return w / w.mean()


def group_directions(x: np.ndarray, labels: np.ndarray, groups: np.ndarray, k: int) -> np.ndarray:
    """(F, k') orthonormal, k' <= k: the directions along which the groups' means of each class
    differ most from that class's mean over the groups (nuisance attribute projection: what tells
    the corpora apart within a class, not the classes apart)."""
    rows = []
    for y in np.unique(labels):
        means = np.stack([x[(groups == g) & (labels == y)].mean(0) for g in np.unique(groups[labels == y])])   # (G_y, F)
        rows.append(means - means.mean(0))
    _, s, vt = np.linalg.svd(np.concatenate(rows), full_matrices=False)
    k = min(k, int((s > 1e-6 * s.max()).sum()) if s.size and s.max() > 0 else 0)   # never a direction they do not span
    return vt[:k].T


def fit_linear(stats: np.ndarray, labels: np.ndarray, weights: np.ndarray, C: float, n_classes: int,
               groups: np.ndarray | None = None, remove: int = 0):
    """-> (mean, scale, coef (n_classes, 2D), intercept): standardised multinomial logistic regression,
    blind to the `remove` directions that most tell its `groups` apart within a class."""
    mean, scale = stats.mean(0), stats.std(0) + 1e-8
    x = (stats - mean) / scale
    away = group_directions(x, labels, groups, remove) if remove else np.zeros((x.shape[1], 0))   # (F, k)
    clf = LogisticRegression(C=C, max_iter=3000).fit(x - (x @ away) @ away.T, labels, sample_weight=weights)
    coef, intercept = np.zeros((n_classes, stats.shape[1])), np.full(n_classes, -1e4)   # an unseen class: never
    coef[clf.classes_], intercept[clf.classes_] = clf.coef_, clf.intercept_
    if len(clf.classes_) == 2:   # sklearn keeps one row for two classes
        coef[clf.classes_] = np.stack([-clf.coef_[0], clf.coef_[0]]) / 2
        intercept[clf.classes_] = np.array([-clf.intercept_[0], clf.intercept_[0]]) / 2
    coef[clf.classes_] -= (coef[clf.classes_] @ away) @ away.T   # the projection, folded into the weights
    return mean, scale, coef, intercept


@dataclass
class TrainingSet:
    """Pooled statistics of every hidden state, per clip and view (view 0 clean)."""
    stats: np.ndarray            # (N, V, L, 2D): mean, then spread
    labels: np.ndarray           # (N,) class index
    groups: np.ndarray           # (N,) what selection holds out together: the corpus, or the speaker


def held_out_folds(groups: np.ndarray) -> list[np.ndarray]:
    """Boolean masks of the clips each selection fold holds out: one group each, at most
    MAX_SPEAKER_FOLDS folds (speakers then dealt round-robin)."""
    names = np.unique(groups)
    n = min(len(names), MAX_SPEAKER_FOLDS)
    return [np.isin(groups, names[k::n]) for k in range(n)]


def held_out_logits(data: TrainingSet, layer: int, C: float, n_classes: int, remove: int = 0) -> np.ndarray:
    """Each clip's logits from a fit that did not see its group (trained on every view; scored clean)."""
    logits = np.zeros((len(data.labels), n_classes))
    for out in held_out_folds(data.groups):
        x = data.stats[~out][:, :, layer].reshape(-1, data.stats.shape[-1])   # (N' V, 2D)
        y, g = np.repeat(data.labels[~out], data.stats.shape[1]), np.repeat(data.groups[~out], data.stats.shape[1])
        mean, scale, coef, intercept = fit_linear(x, y, balanced_weights(y, g), C, n_classes, g, remove)
        logits[out] = ((data.stats[out][:, 0, layer] - mean) / scale) @ coef.T + intercept
    return logits


def held_out_ua(data: TrainingSet, logits: np.ndarray, labels: list[str]) -> float:
    """The mean over held-out groups of each one's UA."""
    return float(np.mean([classification_metrics(data.labels[data.groups == g], logits[data.groups == g].argmax(1),
                                                 labels)["UA"] for g in np.unique(data.groups)]))


def train_stats_head(data: TrainingSet, labels: list[str], speech_encoder: str, layers: list[int],
                     grid=C_GRID, report=print, reads: str = "mean and spread", removals=(0,)) -> StatsHead:
    """Choose the layer and C by held-out UA (mean over the held-out groups), then at those how many
    of the directions that tell the groups apart to remove (`removals`); fit the temperature on the
    chosen held-out logits, then fit on everything; the head reads `reads` of the statistics."""
    if len(np.unique(data.groups)) < 2:
        raise ValueError("choosing the layer needs two corpora, or two speakers, to hold out")
    data = dataclasses.replace(data, stats=read_statistics(data.stats, reads))
    tried = []
    for layer in layers:
        for C in grid:
            logits = held_out_logits(data, layer, C, len(labels))
            tried.append((layer, C, held_out_ua(data, logits, labels), logits))
            report(f"layer {layer}, C {C}: held-out UA {100 * tried[-1][2]:.2f} %")
    layer, C, ua, logits = max(tried, key=lambda t: t[2])
    removal_tried = [(0, ua, logits)]
    for k in (k for k in removals if k > 0):
        without = held_out_logits(data, layer, C, len(labels), remove=k)
        removal_tried.append((k, held_out_ua(data, without, labels), without))
        report(f"layer {layer}, C {C}, {k} directions of the corpora removed: "
               f"held-out UA {100 * removal_tried[-1][1]:.2f} %")
    remove, _, logits = max(removal_tried, key=lambda t: t[1])
    temperature = fit_temperature(logits, data.labels, data.groups)
    x = data.stats[:, :, layer].reshape(-1, data.stats.shape[-1])
    y, g = np.repeat(data.labels, data.stats.shape[1]), np.repeat(data.groups, data.stats.shape[1])
    config = StatsHeadConfig(labels=list(labels), speech_encoder=speech_encoder, layer=layer, C=C, reads=reads,
                             temperature=temperature, selection=[[t[0], t[1], round(t[2], 4)] for t in tried],
                             removed_directions=remove,
                             removal_selection=[[k, round(u, 4)] for k, u, _ in removal_tried] if len(removal_tried) > 1 else [])
    return StatsHead(config, *fit_linear(x, y, balanced_weights(y, g), C, len(labels), g, remove))


def candidate_layers(spec: str | None, n_states: int) -> list[int]:
    """--layers "A-B" or "A" (inclusive) -> those hidden states; None -> every one of the n_states."""
    return list(range(n_states) if spec is None else hidden_state_range(spec, n_states, "--layers"))


def removal_candidates(spec: str) -> list[int]:
    """--remove-corpus-directions "0,2,4" -> [0, 2, 4]."""
    try:
        ks = [int(k) for k in spec.split(",")]
    except ValueError:
        ks = [-1]
    if any(k < 0 for k in ks):
        raise ValueError(f"--remove-corpus-directions {spec!r}: give counts of directions, e.g. 0,1,2,4")
    return ks


def collect_statistics(model, records, views: int, augment=None, report_progress=True) -> np.ndarray:
    """(N, views, L, 2D) float32: every clip heard clean (view 0) and through `views` - 1
    augmentations (mgcma/data/augment.py, `augment` an AugmentConfig, the heads' training mix by default;
    babble from the same corpus's other speakers), cleaned as the recogniser cleans a clip, through
    the model's speech encoder."""
    augmenters = {}
    out = None
    for i, r in enumerate(tqdm(records, desc="voice statistics", unit="clip", file=sys.stderr, disable=not report_progress)):
        wave = r.waveform if r.waveform is not None else load_audio(r.path)
        key = (r.corpus, r.speaker)
        if views > 1 and key not in augmenters:
            babble = [o.path for o in records if o.path and o.corpus == r.corpus and o.speaker != r.speaker][:200]
            augmenters[key] = Augmenter(augment or AugmentConfig(), babble)
        for v in range(views):
            heard = wave if v == 0 else augmenters[key](wave, seed=zlib.crc32(f"{r.path or r.id}#{v}".encode()))
            if model.config.hygiene is not None:
                heard = clean_speech(heard, model.config.hygiene)
            audio = torch.from_numpy(np.ascontiguousarray(heard, dtype=np.float32))[None]
            with torch.inference_mode():
                features, mask = model.encode_speech(audio, torch.ones_like(audio, dtype=torch.bool))
            layers = features.shape[2]
            stats = np.stack([pooled_statistics(features.float().numpy(), mask.numpy(), k)[0] for k in range(layers)])
            if out is None:
                out = np.zeros((len(records), views, *stats.shape), dtype=np.float32)
            out[i, v] = stats
    return out


def corpus_statistics(model, records, manifest: str, views: int, cache: str | None, augment=None) -> np.ndarray:
    """collect_statistics, kept in `cache`/<manifest>-<views>-<key>.npy when a cache folder is given."""
    clips = "|".join(str(Path(r.path).resolve()) if r.path else r.id for r in records)
    heard = f"{model.config.speech_encoder}|{model.config.hygiene}|{clips}"
    if augment is not None:
        heard += f"|{augment}"
    heard_by = zlib.crc32(heard.encode())   # else another file
    path = Path(cache) / f"{Path(manifest).stem}-{views}-{heard_by:08x}.npy" if cache else None
    if path is not None and path.is_file():
        stats = np.load(path)
        if stats.shape[:2] == (len(records), views):
            return stats
    stats = collect_statistics(model, records, views, augment)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, stats)
    return stats
