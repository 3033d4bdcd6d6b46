"""Score a checkpoint on any manifest: WA, UA, per-class recall and the confusion matrix.

  python -m mgcma.evaluate --checkpoint DIR [DIR ...] --manifest CSV [--split test] [--asr auto|shared|none|faster-whisper[:DIR]|openai-whisper:...]
                           [--modality both|speech|text] [--condition clean|white-10|babble-5|telephone|reverb|colour|mp3-16]
                           [--by sex] [--normalise none|corpus|speaker|enrolment] [--text-from manifest|plain|asr]
                           [--precision float32|int8] [--out FILE.json]

Each clip goes through the same path as the app (mgcma.predict). A row with an empty text is
transcribed by the ASR, or with --asr none answered from the voice alone. A bad row (missing
file, unreadable audio, a label the checkpoint does not know) is reported with its line and
skipped; the exit code is non-zero only when nothing could be scored. Several checkpoints (one
recipe trained with other seeds, say) answer together as an ensemble does (mgcma/infer/ensemble.py).
Each figure says how far chance could move it: the UA over test sets redrawn from the same
speakers, and the ECE that a model right exactly as often as it says would show on as many answers.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .config import DEFAULT_CHECKPOINT, CheckpointError, add_precision_argument
from .data.records import ManifestError, read_manifest
from .infer.asr import ASRError
from .infer.recognizer import EmotionRecognizer, InputError
from .infer.scoring import ENROL_CLIPS, NORMALISE, TEXT_FROM, grouped, score_records
from .metrics import ua_over_resampled_speakers


def print_metrics(m: dict, title: str) -> None:
    print(f"{title}: n = {m['n']}, WA {100 * m['WA']:.2f} %, UA {100 * m['UA']:.2f} %")
    print("recall: " + ", ".join(f"{k} {100 * v:.1f} %" for k, v in m["recall"].items() if v is not None))
    width = max(len(x) for x in m["labels"])
    print("confusion (rows: true, columns: predicted)")
    print(" " * (width + 2) + " ".join(f"{x[:6]:>6}" for x in m["labels"]))
    for name, row in zip(m["labels"], m["confusion_matrix"]):
        print(f"{name:>{width}}  " + " ".join(f"{v:>6}" for v in row))


def speaker_spread(answered, labels) -> dict | None:
    """The UA's range over test sets redrawn from the same speakers (ua_over_resampled_speakers), printed."""
    spread = ua_over_resampled_speakers([labels.index(r.label) for r, _ in answered],
                                        [labels.index(p) for _, p in answered], [r.speaker for r, _ in answered], len(labels))
    if spread:
        print(f"UA over test sets redrawn from these {spread['speakers']} speakers: {100 * spread['low']:.1f}-"
              f"{100 * spread['high']:.1f} % (5th-95th percentile; median {100 * spread['median']:.1f})")
    return spread


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mgcma.evaluate", description=__doc__.strip().splitlines()[0])
    parser.add_argument("--checkpoint", nargs="+", default=[str(DEFAULT_CHECKPOINT)],
                        help="model directory; several answer together (the mean of their calibrated probabilities; "
                             "the first's own members/ are then not read)")
    parser.add_argument("--manifest", required=True, help="CSV or JSONL with path, text, label, speaker")
    parser.add_argument("--split", default=None, help="score only rows of this split (train/validation/test)")
    parser.add_argument("--asr", default="auto", help="for empty texts: auto | shared | faster-whisper[:DIR] | openai-whisper:... | none")
    parser.add_argument("--modality", default="both", choices=["both", "speech", "text"], help="what the answer may use")
    parser.add_argument("--condition", default="clean", help="clean | white-SNR | babble-SNR | telephone | reverb | colour | mp3-KBPS")
    parser.add_argument("--text-from", default="manifest", choices=TEXT_FROM,
                        help="the words: the manifest's, the same lower-cased without punctuation (plain), or the "
                             "ASR's transcript of each clip (asr: the words answer on what a recogniser hears)")
    parser.add_argument("--by", default=None, help="also score per value of this manifest column (e.g. sex)")
    parser.add_argument("--normalise", default="none", choices=NORMALISE,
                        help="hear each voice relative to the unlabeled speech of all scored clips, of its speaker, or "
                             f"of its speaker's first {ENROL_CLIPS} neutral clips (enrolment; not scored)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    add_precision_argument(parser)
    parser.add_argument("--out", default=None, help="write the metrics as JSON here")
    args = parser.parse_args(argv)
    start = time.time()
    problems = []
    try:
        records = read_manifest(args.manifest, errors=problems)
        recognizer = EmotionRecognizer(args.checkpoint[0], args.asr, args.device, precision=args.precision,
                                       members=args.checkpoint[1:] or None)
    except (ManifestError, CheckpointError, ASRError, InputError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for p in problems:
        print(f"skipped {p}", file=sys.stderr)
    if args.split:
        records = [r for r in records if r.split == args.split]
    try:
        metrics, answered = score_records(recognizer, records, args.modality, args.condition,
                                          report=lambda msg: print(f"{args.manifest}: {msg}", file=sys.stderr),
                                          normalise=args.normalise, text_from=args.text_from)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if not answered:
        print("error: no row could be scored", file=sys.stderr)
        return 1
    print_metrics(metrics, f"{args.manifest} ({args.modality}, {args.condition}, normalise: {args.normalise})")
    metrics["UA_over_resampled_speakers"] = speaker_spread(answered, recognizer.config.labels)
    # each clip's answer, so that two models' answers to the same clips can be compared (analysis compare)
    metrics["answers"] = [dict(id=r.id, speaker=r.speaker, label=r.label, predicted=pred) for r, pred in answered]
    if "untuned" in metrics:
        print(f"the same {metrics['n']} clips untuned: WA {100 * metrics['untuned']['WA']:.2f} %, UA "
              f"{100 * metrics['untuned']['UA']:.2f} % (enrolment: {metrics['enrolment']['clips']} neutral clips of "
              f"{metrics['enrolment']['speakers']} speakers, not scored)")
    c = metrics["calibration"]
    print(f"calibration: ECE {100 * c['ECE_uncalibrated']:.1f} % before, {100 * c['ECE']:.1f} % with temperature "
          f"{c['temperature']:.2f}; answered {100 * c['answered']:.0f} % (not sure below {c['not_sure_below']:.2f}), "
          f"accuracy on those {100 * (c['accuracy_answered'] or 0):.1f} %")
    chance = c["ECE_by_chance"]
    print(f"  a model right exactly as often as it says would show an ECE of {100 * chance['low']:.1f}-"
          f"{100 * chance['high']:.1f} % on these {metrics['n']} answers by chance (median {100 * chance['median']:.1f}; "
          f"{100 * chance['share_reaching_measured']:.0f} % of such test sets reach {100 * c['ECE']:.1f} %)")
    metrics.update(confusion=metrics.pop("confusion_matrix"), skipped=len(records) - len(answered) + len(problems),
                   modality=args.modality, condition=args.condition, normalise=args.normalise,
                   text_from=args.text_from, precision=recognizer.precision,
                   checkpoint=args.checkpoint[0] if len(args.checkpoint) == 1 else args.checkpoint,
                   manifest=args.manifest, split=args.split, seconds=round(time.time() - start, 1))
    if args.by:
        metrics["by"] = {args.by: grouped(answered, recognizer.config.labels, args.by)}
        for g, m in metrics["by"][args.by].items():
            print(f"  {args.by} = {g or '(none)'}: n = {m['n']}, WA {100 * m['WA']:.2f} %, UA {100 * m['UA']:.2f} %")
    if args.out:
        Path(args.out).write_text(json.dumps(metrics, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
