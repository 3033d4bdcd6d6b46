"""What a laptop CPU user waits for, with the keys a script reads (issue "Fast on a laptop CPU").

  python -m benchmarks.laptop [--quick] [--ravdess MANIFEST] [--out FILE.json]

request_ms_5s_asr                  a 5 s clip, transcript and three answers (shared Whisper pass), median
asr_ms_5s_faster_whisper_tiny_en   faster-whisper's tiny.en transcript of the same clip, interleaved with it
live_hop_ms                        the live label's work for one 2 s hop (chunks in, voice-only answer out)
long_rtf_5min                      a 5-minute recording, segmented and classified: wall time / audio time
long_peak_rss_mb                   peak memory of `mgcma.predict --segments` over 5 and 60 (quick: 10) minutes
int8_ua_delta                      UA (voice and words) of --precision int8 minus float32, RAVDESS actors 19-24
int8_frame_cosine                  per-layer cosine of the int8 encoder's frames to float32's (real clips)
onnx_max_prob_diff                 largest |p_onnx - p_torch| over the real example clips, every answer
app_cold_start_s                   from `python app.py` to the first answered request (benchmarks/common.py)
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from datetime import date
from pathlib import Path

import numpy as np
import torch

from mgcma.config import DEFAULT_CHECKPOINT
from mgcma.encoders.precision import frame_cosine
from mgcma.infer.asr import FasterWhisperASR
from mgcma.infer.live import LiveTake, live_label
from mgcma.infer.recognizer import EmotionRecognizer

from .common import ROOT, bench_app_cold_start, measure, predict_in_own_process, speech_clip
from .shared_pass import bench_long, interleaved, long_recording

REAL = sorted((ROOT / "app" / "examples").glob("*.flac"))
KEYS = ("request_ms_5s_asr", "asr_ms_5s_faster_whisper_tiny_en", "live_hop_ms", "long_rtf_5min", "long_peak_rss_mb",
        "int8_ua_delta", "int8_frame_cosine", "onnx_max_prob_diff", "app_cold_start_s")


def bench_request(recognizer: EmotionRecognizer, repeat: int) -> dict:
    clip = speech_clip(5.0)
    wave, _ = recognizer.load((16000, clip))
    tiny_en = FasterWhisperASR()
    t = interleaved({"request": lambda: recognizer.predict((16000, clip)), "asr_tiny_en": lambda: tiny_en(wave)}, repeat)
    return dict(times_ms=t, ratio=t["request"]["median"] / t["asr_tiny_en"]["median"])


@torch.inference_mode()
def bench_stages(recognizer: EmotionRecognizer, repeat: int) -> dict:
    """Where a 5-s request's time goes: reading, the encoder, the decoder (greedy and with a beam)
    over the clip and its silence, MiniLM and the three answers."""
    clip = (16000, speech_clip(5.0))
    wave, _ = recognizer.load(clip)
    asr, model = recognizer.asr, recognizer.model
    audio = torch.from_numpy(wave)[None]
    mask = torch.ones_like(audio, dtype=torch.bool)
    features, frames_mask = model.encode_speech(audio, mask)
    frames = asr.decoder_input([features])
    text = asr.decode(frames, 1, 200)[0][0]
    return {name: measure(fn, repeat) for name, fn in (
        ("load_and_clean", lambda: recognizer.load(clip)),
        ("speech_encoder", lambda: model.encode_speech(audio, mask)),
        ("decoder_greedy", lambda: asr.decode(frames, 1, 200)),
        ("decoder_beam5", lambda: asr.decode(frames, 5, 224)),
        ("text_encoder_and_three_answers", lambda: recognizer.forward(wave, text, (features, frames_mask))))}


def bench_live_hop(recognizer: EmotionRecognizer, repeat: int) -> dict:
    """Half-second chunks at 48 kHz, as a browser sends them; a hop ends with its label."""
    audio = (speech_clip(2.0 * (repeat + 3)) * 32767).astype(np.int16)
    audio = np.repeat(audio, 3)                                 # 48 kHz
    take, chunks = LiveTake(), iter(np.split(audio, len(audio) // 24000))

    def hop():
        while not take.add(48000, next(chunks)):
            pass
        live_label(recognizer, take)
    return measure(hop, repeat)


def peak_rss_mb(minutes: float) -> dict:
    """`mgcma.predict --segments` over a recording of this length, in its own process."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "long.wav"
        seconds = long_recording(path, minutes)
        result, _, peak_mb = predict_in_own_process(["--segments", "--audio", str(path), "--max-minutes", str(minutes + 1)])
    return dict(minutes=seconds / 60, peak_rss_mb=peak_mb, segments=len(result["segments"]))


@torch.inference_mode()
def int8_frames(float32: EmotionRecognizer, int8: EmotionRecognizer) -> list[float]:
    """Mean per-layer cosine over the real example clips."""
    cosines = []
    for clip in REAL:
        wave, _ = float32.load(clip)
        audio = torch.from_numpy(wave)[None]
        mask = torch.ones_like(audio, dtype=torch.bool)
        a, frames = float32.model.encode_speech(audio, mask)
        b, _ = int8.model.encode_speech(audio, mask)
        cosines.append(frame_cosine(a, b, frames))
    return torch.stack(cosines).mean(0).tolist()


def ua_on(recognizer: EmotionRecognizer, manifest: str) -> float | None:
    from mgcma.data.records import read_manifest
    from mgcma.infer.scoring import score_records
    records = [r for r in read_manifest(manifest) if r.split == "test"]
    metrics, _ = score_records(recognizer, records, report=lambda msg: None)
    return metrics["UA"]


def bench_int8(float32: EmotionRecognizer, manifest: str | None, repeat: int) -> dict:
    int8 = EmotionRecognizer(DEFAULT_CHECKPOINT, asr="none", device="cpu", precision="int8")
    audio = torch.from_numpy(speech_clip(5.0))[None]
    mask = torch.ones_like(audio, dtype=torch.bool)
    with torch.inference_mode():
        t = interleaved({p: (lambda r=r: r.model.encode_speech(audio, mask)) for p, r in
                         (("float32", float32), ("int8", int8))}, repeat)
    out = dict(encoder_ms_5s=t, frame_cosine=int8_frames(float32, int8), ua_delta=None)
    if manifest and Path(manifest).is_file():
        out.update(manifest=manifest, ua_float32=ua_on(float32, manifest), ua_int8=ua_on(int8, manifest))
        out["ua_delta"] = 100 * (out["ua_int8"] - out["ua_float32"])
    return out


def bench_onnx() -> dict:
    from mgcma.infer.onnx_export import compare_with_torch, export
    from mgcma.infer.onnx_recognizer import OnnxRecognizer
    with tempfile.TemporaryDirectory() as tmp:
        onnx = export(DEFAULT_CHECKPOINT, tmp)
        diff = compare_with_torch(DEFAULT_CHECKPOINT, onnx, REAL)
        recognizers = {"onnx": OnnxRecognizer(onnx, asr="none"),
                       "torch": EmotionRecognizer(DEFAULT_CHECKPOINT, asr="none", device="cpu")}
        clip, text = (16000, speech_clip(5.0)), "I just got the job, this is wonderful news."
        t = interleaved({k: (lambda r=r: r.predict(clip, text)) for k, r in recognizers.items()}, 7)
    return dict(max_prob_diff=diff, clips=len(REAL), request_ms_5s_given_text=t)


def run(quick: bool, manifest: str | None) -> dict:
    repeat = 3 if quick else 7
    recognizer = EmotionRecognizer(DEFAULT_CHECKPOINT, "auto", "cpu")
    r = dict(machine=f"{platform.machine()}, {torch.get_num_threads()} torch threads", quick=quick,
             request=bench_request(recognizer, repeat), stages=bench_stages(recognizer, repeat),
             live_hop=bench_live_hop(recognizer, repeat))
    r["long"] = bench_long({"shared_pass": recognizer}, 1.0 if quick else 5.0)["shared_pass"]
    r["memory"] = [peak_rss_mb(m) for m in ((1.0, 10.0) if quick else (5.0, 59.0))]
    r["int8"] = bench_int8(EmotionRecognizer(DEFAULT_CHECKPOINT, asr="none", device="cpu"), manifest, repeat)
    r["onnx"] = bench_onnx()
    r["app_cold_start"] = bench_app_cold_start(1 if quick else 3)
    r.update(request_ms_5s_asr=r["request"]["times_ms"]["request"]["median"],
             asr_ms_5s_faster_whisper_tiny_en=r["request"]["times_ms"]["asr_tiny_en"]["median"],
             live_hop_ms=r["live_hop"]["median"], long_rtf_5min=r["long"]["real_time_factor"],
             long_peak_rss_mb={f"{m['minutes']:.0f}min": m["peak_rss_mb"] for m in r["memory"]},
             int8_ua_delta=r["int8"]["ua_delta"], int8_frame_cosine=r["int8"]["frame_cosine"],
             onnx_max_prob_diff=r["onnx"]["max_prob_diff"], app_cold_start_s=r["app_cold_start"]["first_answer_s"])
    return r


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.laptop", description=__doc__.strip().splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 runs, a 1-minute recording, 1 and 10 minutes for memory")
    parser.add_argument("--ravdess", default=str(ROOT / "data" / "ravdess4.csv"),
                        help="a prepared RAVDESS manifest (its test split: actors 19-24) for int8_ua_delta")
    parser.add_argument("--out", type=Path, default=None, help="default: benchmarks/results/laptop-<machine>-<date>.json")
    args = parser.parse_args(argv)
    r = run(args.quick, args.ravdess)
    text = json.dumps(r, indent=2)
    print(text)
    name = f"laptop-{platform.machine()}-{os.cpu_count()}cpu-{date.today()}{'-quick' if args.quick else ''}.json"
    out = args.out or ROOT / "benchmarks" / "results" / name
    out.write_text(text + "\n")
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
