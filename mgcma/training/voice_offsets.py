"""Voice-offset augmentation: a training clip heard, to the first order, as another training speaker.

A voice, a language, a microphone and a room each move the mean of the speech features the model
reads (mgcma/infer/speaker_means.py), and a held-out corpus whose mean lies elsewhere can have its
answers pushed onto one class (docs/cross-corpus.md, four corpora). Normalisation at test time moves
that mean back, but needs other speech of the same voice. Here the heads learn not to hang on it:
an augmented row's frames are moved by mean(another voice) - mean(its own voice), the other drawn
at random among every training corpus's speakers, so that the directions in which voices and
corpora differ carry no emotion. The means are of each speaker's clean clips, every layer
layer-normalised as the mix reads it; the mix is linear in them (MGCMA.mixed_shift).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from tqdm import tqdm

from ..infer.speaker_means import SpeechMean, layer_frames


@dataclass
class VoiceOffsets:
    means: torch.Tensor          # (S, L, D), or (S, D) for a model that reads one layer: each training voice's mean frame
    voice_of_row: torch.Tensor   # (N,) the voice of each record of the training subset; -1 where it has no audio
    p: float                     # share of the rows with audio heard as another voice
    seed: int

    def layer_shifts(self, rows: torch.Tensor, step: int) -> torch.Tensor:
        """rows: (B,) indices into the training subset -> (B, L, D) to add to their frames' layers;
        zero where a row keeps its own voice. Drawn from (seed, step) alone, so a resumed run draws alike."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        own = self.voice_of_row[rows.cpu()]
        moved = (torch.rand(len(own), generator=generator) < self.p) & (own >= 0)
        # 1..S-1 voices further round the ring: never the row's own
        other = (own + torch.randint(1, len(self.means), (len(own),), generator=generator)) % len(self.means)
        shift = self.means[other] - self.means[own.clamp(min=0)]
        return shift * moved.view(-1, *[1] * (shift.dim() - 1)).to(shift.dtype)


def voice_key(record) -> tuple[str, str]:
    """Speakers are named per corpus: speaker "03" of two corpora are two voices."""
    return record.corpus, record.speaker


@torch.no_grad()
def measure_voices(model, loader, cache, subset: list, p: float, seed: int) -> VoiceOffsets:
    """One pass over the clean training clips with audio (`loader` plain, over `subset`'s rows
    with audio; their features stay in `cache`, where training reads them again) -> each voice's
    mean frame. `subset`: the training records, in the order the training loader indexes them."""
    voices = sorted({voice_key(r) for r in subset if r.has_audio})
    if len(voices) < 2:
        raise ValueError(f"--augment-voice-offset needs two or more training speakers with audio; found {len(voices)}")
    index = {v: k for k, v in enumerate(voices)}
    sums = {v: SpeechMean() for v in voices}
    device = next(model.parameters()).device
    for batch in tqdm(loader, desc="voice means", unit="batch", leave=False):
        audio, audio_mask = batch["audio"].to(device), batch["audio_mask"].to(device)
        feats, mask = cache.get(batch["speech_keys"], lambda: model.encode_speech(audio, audio_mask))
        for frames, row in zip(layer_frames(feats, mask), batch["record"].tolist()):
            sums[voice_key(loader.dataset.records[row])].add(frames)
    means = torch.stack([torch.from_numpy(sums[v].mean) for v in voices]).to(device)
    voice_of_row = torch.tensor([index[voice_key(r)] if r.has_audio else -1 for r in subset])
    return VoiceOffsets(means, voice_of_row, p, seed)
