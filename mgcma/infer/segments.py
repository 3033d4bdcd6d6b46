"""Long recordings: split into utterances by voice activity (the Silero VAD inside faster-whisper)
and classify each one.

The file is read in blocks, so memory stays bounded (about one block plus one utterance) for an
hour of audio; an utterance that runs over a block's end is carried into the next block.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import soundfile as sf
import soxr

from ..audio import SAMPLE_RATE, AudioError


@dataclass(frozen=True)
class SegmentConfig:
    max_seconds: float = 3600.0       # longer recordings are refused (raise it for longer ones)
    block_seconds: float = 60.0       # read and search for speech this much at a time
    max_segment_seconds: float = 15.0  # longer stretches of speech are cut into pieces of this length
    min_silence_ms: int = 500         # a pause this long ends an utterance
    min_speech_ms: int = 300          # shorter blips are not utterances
    batch: int = 8                    # utterances transcribed together (recognizer.predict_many)


def speech_segments(path: str | Path, cfg: SegmentConfig = SegmentConfig()) -> Iterator[tuple[float, float, np.ndarray]]:
    """-> (start s, end s, 16 kHz mono waveform) of each utterance, in order."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps
    path = Path(path)
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as e:
        raise AudioError(f"{path.name}: not a readable audio file ({e})") from None
    seconds = info.frames / max(info.samplerate, 1)
    if seconds > cfg.max_seconds:
        raise AudioError(f"{path.name}: {seconds / 60:.1f} minutes is longer than the limit of "
                         f"{cfg.max_seconds / 60:.0f} minutes (SegmentConfig.max_seconds; the app's --max-minutes)")
    options = VadOptions(min_silence_duration_ms=cfg.min_silence_ms, min_speech_duration_ms=cfg.min_speech_ms,
                         max_speech_duration_s=cfg.max_segment_seconds, speech_pad_ms=200)
    resampler = soxr.ResampleStream(info.samplerate, SAMPLE_RATE, 1, dtype="float32")
    carry, offset = np.zeros(0, dtype=np.float32), 0       # offset: samples (16 kHz) before `carry`
    done = 0                                               # end of the last utterance given out
    with sf.SoundFile(str(path)) as f:
        block = int(cfg.block_seconds * info.samplerate)
        while True:
            raw = f.read(block, dtype="float32", always_2d=True)
            last = len(raw) < block
            wave = resampler.resample_chunk(raw.mean(axis=1), last=last) if len(raw) or last else np.zeros(0, np.float32)
            audio = np.concatenate([carry, wave])
            spans = get_speech_timestamps(audio, options) if len(audio) else []
            keep_from = len(audio)
            for span in spans:
                start, end = max(span["start"], done - offset), span["end"]   # the context carried over was given out
                if end <= start:
                    continue
                if not last and end >= len(audio) - int(0.5 * SAMPLE_RATE):   # may go on in the next block
                    keep_from = start
                    break
                yield (offset + start) / SAMPLE_RATE, (offset + end) / SAMPLE_RATE, audio[start:end]
                done = offset + end
            if last:
                return
            # a second before what is carried, as context for the VAD; never more than one utterance's length
            keep_from = max(0, min(keep_from, len(audio)) - SAMPLE_RATE,
                            len(audio) - int((cfg.max_segment_seconds + 1) * SAMPLE_RATE))
            carry, offset = audio[keep_from:].copy(), offset + keep_from


def classify_segments(recognizer, path: str | Path, cfg: SegmentConfig = SegmentConfig(), progress=None) -> list[dict]:
    """[{start, end, text, label, probabilities, answers, not_sure}] for each utterance of a recording.
    progress(seconds done, total seconds) is called after each batch of utterances."""
    total = sf.info(str(path)).duration
    segments, batch = [], []

    def classify():
        for (start, end, _), pred in zip(batch, recognizer.predict_many([(SAMPLE_RATE, w) for _, _, w in batch])):
            if isinstance(pred, AudioError):   # a blip the VAD kept but that is too short or silent after clean-up
                continue
            segments.append(dict(start=round(start, 2), end=round(end, 2), text=pred.transcript, label=pred.label,
                                 probabilities=pred.probabilities, answers=pred.answers, not_sure=pred.not_sure))
        if progress is not None:
            progress(batch[-1][1], total)
        batch.clear()

    for utterance in speech_segments(path, cfg):
        batch.append(utterance)
        if len(batch) == cfg.batch:
            classify()
    if batch:
        classify()
    return segments


def read_span(path: str | Path, start: float, end: float) -> np.ndarray:
    """Seconds `start` to `end` of a recording as a 16 kHz mono waveform (a turn read again after
    the recording was searched for speech, so that no more than one turn is held at a time)."""
    with sf.SoundFile(str(path)) as f:
        f.seek(int(start * f.samplerate))
        raw = f.read(max(0, int((end - start) * f.samplerate)), dtype="float32", always_2d=True).mean(axis=1)
        rate = f.samplerate
    return raw if rate == SAMPLE_RATE else soxr.resample(raw, rate, SAMPLE_RATE).astype(np.float32)
