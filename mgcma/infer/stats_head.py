"""A voice head that travels, at inference: a linear classifier on the mean and spread of one
speech-encoder layer, in NumPy alone (the PyTorch recogniser and the ONNX backend both read it).

It is an ensemble member of its own kind (`members/<k>/stats_head.json` + `.npz`), written by
`python -m mgcma.stats_head` (its fitting: mgcma/training/stats_head.py).
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

CONFIG_FILE, WEIGHTS_FILE = "stats_head.json", "stats_head.npz"


@dataclass
class StatsHeadConfig:
    labels: list[str]
    speech_encoder: str          # the encoder whose hidden states it reads (must be the ensemble's)
    layer: int = 3               # index into the model's hidden states (Whisper: 0 = the first block's input)
    C: float = 0.01              # inverse L2 strength of the logistic regression
    temperature: float = 1.0
    weight: float = 0.5          # its share of every answer that hears the voice; the heads share the rest
    # "mean and spread" of the layer over the clip, or its "spread" alone: blind to whatever moves
    # every frame of a clip alike (a voice's or a corpus's offset, and an emotion's too)
    reads: str = "mean and spread"
    selection: list = field(default_factory=list)   # [layer, C, held-out UA] of every candidate tried
    # directions along which its training corpora's class means differ, taken out before it reads
    # (folded into coef, so inference does nothing more); [directions, held-out UA] of each tried
    removed_directions: int = 0
    removal_selection: list = field(default_factory=list)
    trained_on: list = field(default_factory=list)
    held_out: list = field(default_factory=list)    # "corpus:speaker" never trained on (an ensemble's validation speakers)


@dataclass
class StatsHead:
    config: StatsHeadConfig
    mean: np.ndarray             # (F,) of the training features it reads (F = 2D, or D for the spread alone)
    scale: np.ndarray
    coef: np.ndarray             # (C, F)
    intercept: np.ndarray        # (C,)

    def probabilities(self, stats: np.ndarray) -> np.ndarray:
        """(B, 2D) pooled statistics -> (B, C) calibrated probabilities."""
        stats = read_statistics(stats, self.config.reads)
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


READS = ("mean and spread", "spread")


def read_statistics(stats: np.ndarray, reads: str) -> np.ndarray:
    """(..., 2D) pooled statistics (mean, then spread) -> what a head reads of them."""
    if reads not in READS:
        raise ValueError(f"a statistics head reads {' or '.join(map(repr, READS))}, not {reads!r}")
    return stats if reads == "mean and spread" else stats[..., stats.shape[-1] // 2:]


def mix_into(probs: np.ndarray, voice: np.ndarray, weight: float) -> np.ndarray:
    """The heads' probabilities (B, C) with the statistics head's (1, C) taking `weight` of each row."""
    return (1.0 - weight) * probs + weight * voice
