"""Training augmentation and test-time degradations of real speech, with audiomentations
(pyroomacoustics for rooms, fast-mp3-augment for the codec): noise at several SNRs, other people's
speech (babble), gain, speed and pitch, the telephone band, reverberation, another microphone's
colouring, MP3 compression. No hand-written DSP.

Every call is seeded and leaves the global `random` / NumPy generators as they were, so a
clip's augmented view is the same on every visit and in every worker.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import soxr

from ..audio import SAMPLE_RATE


@dataclass(frozen=True)
class AugmentConfig:
    views: int = 4               # copies of each training clip: view 0 clean, the rest augmented
    p_noise: float = 0.6         # white noise (5-30 dB SNR) or babble
    babble_snr_db: tuple[float, float] = (5.0, 25.0)   # the babble's SNR range
    p_speed_pitch: float = 0.3   # speed (tempo_rates) or pitch (+-semitones), one of the two
    tempo_rates: tuple[float, float] = (0.9, 1.1)   # the speed's range: 0.9 is 10 % slower
    semitones: float = 2.0       # the pitch shift's range, up or down
    p_telephone: float = 0.2     # 300-3400 Hz through 8 kHz sampling
    p_reverb: float = 0.25       # a simulated room
    p_gain: float = 0.5          # +-12 dB
    max_shift_ms: float = 0.0    # >0: every view starts 0..max_shift_ms later (the answer should not hang on
                                 # where the VAD's 32-ms grid and Whisper's 20-ms frames fall on the speech)
    p_colour: float = 0.0        # another microphone's response: 7 bands, each +-6 dB
    p_codec: float = 0.0         # MP3 at 16-64 kbit/s, as a call or a web upload compresses speech


def seeded(transform, wave: np.ndarray, seed: int) -> np.ndarray:
    """transform(wave) with the global generators seeded, then restored."""
    py_state, np_state = random.getstate(), np.random.get_state()
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    try:
        out = transform(wave)
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    return np.ascontiguousarray(out, dtype=np.float32)


def telephone(wave: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Band-limit to 300-3400 Hz and pass through 8 kHz sampling, as a phone line does."""
    from audiomentations import HighPassFilter, LowPassFilter
    band = HighPassFilter(300, 300, p=1.0)(wave, sample_rate)
    band = LowPassFilter(3400, 3400, p=1.0)(band, sample_rate)
    narrow = soxr.resample(band, sample_rate, 8000)
    return soxr.resample(narrow, 8000, sample_rate).astype(np.float32)[:len(wave)]


def room(p: float):
    """A simulated room by the image-source method alone: pyroomacoustics' ray tracer draws from a
    generator of its own that no seed reaches (the same seed gave a different room every time), and
    is far slower."""
    from audiomentations import RoomSimulator
    return RoomSimulator(leave_length_unchanged=True, use_ray_tracing=False, p=p)


def colour(p: float):
    """Another microphone's response: seven bands, each raised or cut by up to 6 dB."""
    from audiomentations import SevenBandParametricEQ
    return SevenBandParametricEQ(min_gain_db=-6.0, max_gain_db=6.0, p=p)


def codec(p: float, kbps: tuple[int, int] = (16, 64)):
    """MP3 compression at a bit rate drawn from `kbps`, as a call or a web upload compresses speech."""
    from audiomentations import Mp3Compression
    return Mp3Compression(min_bitrate=kbps[0], max_bitrate=kbps[1], p=p)


class Augmenter:
    """A random mix of the degradations above; babble from `babble_paths` (training clips of
    other speakers: never test speakers)."""

    def __init__(self, config: AugmentConfig = AugmentConfig(), babble_paths: list[str] | None = None):
        from audiomentations import (AddBackgroundNoise, AddGaussianSNR, Compose, Gain, Lambda, OneOf,
                                     PitchShift, Shift, TimeStretch)
        c = config
        noises = [AddGaussianSNR(min_snr_db=5.0, max_snr_db=30.0, p=1.0)]
        if babble_paths:
            low, high = c.babble_snr_db
            noises.append(AddBackgroundNoise(sounds_path=list(babble_paths), min_snr_db=low, max_snr_db=high,
                                             noise_rms="relative", p=1.0))
        self.transform = Compose([
            Gain(min_gain_db=-12.0, max_gain_db=12.0, p=c.p_gain),
            OneOf([TimeStretch(min_rate=c.tempo_rates[0], max_rate=c.tempo_rates[1], leave_length_unchanged=False, p=1.0),
                   PitchShift(min_semitones=-c.semitones, max_semitones=c.semitones, p=1.0)], p=c.p_speed_pitch),
            room(c.p_reverb),
            OneOf(noises, p=c.p_noise),
            Lambda(transform=telephone, p=c.p_telephone),
            Shift(min_shift=0.0, max_shift=c.max_shift_ms / 1000, shift_unit="seconds", rollover=False,
                  fade_duration=0.0, p=1.0 if c.max_shift_ms > 0 else 0.0),
            # last, so that the draws above, and every view made before these two existed, stay the same
            colour(c.p_colour),
            codec(c.p_codec),
        ])

    def __call__(self, wave: np.ndarray, seed: int) -> np.ndarray:
        out = seeded(lambda w: self.transform(w, sample_rate=SAMPLE_RATE), wave, seed)
        peak = float(np.abs(out).max()) if len(out) else 0.0
        return out / peak if peak > 1.0 else out


def degrade(wave: np.ndarray, condition: str, seed: int = 0, babble_paths: list[str] | None = None) -> np.ndarray:
    """One named test condition: clean, white-SNR, babble-SNR (e.g. "babble-10"), telephone, reverb,
    colour (another microphone), mp3-KBPS (e.g. "mp3-16")."""
    from audiomentations import AddBackgroundNoise, AddGaussianSNR
    kind, _, level = condition.partition("-")
    if kind == "clean":
        return wave
    if kind == "white":
        t = AddGaussianSNR(min_snr_db=float(level), max_snr_db=float(level), p=1.0)
    elif kind == "babble":
        if not babble_paths:
            raise ValueError("babble needs other speakers' clips (babble_paths)")
        t = AddBackgroundNoise(sounds_path=list(babble_paths), min_snr_db=float(level), max_snr_db=float(level),
                               noise_rms="relative", p=1.0)
    elif kind == "telephone":
        return seeded(telephone, wave, seed)   # the filters' roll-off is drawn at random
    elif kind == "reverb":
        t = room(1.0)
    elif kind == "colour":
        t = colour(1.0)
    elif kind == "mp3":
        t = codec(1.0, (int(level), int(level)))
    else:
        raise ValueError(f"unknown condition {condition!r}: clean, white-SNR, babble-SNR, telephone, reverb, colour, mp3-KBPS")
    out = seeded(lambda w: t(w, sample_rate=SAMPLE_RATE), wave, seed)
    peak = float(np.abs(out).max())
    return out / peak if peak > 1.0 else out
