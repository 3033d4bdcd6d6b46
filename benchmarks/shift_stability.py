"""How steady the voice's answer is when a clip starts a few milliseconds later: each clip after
0.5 s of silence, shifted by 0, 8, 16 and 24 ms (within one of Whisper's 20-ms encoder frames and
the VAD's 32-ms windows where the clean-up trims), answered from the voice alone.

  python -m benchmarks.shift_stability --manifest data/ravdess4.csv:test data/emodb.csv [--out FILE.json]

Reports, per manifest, the share of clips whose label changes with the shift, the median spread of
the top probability over the shifts, the accuracy over all shifts, and the UA of the first shift's
answer against that of the probabilities averaged over the shifts (a steadier answer, at the cost of
one encoder pass per shift).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from tqdm import tqdm

from mgcma.audio import SAMPLE_RATE
from mgcma.metrics import classification_metrics
from mgcma.config import DEFAULT_CHECKPOINT
from mgcma.infer.recognizer import EmotionRecognizer

from .common import manifest_records, report

SHIFTS_MS = (0, 8, 16, 24)


def shifted_answers(recognizer: EmotionRecognizer, path: str, shifts_ms=SHIFTS_MS) -> list:
    """The voice's Prediction for the clip after 0.5 s of silence plus each shift."""
    wave, _ = recognizer.load_raw(path)
    lead = [np.zeros(SAMPLE_RATE // 2 + SAMPLE_RATE * ms // 1000, np.float32) for ms in shifts_ms]
    return [recognizer.predict((SAMPLE_RATE, np.concatenate([silence, wave])), use_asr=False) for silence in lead]


def stability(recognizer: EmotionRecognizer, manifest: str) -> dict:
    """manifest: a file, or FILE:SPLIT for one split of it."""
    records = [r for r in manifest_records(manifest) if r.has_audio]
    labels = recognizer.config.labels
    changed, spread, right, first, averaged = [], [], [], [], []
    for record in tqdm(records, desc=manifest, unit="clip"):
        answers = shifted_answers(recognizer, record.path)
        probs = np.array([[p.probabilities[label] for label in labels] for p in answers])   # (shifts, classes)
        changed.append(len({p.label for p in answers}) > 1)
        spread.append(probs.max(1).max() - probs.max(1).min())
        right.append(np.mean([p.label == record.label for p in answers]))
        first.append(probs[0].argmax())
        averaged.append(probs.mean(0).argmax())
    truth = np.array([labels.index(r.label) for r in records])
    return dict(manifest=manifest, clips=len(records), shifts_ms=list(SHIFTS_MS),
                label_changes=float(np.mean(changed)), median_top_probability_spread=float(np.median(spread)),
                accuracy_over_shifts=float(np.mean(right)),
                ua_first_shift=classification_metrics(truth, np.array(first), labels)["UA"],
                ua_averaged_over_shifts=classification_metrics(truth, np.array(averaged), labels)["UA"])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.shift_stability", description=__doc__.strip().splitlines()[0])
    parser.add_argument("--manifest", nargs="+", required=True, help="prepared manifests, FILE or FILE:SPLIT")
    parser.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT))
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    recognizer = EmotionRecognizer(args.checkpoint, asr="none", device="cpu")
    report({"checkpoint": args.checkpoint, "results": [stability(recognizer, m) for m in args.manifest]}, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
