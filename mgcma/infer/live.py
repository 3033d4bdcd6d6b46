"""A live microphone take: chunks arrive every fraction of a second; about every 2 s the last few
seconds are classified from the voice (fast: no speech recognition), and when recording stops the
whole take goes through the full analysis. Kept apart from the app so that it can be tested
without a browser.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import soxr

from ..audio import SAMPLE_RATE, AudioError


@dataclass(frozen=True)
class LiveConfig:
    update_seconds: float = 2.0     # a new label after this much new audio
    window_seconds: float = 4.0     # the label hears this much of the latest audio
    max_minutes: float = 10.0       # a longer take keeps only its first max_minutes (memory stays bounded)


@dataclass
class LiveTake:
    """The audio of one take, at 16 kHz, and where the last label was given."""
    config: LiveConfig = field(default_factory=LiveConfig)
    chunks: list = field(default_factory=list)
    samples: int = 0
    labelled_at: int = 0

    def add(self, sample_rate: int, chunk: np.ndarray) -> bool:
        """A chunk as the browser sends it (int16 or float, mono or (N, channels)) -> whether a
        new label is due."""
        wave = np.asarray(chunk)
        if wave.ndim == 2:
            wave = wave.mean(axis=1)
        if np.issubdtype(wave.dtype, np.integer):
            wave = wave.astype(np.float32) / np.iinfo(wave.dtype).max
        wave = wave.astype(np.float32)
        if sample_rate != SAMPLE_RATE and len(wave):
            wave = soxr.resample(wave, sample_rate, SAMPLE_RATE).astype(np.float32)
        room = self.max_samples - self.samples
        if room <= 0:
            return False
        self.chunks.append(wave[:room])
        self.samples += min(len(wave), room)
        return self.samples - self.labelled_at >= self.config.update_seconds * SAMPLE_RATE

    def audio(self) -> np.ndarray:
        return np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.float32)

    def window(self) -> np.ndarray:
        """The latest window_seconds of the take."""
        need, parts = int(self.config.window_seconds * SAMPLE_RATE), []
        for chunk in reversed(self.chunks):
            parts.append(chunk)
            need -= len(chunk)
            if need <= 0:
                break
        wave = np.concatenate(parts[::-1]) if parts else np.zeros(0, np.float32)
        return wave[-int(self.config.window_seconds * SAMPLE_RATE):]

    @property
    def max_samples(self) -> int:
        return int(self.config.max_minutes * 60 * SAMPLE_RATE)

    @property
    def full(self) -> bool:
        return self.samples >= self.max_samples

    @property
    def seconds(self) -> float:
        return self.samples / SAMPLE_RATE


def live_label(recognizer, take: LiveTake):
    """The voice's answer (a Prediction) over the take's latest window, or None while it holds no speech."""
    take.labelled_at = take.samples
    try:
        return recognizer.predict((SAMPLE_RATE, take.window()), None, use_asr=False)
    except AudioError:   # silence or too short: nothing to say yet
        return None
