"""A voice head that travels: a linear classifier on the mean and spread of one speech-encoder layer.

MGCMA's heads learn a great deal from the corpora they train on, and on a corpus they never heard
they lose more than a far simpler reader of the same frozen encoder: the mean and standard
deviation over time of one middle Whisper layer, standardised, into a multinomial logistic
regression (docs/cross-corpus.md). Answering together with the heads, it carries the voice across
corpora, and the heads carry the words and the noise. It is an ensemble member of its own kind
(`members/<k>/stats_head.json` + `.npz`), read by the PyTorch recogniser and the ONNX backend alike
(NumPy only at inference).

Its layer and regularisation are chosen by leave-one-corpus-out over its own training corpora (or
leave-speakers-out, given one corpus): the choice never sees a corpus it will be scored on. Its
temperature is fitted on those held-out predictions, so its confidence is that of an unheard corpus.
It hears the voice as it is: normalisation by a speaker's speech (mgcma/normalise.py) moves the
heads' features only.

  python -m mgcma.stats_head --checkpoint MODEL --manifest a.csv,b.csv,c.csv --out DIR
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

CONFIG_FILE, WEIGHTS_FILE = "stats_head.json", "stats_head.npz"
C_GRID = (0.0003, 0.001, 0.003, 0.01, 0.1)
MAX_SPEAKER_FOLDS = 5


@dataclass
class StatsHeadConfig:
    labels: list[str]
    speech_encoder: str          # the encoder whose hidden states it reads (must be the ensemble's)
    layer: int = 3               # index into the model's hidden states (Whisper: 0 = the first block's input)
    C: float = 0.01              # inverse L2 strength of the logistic regression
    temperature: float = 1.0
    weight: float = 0.5          # its share of every answer that hears the voice; the heads share the rest
    selection: list = field(default_factory=list)   # [layer, C, held-out UA] of every candidate tried
    trained_on: list = field(default_factory=list)


@dataclass
class StatsHead:
    config: StatsHeadConfig
    mean: np.ndarray             # (2D,) of the training features, and their spread
    scale: np.ndarray
    coef: np.ndarray             # (C, 2D)
    intercept: np.ndarray        # (C,)

    def probabilities(self, stats: np.ndarray) -> np.ndarray:
        """(B, 2D) pooled statistics -> (B, C) calibrated probabilities."""
        logits = ((stats - self.mean) / self.scale) @ self.coef.T + self.intercept
        z = logits / self.config.temperature
        z = np.exp(z - z.max(1, keepdims=True))
        return z / z.sum(1, keepdims=True)

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        np.savez(directory / WEIGHTS_FILE, mean=self.mean, scale=self.scale, coef=self.coef, intercept=self.intercept)
        (directory / CONFIG_FILE).write_text(json.dumps(dataclasses.asdict(self.config), indent=2) + "\n")
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> StatsHead:
        directory = Path(directory)
        with np.load(directory / WEIGHTS_FILE) as w:
            arrays = {k: w[k].astype(np.float64) for k in ("mean", "scale", "coef", "intercept")}
        return cls(StatsHeadConfig(**json.loads((directory / CONFIG_FILE).read_text())), **arrays)


def is_stats_head(directory: str | Path) -> bool:
    return (Path(directory) / CONFIG_FILE).is_file()


def load_stats_heads(directories: list[Path], model_config) -> list[StatsHead]:
    """The statistics heads among an ensemble's members, checked against the ModelConfig of the
    model they answer with."""
    heads = [StatsHead.load(d) for d in directories]
    labels, encoder = list(model_config.labels), model_config.speech_encoder
    for d, h in zip(directories, heads):
        if h.config.labels != labels or h.config.speech_encoder != encoder:
            raise ValueError(f"{d} answers {h.config.labels} from {h.config.speech_encoder!r}; the model answers "
                             f"{labels} from {encoder!r}: they cannot answer together")
        if model_config.speech_layers != "weighted":
            raise ValueError(f"{d} reads hidden state {h.config.layer}, and this model keeps only its last")
    return heads


def voice_probabilities(heads: list[StatsHead], features: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(B, T, L, D) every hidden state and (B, T) -> (B, C), the statistics heads' mean answer."""
    return np.mean([h.probabilities(pooled_statistics(features, mask, h.config.layer)) for h in heads], axis=0)


def pooled_statistics(features: np.ndarray, mask: np.ndarray, layer: int) -> np.ndarray:
    """features (B, T, L, D) every hidden state, mask (B, T) -> (B, 2D): mean and standard
    deviation (n - 1) over each clip's real frames of hidden state `layer`."""
    x = np.asarray(features[:, :, layer], dtype=np.float64)                  # (B, T, D)
    m = np.asarray(mask, dtype=np.float64)[:, :, None]                       # (B, T, 1)
    n = m.sum(1)                                                             # (B, 1)
    mean = (x * m).sum(1) / np.maximum(n, 1)
    var = (((x - mean[:, None]) ** 2) * m).sum(1) / np.maximum(n - 1, 1)
    return np.concatenate([mean, np.sqrt(var)], -1)


def mix_into(probs: np.ndarray, voice: np.ndarray, weight: float) -> np.ndarray:
    """The heads' probabilities (B, C) with the statistics head's (1, C) taking `weight` of each row."""
    return (1.0 - weight) * probs + weight * voice


def balanced_weights(labels: np.ndarray, corpora: np.ndarray) -> np.ndarray:
    """Each corpus counts alike, and within it each class."""
    w = np.zeros(len(labels))
    for c in np.unique(corpora):
        in_c = corpora == c
        for y in np.unique(labels[in_c]):
            w[in_c & (labels == y)] = 1.0 / (in_c & (labels == y)).sum()
    return w / w.mean()


def fit_linear(stats: np.ndarray, labels: np.ndarray, weights: np.ndarray, C: float, n_classes: int):
    """-> (mean, scale, coef (n_classes, 2D), intercept): standardised multinomial logistic regression."""
    from sklearn.linear_model import LogisticRegression
    mean, scale = stats.mean(0), stats.std(0) + 1e-8
    clf = LogisticRegression(C=C, max_iter=3000).fit((stats - mean) / scale, labels, sample_weight=weights)
    coef, intercept = np.zeros((n_classes, stats.shape[1])), np.full(n_classes, -1e4)   # an unseen class: never
    coef[clf.classes_], intercept[clf.classes_] = clf.coef_, clf.intercept_
    if len(clf.classes_) == 2:   # sklearn keeps one row for two classes
        coef[clf.classes_] = np.stack([-clf.coef_[0], clf.coef_[0]]) / 2
        intercept[clf.classes_] = np.array([-clf.intercept_[0], clf.intercept_[0]]) / 2
    return mean, scale, coef, intercept


@dataclass
class TrainingSet:
    """Pooled statistics of every hidden state, per clip and view (view 0 clean)."""
    stats: np.ndarray            # (N, V, L, 2D)
    labels: np.ndarray           # (N,) class index
    groups: np.ndarray           # (N,) what selection holds out together: the corpus, or the speaker


def held_out_folds(groups: np.ndarray) -> list[np.ndarray]:
    """Boolean masks of the clips each selection fold holds out: one group each, at most
    MAX_SPEAKER_FOLDS folds (speakers then dealt round-robin)."""
    names = np.unique(groups)
    n = min(len(names), MAX_SPEAKER_FOLDS)
    return [np.isin(groups, names[k::n]) for k in range(n)]


def held_out_logits(data: TrainingSet, layer: int, C: float, n_classes: int) -> np.ndarray:
    """Each clip's logits from a fit that did not see its group (trained on every view; scored clean)."""
    logits = np.zeros((len(data.labels), n_classes))
    for out in held_out_folds(data.groups):
        x = data.stats[~out][:, :, layer].reshape(-1, data.stats.shape[-1])   # (N' V, 2D)
        y, g = np.repeat(data.labels[~out], data.stats.shape[1]), np.repeat(data.groups[~out], data.stats.shape[1])
        mean, scale, coef, intercept = fit_linear(x, y, balanced_weights(y, g), C, n_classes)
        logits[out] = ((data.stats[out][:, 0, layer] - mean) / scale) @ coef.T + intercept
    return logits


def train_stats_head(data: TrainingSet, labels: list[str], speech_encoder: str, layers: list[int],
                     grid=C_GRID, report=print) -> StatsHead:
    """Choose the layer and C by held-out UA (mean over the held-out groups), fit the temperature
    on those held-out logits, then fit on everything."""
    from .calibration import fit_temperature
    from .metrics import classification_metrics
    if len(np.unique(data.groups)) < 2:
        raise ValueError("choosing the layer needs two corpora, or two speakers, to hold out")
    tried = []
    for layer in layers:
        for C in grid:
            logits = held_out_logits(data, layer, C, len(labels))
            ua = float(np.mean([classification_metrics(data.labels[data.groups == g], logits[data.groups == g].argmax(1),
                                                       labels)["UA"] for g in np.unique(data.groups)]))
            tried.append((layer, C, ua, logits))
            report(f"layer {layer}, C {C}: held-out UA {100 * ua:.2f} %")
    layer, C, _, logits = max(tried, key=lambda t: t[2])
    temperature = fit_temperature(logits, data.labels, data.groups)
    x = data.stats[:, :, layer].reshape(-1, data.stats.shape[-1])
    y, g = np.repeat(data.labels, data.stats.shape[1]), np.repeat(data.groups, data.stats.shape[1])
    config = StatsHeadConfig(labels=list(labels), speech_encoder=speech_encoder, layer=layer, C=C,
                             temperature=temperature, selection=[[t[0], t[1], round(t[2], 4)] for t in tried])
    return StatsHead(config, *fit_linear(x, y, balanced_weights(y, g), C, len(labels)))


def candidate_layers(spec: str | None, n_states: int) -> list[int]:
    """--layers "A-B" or "A" (inclusive) -> those hidden states; None -> every one of the n_states."""
    from .encoders.build import hidden_state_range
    return list(range(n_states) if spec is None else hidden_state_range(spec, n_states, "--layers"))


def collect_statistics(model, records, views: int, augment=None, report_progress=True) -> np.ndarray:
    """(N, views, L, 2D) float32: every clip heard clean (view 0) and through `views` - 1
    augmentations (mgcma/data/augment.py, `augment` an AugmentConfig, the heads' training mix by default;
    babble from the same corpus's other speakers), cleaned as the recogniser cleans a clip, through
    the model's speech encoder."""
    import zlib

    import torch
    from tqdm import tqdm

    from .audio import clean_speech, load_audio
    from .data.augment import AugmentConfig, Augmenter
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
    import zlib
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mgcma.stats_head", description=__doc__.strip().splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="the model it will answer with: its speech encoder, "
                        "clean-up and labels are read from it (its hidden states must be mixed: speech_layers weighted)")
    parser.add_argument("--manifest", required=True, help="one or more manifests, comma-separated: each a corpus; "
                        "rows of split test never train")
    parser.add_argument("--out", required=True, help="directory to write (stats_head.json, stats_head.npz)")
    parser.add_argument("--augment-views", type=int, default=4, help="views of each clip: 1 clean, the rest augmented")
    parser.add_argument("--augment-colour", type=float, default=0.0, help="share of augmented views heard through "
                        "another microphone's response (7 bands, +-6 dB)")
    parser.add_argument("--augment-codec", type=float, default=0.0, help="share of augmented views MP3-compressed (16-64 kbit/s)")
    parser.add_argument("--layers", default=None, help="candidate hidden states, e.g. 1-5 (default: all)")
    parser.add_argument("--cache", default=None, help="keep each manifest's clip statistics in this folder, and reuse them")
    args = parser.parse_args(argv)
    from .checkpoint import CheckpointError, load_model
    from .data.records import ManifestError, read_manifest
    from .encoders.build import n_hidden_states
    manifests = args.manifest.split(",")
    try:
        model = load_model(args.checkpoint, "cpu").eval()
        if model.config.speech_layers != "weighted":
            raise CheckpointError(f"{args.checkpoint} reads one speech layer; a statistics head needs every hidden state")
        layers = candidate_layers(args.layers, n_hidden_states(model.speech_encoder))
        corpora = [[r for r in read_manifest(m) if r.has_audio and r.split != "test" and r.label in model.config.labels]
                   for m in manifests]
        if not all(corpora):
            raise ManifestError(f"{manifests[[bool(c) for c in corpora].index(False)]}: no clip with a label the model knows")
    except (CheckpointError, ManifestError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    augment = None
    if args.augment_colour or args.augment_codec:
        from .data.augment import AugmentConfig
        augment = AugmentConfig(p_colour=args.augment_colour, p_codec=args.augment_codec)
    stats = np.concatenate([corpus_statistics(model, c, m, args.augment_views, args.cache, augment)
                            for c, m in zip(corpora, manifests)])
    records = [r for c in corpora for r in c]
    # selection holds out whole corpora; given one, whole speakers
    groups = [str(k) for k, c in enumerate(corpora) for _ in c] if len(corpora) > 1 else [r.speaker for r in records]
    labels = model.config.labels
    data = TrainingSet(stats, np.array([labels.index(r.label) for r in records]), np.array(groups))
    try:
        head = train_stats_head(data, labels, model.config.speech_encoder, layers)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    head.config.trained_on = [f"{m}: {len(c)} clips" for c, m in zip(corpora, manifests)]
    head.save(args.out)
    c = head.config
    print(f"wrote {args.out}: layer {c.layer}, C {c.C}, temperature {c.temperature:.2f}, "
          f"{len(records)} clips x {args.augment_views} views")
    return 0


if __name__ == "__main__":
    sys.exit(main())
