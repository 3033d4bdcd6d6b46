"""python -m mgcma.normalise --checkpoint DIR --manifest TRAIN.csv[,MORE.csv] [--split train]

Writes DIR/speech_stats.npz: the mean of the speech features the model reads over its training
clips, and over those of each label, for normalisation by the speaker's or session's own speech
(mgcma/infer/speaker_means.py).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from .audio import AudioError
from .data.records import ManifestError, read_manifest
from .infer.recognizer import EmotionRecognizer, InputError
from .infer.speaker_means import STATS_FILE, SpeechMean, save_means


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mgcma.normalise", description=__doc__.strip().splitlines()[2])
    parser.add_argument("--checkpoint", required=True, help="model directory (speech_stats.npz is written into it)")
    parser.add_argument("--manifest", required=True, help="the clips it was trained on (several: comma-separated)")
    parser.add_argument("--split", default=None, help="only rows of this split (e.g. train)")
    args = parser.parse_args(argv)
    try:
        records = [r for path in args.manifest.split(",") for r in read_manifest(path)
                   if r.has_audio and (args.split is None or r.split == args.split)]
        recognizer = EmotionRecognizer(args.checkpoint, asr="none", device="cpu")
    except (ManifestError, InputError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    means: dict[str, SpeechMean] = {}
    for r in tqdm(records, desc="training means", unit="clip", file=sys.stderr):
        try:
            clip = recognizer.add_reference(SpeechMean(), r.path)
        except (AudioError, OSError) as e:
            print(f"{r.path}: {e}; skipped", file=sys.stderr)
            continue
        for name in ("all", r.label):   # the label only sorts the training clips (the enrolment's target)
            means.setdefault(name, SpeechMean()).merge(clip)
    path = save_means(means, Path(args.checkpoint) / STATS_FILE)
    print(f"wrote {path}: mean of {means['all'].frames} frames of {means['all'].clips} clips "
          f"({means['all'].seconds / 60:.1f} min), and per label: " + ", ".join(f"{k} {v.clips}" for k, v in means.items() if k != "all"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
