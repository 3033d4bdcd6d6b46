"""Audio in: any file soundfile reads, or an array at any rate -> 16 kHz mono float32 in [-1, 1].

Every problem becomes an AudioError whose message says what was wrong and what is accepted.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

SAMPLE_RATE = 16000
N_FFT, HOP_LENGTH = 400, 160   # Whisper's log-mel front end: 25-ms windows every 10 ms
ACCEPTED = "WAV, FLAC, OGG or MP3 speech, 0.1 s or longer"


class AudioError(ValueError):
    """Input audio that cannot be used; the message is meant for the person who supplied it."""


@dataclass(frozen=True)
class AudioLimits:
    min_seconds: float = 0.1
    max_seconds: float = 20.0       # longer clips are cropped, with a warning
    refuse_seconds: float = 600.0   # longer files are refused before they are decoded
    silence_peak: float = 1e-4      # a clip whose loudest sample is below this is silent


def load_audio(path: str | Path, limits: AudioLimits = AudioLimits()) -> np.ndarray:
    """Read, check and convert a file to 16 kHz mono float32."""
    path = Path(path)
    name = path.name
    if not path.is_file():
        raise AudioError(f"{name}: no such file")
    if path.stat().st_size == 0:
        raise AudioError(f"{name}: the file is empty (0 bytes); expected {ACCEPTED}")
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        raise AudioError(f"{name}: not a readable audio file ({e}); expected {ACCEPTED}") from None
    if info.frames <= 0 or info.samplerate <= 0:
        raise AudioError(f"{name}: the file holds no audio samples; expected {ACCEPTED}")
    seconds = info.frames / info.samplerate
    if seconds > limits.refuse_seconds:
        raise AudioError(f"{name}: {seconds:.0f} s is too long (at most {limits.refuse_seconds:.0f} s accepted)")
    # read no more than we keep, so a long file never sits in memory whole
    keep = int(min(seconds, limits.max_seconds) * info.samplerate) + 1
    try:
        wave, sr = sf.read(str(path), frames=keep, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as e:
        raise AudioError(f"{name}: the audio data is damaged ({e})") from None
    if len(wave) == 0:
        raise AudioError(f"{name}: the file holds no audio samples (truncated?); expected {ACCEPTED}")
    return prepare_waveform(wave, sr, limits, name=name, original_seconds=seconds)


def read_clip(audio, limits: AudioLimits = AudioLimits()) -> np.ndarray:
    """A path, a (sample_rate, array) pair as Gradio gives it, or a 16 kHz array -> checked 16 kHz
    mono float32 (load_audio or prepare_waveform)."""
    if audio is None:
        raise AudioError("no audio: record or upload a clip")
    if isinstance(audio, (str, Path)):
        return load_audio(audio, limits)
    if isinstance(audio, tuple):
        return prepare_waveform(audio[1], audio[0], limits)
    return prepare_waveform(audio, SAMPLE_RATE, limits)


def prepare_waveform(wave, sample_rate: int, limits: AudioLimits = AudioLimits(), name: str = "audio",
                     original_seconds: float | None = None) -> np.ndarray:
    """An array (n,) or (n, channels), float or integer PCM, at any rate -> checked 16 kHz mono float32."""
    wave = np.asarray(wave)
    if wave.size == 0:
        raise AudioError(f"{name}: empty audio; expected {ACCEPTED}")
    if np.issubdtype(wave.dtype, np.integer):
        wave = wave.astype(np.float32) / float(np.iinfo(wave.dtype).max)
    wave = wave.astype(np.float32, copy=False)
    if wave.ndim not in (1, 2):
        raise AudioError(f"{name}: expected a 1-D or 2-D waveform, got shape {wave.shape}")
    if not np.all(np.isfinite(wave)):
        raise AudioError(f"{name}: the audio contains NaN or infinite samples")
    loudest = float(np.abs(wave).max())
    if loudest > 1.0:  # float input beyond full scale: scaled down, before mixing or resampling can overflow float32
        wave = wave / loudest
    if wave.ndim == 2:
        # (n, channels) as soundfile and Gradio give it; a (channels, n) array with few rows too
        wave = wave.mean(axis=1) if wave.shape[0] >= wave.shape[1] else wave.mean(axis=0)
    if sample_rate <= 0:
        raise AudioError(f"{name}: invalid sample rate {sample_rate}")
    seconds = original_seconds if original_seconds is not None else len(wave) / sample_rate
    if seconds < limits.min_seconds:
        raise AudioError(f"{name}: {seconds:.3f} s is too short (at least {limits.min_seconds} s of speech needed)")
    if seconds > limits.refuse_seconds:
        raise AudioError(f"{name}: {seconds:.0f} s is too long (at most {limits.refuse_seconds:.0f} s accepted)")
    max_samples = int(limits.max_seconds * sample_rate)
    if len(wave) > max_samples or seconds > limits.max_seconds:
        warnings.warn(f"{name}: {seconds:.1f} s is longer than the maximum {limits.max_seconds:.1f} s; "
                      f"using the first {limits.max_seconds:.1f} s", stacklevel=2)
        wave = wave[:max_samples]
    if sample_rate != SAMPLE_RATE:
        wave = soxr.resample(wave, sample_rate, SAMPLE_RATE).astype(np.float32)
    peak = float(np.abs(wave).max())
    if peak < limits.silence_peak:
        raise AudioError(f"{name}: the clip is silent (peak level {peak:.1e}); record some speech")
    clipped = float(np.mean(np.abs(wave) >= 0.999 * max(peak, 1.0)))
    if clipped > 0.01:
        warnings.warn(f"{name}: the recording is saturated ({100 * clipped:.0f} % of samples at full scale); "
                      "the prediction may be unreliable", stacklevel=2)
    if peak > 1.0:  # resampling can overshoot full scale: scale down rather than clip
        wave = wave / peak
    return np.ascontiguousarray(wave, dtype=np.float32)


# ------------------------------------------------------------------------- real-speech hygiene
@dataclass(frozen=True)
class Hygiene:
    """What is done to a clip before the model hears it (in training and in inference alike)."""
    trim: bool = True               # cut leading and trailing non-speech (Silero VAD in faster-whisper)
    trim_pad_seconds: float = 0.15  # speech kept around the detected span
    loudness_dbfs: float | None = -23.0   # RMS level of the kept speech; None: leave the level as it is


def speech_span(wave: np.ndarray, pad_seconds: float = 0.15) -> tuple[int, int]:
    """First and last sample of speech by the Silero VAD that ships inside faster-whisper;
    the whole clip when it finds none (a clip is never emptied)."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps
    spans = get_speech_timestamps(wave, VadOptions(min_silence_duration_ms=300, speech_pad_ms=int(1000 * pad_seconds)))
    if not spans:
        return 0, len(wave)
    return spans[0]["start"], spans[-1]["end"]


def normalise_loudness(wave: np.ndarray, target_dbfs: float = -23.0) -> np.ndarray:
    """Scale to an RMS of `target_dbfs`, kept below full scale (a peak of 0.99 at most)."""
    rms = float(np.sqrt(np.mean(np.square(wave, dtype=np.float64))))
    if rms <= 0:
        return wave
    gain = min(10 ** (target_dbfs / 20) / rms, 0.99 / float(np.abs(wave).max()))
    return (wave * gain).astype(np.float32)


def clean_speech(wave: np.ndarray, hygiene: Hygiene = Hygiene()) -> np.ndarray:
    if hygiene.trim:
        start, end = speech_span(wave, hygiene.trim_pad_seconds)
        if end - start >= int(0.1 * SAMPLE_RATE):
            wave = wave[start:end]
    if hygiene.loudness_dbfs is not None:
        wave = normalise_loudness(wave, hygiene.loudness_dbfs)
    return np.ascontiguousarray(wave, dtype=np.float32)
