"""One Whisper encoder pass for ASR and emotion: what a request costs against ASR alone, a long
recording's real-time factor, and (given a manifest with true transcripts) the word error rate of
the shared pass against faster-whisper's standard 30-s padding of the same Whisper.

  python -m benchmarks.shared_pass [--quick] [--wer-manifest CSV --wer-clips N] [--out FILE.json]

Every time is a median of >= 7 runs; the variants of one measurement are interleaved in one
run, so their ratios hold even on a busy machine.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from mgcma.infer.asr import FasterWhisperASR, word_error_rate
from mgcma.config import DEFAULT_CHECKPOINT
from mgcma.infer.recognizer import EmotionRecognizer
from mgcma.infer.segments import SegmentConfig, classify_segments
from mgcma.infer.shared_asr import decoder_directory

from .common import ROOT, report, speech_clip


def interleaved(fns: dict, repeat: int) -> dict:
    """{name: fn} -> {name: {median, min, max, n}} in ms, the variants run in turn each round."""
    for fn in fns.values():
        fn()   # warm-up
    times = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(1000 * (time.perf_counter() - start))
    return {name: dict(median=statistics.median(t), min=min(t), max=max(t), n=repeat) for name, t in times.items()}


def bench_request(shared: EmotionRecognizer, separate: EmotionRecognizer, standard: FasterWhisperASR, repeat: int) -> dict:
    """A 5 s clip: the whole request (ASR + emotion) against ASR alone."""
    clip = speech_clip(5.0)
    wave, _ = shared.load((16000, clip))
    t = interleaved({
        "request_shared_pass": lambda: shared.predict((16000, clip)),
        "asr_alone_shared_pass": lambda: shared.asr(wave),
        "asr_alone_faster_whisper_same_model": lambda: standard(wave),
        "request_separate_tiny_en_asr": lambda: separate.predict((16000, clip)),
        "asr_alone_faster_whisper_tiny_en": lambda: separate.asr(wave),
    }, repeat)
    m = {k: v["median"] for k, v in t.items()}
    ratios = dict(request_over_asr_alone_shared=m["request_shared_pass"] / m["asr_alone_shared_pass"],
                  request_over_faster_whisper_same_model=m["request_shared_pass"] / m["asr_alone_faster_whisper_same_model"],
                  request_over_faster_whisper_tiny_en=m["request_shared_pass"] / m["asr_alone_faster_whisper_tiny_en"],
                  separate_request_over_its_asr=m["request_separate_tiny_en_asr"] / m["asr_alone_faster_whisper_tiny_en"])
    return dict(times_ms=t, ratios=ratios, clip_text=shared.asr(wave), clip_fell_back=shared.asr.fallbacks > 0)


def long_recording(path: Path, minutes: float, seed: int = 0) -> float:
    """The app's example utterances in random order with 0.5-2.5 s pauses, 16 kHz; -> seconds."""
    rng = np.random.default_rng(seed)
    clips = [sf.read(p, dtype="float32")[0] for p in sorted((ROOT / "app" / "examples").glob("*.wav"))]
    parts, total = [], 0.0
    while total < 60 * minutes:
        pause = np.zeros(int(16000 * rng.uniform(0.5, 2.5)), np.float32)
        parts += [pause, clips[rng.integers(len(clips))]]
        total += (len(parts[-2]) + len(parts[-1])) / 16000
    sf.write(path, np.concatenate(parts), 16000)
    return sf.info(str(path)).duration


def bench_long(recognizers: dict, minutes: float) -> dict:
    """End-to-end segmenting and classifying of a long recording: wall time / audio time."""
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "long.wav"
        seconds = long_recording(path, minutes)
        for name, recognizer in recognizers.items():
            start = time.perf_counter()
            before = getattr(recognizer.asr, "fallbacks", 0)
            segments = classify_segments(recognizer, path, SegmentConfig())
            wall = time.perf_counter() - start
            out[name] = dict(audio_seconds=seconds, wall_seconds=wall, real_time_factor=wall / seconds,
                             segments=len(segments), standard_decodings=getattr(recognizer.asr, "fallbacks", 0) - before)
    return out


def bench_wer(shared: EmotionRecognizer, standard: FasterWhisperASR, manifest: str, n: int) -> dict:
    """Mean WER over n clips of a manifest (evenly spaced), the shared pass against faster-whisper."""
    from mgcma.data.records import read_manifest
    records = [r for r in read_manifest(manifest) if r.has_audio and r.has_text]
    records = records[::max(1, len(records) // n)][:n]
    wer = {"shared_pass": [], "faster_whisper_same_model": []}
    before = shared.asr.fallbacks
    for r in records:
        wave, _ = shared.load(r.path)
        wer["shared_pass"].append(word_error_rate(r.text, shared.asr(wave)))
        wer["faster_whisper_same_model"].append(word_error_rate(r.text, standard(wave)))
    return dict(manifest=manifest, clips=len(records), standard_decoding_share=(shared.asr.fallbacks - before) / len(records),
                **{k: float(np.mean(v)) for k, v in wer.items()})


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.shared_pass", description=__doc__.strip().splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 runs, a 1-minute recording, no comparison run")
    parser.add_argument("--wer-manifest", action="append", default=[], help="manifest(s) with true transcripts")
    parser.add_argument("--wer-clips", type=int, default=60)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    shared = EmotionRecognizer(DEFAULT_CHECKPOINT, "shared", "cpu")
    separate = EmotionRecognizer(DEFAULT_CHECKPOINT, "faster-whisper", "cpu")
    standard = FasterWhisperASR(str(decoder_directory(shared.config.speech_encoder)))
    result = dict(machine=f"{platform.machine()}, {torch.get_num_threads()} torch threads", model=str(DEFAULT_CHECKPOINT),
                  speech_encoder=shared.config.speech_encoder,
                  request_5s=bench_request(shared, separate, standard, 3 if args.quick else 7))
    long = {"shared_pass": shared} if args.quick else {"shared_pass": shared, "separate_tiny_en_asr": separate}
    result["long_recording"] = bench_long(long, 1.0 if args.quick else 5.0)
    result["wer"] = [bench_wer(shared, standard, m, args.wer_clips) for m in args.wer_manifest]
    report(result, args.out)
    r = result["request_5s"]
    print(f"5 s request {r['times_ms']['request_shared_pass']['median']:.0f} ms; ratio to ASR alone "
          f"{r['ratios']['request_over_asr_alone_shared']:.2f} (shared pass), "
          f"{r['ratios']['request_over_faster_whisper_same_model']:.2f} (faster-whisper, same Whisper); "
          f"long recording RTF {result['long_recording']['shared_pass']['real_time_factor']:.3f}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
