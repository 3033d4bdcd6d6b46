"""Word timings against the truth: the app's word timer (faster-whisper tiny.en over the padded clip)
against the bundled model's own decoder (Whisper base's alignment heads over the shared pass's
frames, which would spare the app a second encoder), on clips whose word boundaries are known.

  python -m benchmarks.word_times [--out FILE.json]

The clips are eSpeak words spoken one at a time, trimmed to their sound and joined with known gaps
(3 voices x 4 sentences x 2 gaps), so each word's true start and end are where it was placed.
Reports the boundary error (start and end of every word) and the time per clip (median of 3).
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from mgcma.analysis.word_times import WordTimer
from mgcma.config import DEFAULT_CHECKPOINT
from mgcma.infer.recognizer import EmotionRecognizer
from mgcma.data.synthetic import ESpeak

from .common import report

SENTENCES = ["the train leaves at noon from platform seven", "I never said she stole my money",
             "please bring the blue folder to my office tomorrow", "kids are talking by the door"]
VOICES, GAPS = ("en-us+m1", "en+f4", "en-gb-x-rp+m7"), (0.05, 0.3)


def known_timing_clip(espeak: ESpeak, sentence: str, voice: str, gap: float):
    """-> 16 kHz clip and [(word, start, end)] where each word truly is."""
    parts, truth, t = [np.zeros(1600, np.float32)], [], 0.1
    for word in sentence.split():
        wave = espeak.synthesize(word, voice, 160, 100, 50, 50)
        sound = np.flatnonzero(np.abs(wave) > 0.01)
        wave = wave[sound[0]:sound[-1] + 1]
        truth.append((word, t, t + len(wave) / 16000))
        parts += [wave, np.zeros(int(gap * 16000), np.float32)]
        t += (len(wave) + int(gap * 16000)) / 16000
    return np.concatenate(parts), truth


def shared_pass_timer(recognizer: EmotionRecognizer):
    """align(wave, text) through the bundled model's encoder pass and its CTranslate2 decoder."""
    import ctranslate2
    asr, tokenizer = recognizer.asr, recognizer.asr.tokenizer

    def align(wave, text):
        audio = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))[None]
        with torch.inference_mode():
            features, _ = recognizer.model.encode_speech(audio, torch.ones_like(audio, dtype=torch.bool))
        frames = ctranslate2.StorageView.from_array(np.ascontiguousarray(asr.decoder_input([features]).float().numpy()))
        tokens = tokenizer.encode(" " + text.strip())
        result = asr.decoder.align(frames, tokenizer.sot_sequence, [tokens], len(wave) // 160, median_filter_width=7)[0]
        text_at, time_at = (np.array([pair[k] for pair in result.alignments]) for k in (0, 1))
        words, word_tokens = tokenizer.split_to_word_tokens(tokens + [tokenizer.eot])
        bounds = np.pad(np.cumsum([len(t) for t in word_tokens[:-1]]), (1, 0))
        jumps = np.pad(np.diff(text_at), (1, 0), constant_values=1).astype(bool)
        seconds = time_at[jumps] / 50   # 50 encoder frames a second
        return [(w.strip(), float(s), float(e)) for w, s, e in zip(words, seconds[bounds[:-1]], seconds[bounds[1:]])]
    return align


def score(align, clips) -> dict:
    errors, times = [], []
    for wave, truth in clips:
        found = [w for w in align(wave, " ".join(word for word, _, _ in truth)) if w[0].strip(".,!?")]
        if len(found) != len(truth):
            raise RuntimeError(f"{len(found)} words timed for {len(truth)}")
        errors += [abs(f[k] - t[k]) for f, t in zip(found, truth) for k in (1, 2)]
        runs = []
        for _ in range(3):
            start = time.perf_counter()
            align(wave, " ".join(word for word, _, _ in truth))
            runs.append(1000 * (time.perf_counter() - start))
        times.append(statistics.median(runs))
    errors = np.array(errors)
    return dict(median_error_s=float(np.median(errors)), mean_error_s=float(errors.mean()),
                share_within_0_1_s=float(np.mean(errors <= 0.1)), boundaries=len(errors),
                ms_per_clip=statistics.median(times))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.word_times", description=__doc__.strip().splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    espeak = ESpeak()
    clips = [known_timing_clip(espeak, s, v, g) for v in VOICES for s in SENTENCES for g in GAPS]
    result = {"app's word timer (faster-whisper tiny.en)": score(WordTimer().align, clips),
              "shared pass (Whisper base's decoder)": score(shared_pass_timer(EmotionRecognizer(DEFAULT_CHECKPOINT, "shared")), clips)}
    report(result, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
