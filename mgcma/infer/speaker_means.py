"""Normalisation by the speaker's or the session's own speech: test-time mean alignment.

The speech features the model reads (Whisper's layers mixed by the learnt weights) move with
the voice, the language, the microphone and the room, not only with the emotion. A checkpoint
keeps the mean of each of those layers (layer-normalised, before the mix) over its training clips,
and over those of each label (`speech_stats.npz`). The mix is linear in them, so one set of means
serves every head of an ensemble, whatever its own mix (MGCMA.mixed_shift). Given unlabeled
speech of the same speaker, recording or corpus (a *reference*: a live session's earlier speech,
a long recording's other utterances, an enrolment, a test corpus as a whole), each answer is
computed with the reference's mean moved onto the training mean,
x' = x - mean(reference) + mean(training); with no reference nothing changes. No retraining.
An *enrolment* (the speaker speaking calmly) is moved onto the training clips labelled neutral.
A reference that is all one emotion carries that emotion in its mean, and moving it away
pulls the answers towards the training mix: the wider the reference, the safer (measured in
docs/cross-corpus.md). `python -m mgcma.normalise` writes a checkpoint's training means.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

STATS_FILE = "speech_stats.npz"


@dataclass
class SpeechMean:
    """A running mean of speech-feature frames: (L, D) per frame, each layer layer-normalised, or (D,)
    for a model that reads one layer."""
    total: np.ndarray | None = None
    frames: int = 0
    clips: int = 0
    seconds: float = 0.0

    def add(self, frames: torch.Tensor, seconds: float = 0.0) -> None:
        """frames: (T, L, D) or (T, D) of one clip."""
        summed = frames.double().sum(0).cpu().numpy()
        self.total = summed if self.total is None else self.total + summed
        self.frames, self.clips, self.seconds = self.frames + len(frames), self.clips + 1, self.seconds + seconds

    def merge(self, other: "SpeechMean") -> None:
        """Add another mean's frames to this one."""
        self.total = other.total.copy() if self.total is None else self.total + other.total
        self.frames, self.clips, self.seconds = self.frames + other.frames, self.clips + other.clips, self.seconds + other.seconds

    @property
    def mean(self) -> np.ndarray:
        if not self.frames:
            raise ValueError("no speech in the reference")
        return (self.total / self.frames).astype(np.float32)



def save_means(means: dict[str, SpeechMean], path: str | Path) -> Path:
    """{"all": ..., and one per training label} -> one .npz."""
    arrays = {}
    for name, m in means.items():
        arrays.update({f"{name}/total": m.total, f"{name}/frames": m.frames, f"{name}/clips": m.clips,
                       f"{name}/seconds": m.seconds})
    np.savez(path, **arrays)
    return Path(path)


def load_means(path: str | Path) -> dict[str, SpeechMean]:
    with np.load(path) as z:
        names = sorted({k.split("/")[0] for k in z.files})
        return {n: SpeechMean(total=z[f"{n}/total"], frames=int(z[f"{n}/frames"]), clips=int(z[f"{n}/clips"]),
                              seconds=float(z[f"{n}/seconds"])) for n in names}


@torch.no_grad()
def layer_frames(speech_features: torch.Tensor, speech_mask: torch.Tensor) -> list[torch.Tensor]:
    """Encoder outputs -> each row's real frames as a layer mix reads them: (B, T, L, D) every
    hidden state -> (T_i, L, D) each layer-normalised (as MGCMA.mix_layers does); (B, T, D) -> (T_i, D)."""
    if speech_features.dim() == 4:
        speech_features = F.layer_norm(speech_features, speech_features.shape[-1:])
    return [f[k] for f, k in zip(speech_features, speech_mask.bool())]


def shift(training: dict[str, SpeechMean] | None, reference: SpeechMean | None, calm: bool = False) -> torch.Tensor | None:
    """(1, L, D) or (1, D) to add to each frame's layers (MGCMA.mixed_shift makes it one head's
    shift of its mixed frames), or None where a mean is unknown. `calm`: the reference is the
    speaker speaking calmly (an enrolment), moved onto the training clips labelled neutral
    rather than onto all of them."""
    target = (training or {}).get("neutral" if calm else "all")
    if target is None or reference is None or not reference.frames:
        return None
    return torch.from_numpy(target.mean - reference.mean)[None]
