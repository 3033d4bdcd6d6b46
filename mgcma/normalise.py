"""Normalisation by the speaker's or the session's own speech: test-time mean alignment.

The speech features the model reads (Whisper's layers mixed by the learnt weights) move with
the voice, the language, the microphone and the room, not only with the emotion. A checkpoint
keeps the mean of those features over its training clips (`speech_stats.npz`). Given unlabeled
speech of the same speaker, recording or corpus (a *reference*: a live session's earlier speech,
a long recording's other utterances, an enrolment, a test corpus as a whole), each answer is
computed with the reference's mean moved onto the training mean,
x' = x - mean(reference) + mean(training); with no reference nothing changes. No retraining.
A reference that is all one emotion carries that emotion in its mean, and moving it away
pulls the answers towards the training mix: the wider the reference, the safer (measured in
the README's cross-corpus section).

  python -m mgcma.normalise --checkpoint DIR --manifest TRAIN.csv [--split train]   (writes DIR/speech_stats.npz)
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

STATS_FILE = "speech_stats.npz"


@dataclass
class SpeechMean:
    """A running mean of mixed speech-feature frames."""
    total: np.ndarray | None = None
    frames: int = 0
    clips: int = 0
    seconds: float = field(default=0.0)

    def add(self, frames: torch.Tensor, seconds: float = 0.0) -> None:
        """frames: (T, D) of one clip."""
        summed = frames.double().sum(0).cpu().numpy()
        self.total = summed if self.total is None else self.total + summed
        self.frames, self.clips, self.seconds = self.frames + len(frames), self.clips + 1, self.seconds + seconds

    @property
    def mean(self) -> np.ndarray:
        if not self.frames:
            raise ValueError("no speech in the reference")
        return (self.total / self.frames).astype(np.float32)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        np.savez(path, total=self.total, frames=self.frames, clips=self.clips, seconds=self.seconds)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "SpeechMean":
        with np.load(path) as z:
            return cls(total=z["total"], frames=int(z["frames"]), clips=int(z["clips"]), seconds=float(z["seconds"]))


@torch.no_grad()
def mixed_frames(model, speech_features: torch.Tensor, speech_mask: torch.Tensor) -> list[torch.Tensor]:
    """Encoder outputs (B, T, [L,] D) -> each row's real mixed frames (T_i, D)."""
    mixed = model.mix_layers(speech_features)
    return [m[k] for m, k in zip(mixed, speech_mask.bool())]


def shift(training: SpeechMean | None, reference: SpeechMean | None) -> torch.Tensor | None:
    """(1, D) to add to each frame, or None where either mean is unknown."""
    if training is None or reference is None or not reference.frames:
        return None
    return torch.from_numpy(training.mean - reference.mean)[None]


def main(argv=None) -> int:
    from tqdm import tqdm
    from .audio import AudioError
    from .data import ManifestError, read_manifest
    from .predict import EmotionRecognizer, InputError
    parser = argparse.ArgumentParser(prog="python -m mgcma.normalise", description=__doc__.strip().splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="model directory (speech_stats.npz is written into it)")
    parser.add_argument("--manifest", required=True, help="the clips it was trained on")
    parser.add_argument("--split", default=None, help="only rows of this split (e.g. train)")
    args = parser.parse_args(argv)
    try:
        records = [r for r in read_manifest(args.manifest) if r.has_audio and (args.split is None or r.split == args.split)]
        recognizer = EmotionRecognizer(args.checkpoint, asr="none", device="cpu")
    except (ManifestError, InputError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    stats = SpeechMean()
    for r in tqdm(records, desc="training mean", unit="clip", file=sys.stderr):
        try:
            recognizer.add_reference(stats, r.path)
        except (AudioError, OSError) as e:
            print(f"{r.path}: {e}; skipped", file=sys.stderr)
    path = stats.save(Path(args.checkpoint) / STATS_FILE)
    print(f"wrote {path}: mean of {stats.frames} frames of {stats.clips} clips ({stats.seconds / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
