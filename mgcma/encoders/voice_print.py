"""Who is speaking: a GE2E speaker encoder (Wan et al., ICASSP 2018), the network and weights of
Resemblyzer (Apache-2.0; the `resemblyzer` wheel ships them as `pretrained.pt`, 17 MB).

Only the network is read from the package: its own `audio.py` imports webrtcvad and librosa at
import time and trims silences that the timeline's voice activity detector has already cut. The
input is as Resemblyzer's: a 40-band mel power spectrogram (25 ms windows, 10 ms hop) of 16 kHz
speech at -30 dBFS or louder; one embedding per 1.6-s window, L2-normalised and non-negative.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..audio import SAMPLE_RATE

MEL_BANDS = 40
MEL_WINDOW = 400          # 25 ms
MEL_HOP = 160             # 10 ms
WINDOW_FRAMES = 160       # 1.6 s: the length the encoder was trained on
WINDOW_SECONDS = WINDOW_FRAMES * MEL_HOP / SAMPLE_RATE
TARGET_DBFS = -30.0


class VoicePrintError(RuntimeError):
    pass


def weights_path() -> Path:
    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or not spec.submodule_search_locations:
        raise VoicePrintError("speaker turns need the speaker encoder's weights from the `resemblyzer` package: "
                              "pip install resemblyzer==0.1.4 (it is in requirements.txt)")
    return Path(list(spec.submodule_search_locations)[0]) / "pretrained.pt"


@dataclass(frozen=True)
class VoiceWindows:
    starts: np.ndarray       # (N,) seconds from the start of the wave, each window WINDOW_SECONDS long
    embeddings: np.ndarray   # (N, 256) L2-normalised


class VoicePrint(nn.Module):
    def __init__(self, hidden: int = 256, layers: int = 3, embedding: int = 256):
        super().__init__()
        self.lstm = nn.LSTM(MEL_BANDS, hidden, layers, batch_first=True)
        self.linear = nn.Linear(hidden, embedding)

    @classmethod
    def load(cls, path: str | Path | None = None) -> "VoicePrint":
        state = torch.load(path or weights_path(), map_location="cpu", weights_only=True)["model_state"]
        model = cls()
        model.load_state_dict({k: v for k, v in state.items() if not k.startswith("similarity_")})
        return model.eval()

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        """mels (B, T, 40) -> (B, 256) embeddings, non-negative and of unit length."""
        _, (hidden, _) = self.lstm(mels)
        raw = torch.relu(self.linear(hidden[-1]))
        return raw / raw.norm(dim=1, keepdim=True).clamp_min(1e-8)

    @torch.inference_mode()
    def windows(self, wave: np.ndarray, step_s: float = 0.4, batch: int = 64) -> VoiceWindows:
        """Embeddings of 1.6-s windows every `step_s` seconds over a 16 kHz wave; a wave shorter
        than one window is padded with silence to one."""
        wave = louder_to(wave, TARGET_DBFS)
        shortfall = WINDOW_FRAMES * MEL_HOP - len(wave)
        mel = mel_frames(np.pad(wave, (0, shortfall)) if shortfall > 0 else wave)   # (T >= 160, 40)
        step = max(1, round(step_s * SAMPLE_RATE / MEL_HOP))
        starts = np.arange(0, len(mel) - WINDOW_FRAMES + 1, step)
        if len(mel) - WINDOW_FRAMES - starts[-1] > step // 2:          # the end of the wave gets a window too
            starts = np.append(starts, len(mel) - WINDOW_FRAMES)
        chunks = np.stack([mel[s:s + WINDOW_FRAMES] for s in starts])  # (N, 160, 40)
        out = [self(torch.from_numpy(chunks[i:i + batch])) for i in range(0, len(chunks), batch)]
        return VoiceWindows(starts * MEL_HOP / SAMPLE_RATE, torch.cat(out).numpy())


def louder_to(wave: np.ndarray, dbfs: float) -> np.ndarray:
    """Raise (never lower) the wave's RMS level to `dbfs`, as the encoder was trained."""
    rms = float(np.sqrt(np.mean(np.square(wave, dtype=np.float64)))) if len(wave) else 0.0
    if rms <= 1e-9:
        return wave
    gain = 10 ** ((dbfs - 20 * np.log10(rms)) / 20)
    return (wave * gain).astype(np.float32) if gain > 1 else wave


def mel_frames(wave: np.ndarray) -> np.ndarray:
    """(T, 40) mel power spectrogram, librosa's defaults (centred Hann frames, Slaney mel bands)."""
    import librosa   # imported here: it takes a second, and only speaker turns need it
    mel = librosa.feature.melspectrogram(y=wave.astype(np.float32), sr=SAMPLE_RATE, n_fft=MEL_WINDOW,
                                         hop_length=MEL_HOP, n_mels=MEL_BANDS)
    return mel.astype(np.float32).T
