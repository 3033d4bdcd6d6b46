"""Score a checkpoint on any manifest: WA, UA, per-class recall and the confusion matrix.

  python -m mgcma.evaluate --checkpoint DIR [DIR ...] --manifest CSV [--split test] [--asr auto|shared|none|faster-whisper[:DIR]|openai-whisper:...]
                           [--modality both|speech|text] [--condition clean|white-10|babble-5|telephone|reverb|colour|mp3-16]
                           [--by sex] [--normalise none|corpus|speaker|enrolment] [--text-from manifest|plain|asr]
                           [--precision float32|int8] [--out FILE.json]

Each clip goes through the same path as the app (mgcma.predict). A row with an empty text is
transcribed by the ASR, or with --asr none answered from the voice alone. A bad row (missing
file, unreadable audio, a label the checkpoint does not know) is reported with its line and
skipped; the exit code is non-zero only when nothing could be scored. Several checkpoints (one
recipe trained with other seeds, say) answer together as an ensemble does (mgcma/ensemble.py).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .infer.asr import ASRError
from .audio import SAMPLE_RATE, AudioError
from .data.augment import degrade
from .calibration import accuracy_coverage, calibrated, reliability
from .checkpoint import CheckpointError
from .data.records import ManifestError, read_manifest
from .metrics import classification_metrics
from .infer.speaker_means import SpeechMean
from .config import DEFAULT_CHECKPOINT, add_precision_argument
from .infer.recognizer import EmotionRecognizer, InputError
from .training.steps import confidence_scores


# whose speech each clip's voice is heard relative to: every scored clip, its speaker's, or its
# speaker's enrolment (their first ENROL_CLIPS neutral clips, which are then not scored)
NORMALISE = ("none", "corpus", "speaker", "enrolment")
ENROL_CLIPS = 2
TEXT_FROM = ("manifest", "plain", "asr")


def score_records(recognizer: EmotionRecognizer, records, modality: str = "both", condition: str = "clean",
                  report=print, seed: int = 0, normalise: str = "none", text_from: str = "manifest") -> tuple[dict, list]:
    """-> (metrics, [(record, predicted label)]) over the records that could be scored; the
    metrics carry the calibration of the answers (confidence_report). `normalise`: each clip
    heard relative to the unlabeled speech of all the scored clips ("corpus"), of its speaker, or
    of its speaker's enrolment; with an enrolment the metrics also hold the same clips' untuned
    scores ("untuned"), and the enrolment clips are not scored."""
    labels = recognizer.config.labels
    enrolled = enrolment_clips(records) if normalise == "enrolment" else {}
    scored = [(k, r) for k, r in enumerate(records) if id(r) not in enrolled]
    references = reference_means(recognizer, records, normalise, condition, seed, enrolled) if modality != "text" else {}
    answered, targets, preds, logits, untuned = [], [], [], [], []
    for k, r in tqdm(scored, desc="scoring", unit="clip", file=sys.stderr):
        where = f"line {r.line}" if r.line else r.id
        if r.label not in labels:
            report(f"{where}: label {r.label!r} is not one the checkpoint knows ({', '.join(labels)}); skipped")
            continue
        try:
            heard = None if modality == "text" and text_from != "asr" else \
                load_degraded(recognizer, r, records, condition, seed + k)
            audio = None if modality == "text" else heard
            text = "" if modality == "speech" else words_of(recognizer, r, text_from, heard if modality == "text" else None)
            pred, logit = predict_one(recognizer, audio, text, modality, references.get(group_of(r, normalise)),
                                      calm=normalise == "enrolment")
            if enrolled:
                untuned.append(labels.index(predict_one(recognizer, audio, text, modality)[0]))
        except (AudioError, InputError, ASRError, OSError) as e:
            report(f"{where}: {e}; skipped")
            continue
        targets.append(labels.index(r.label))
        preds.append(labels.index(pred))
        logits.append(logit)
        answered.append((r, pred))
    metrics = classification_metrics(np.array(targets, dtype=int), np.array(preds, dtype=int), labels)
    if answered:
        metrics["calibration"] = confidence_report(np.array(logits), np.array(targets), recognizer.config)
    if enrolled:
        metrics["untuned"] = classification_metrics(np.array(targets, dtype=int), np.array(untuned, dtype=int), labels)
        metrics["enrolment"] = dict(clips=len(enrolled), speakers=len({r.speaker for r in enrolled.values()}))
    return metrics, answered


def enrolment_clips(records) -> dict:
    """{id(record): record}: each speaker's first ENROL_CLIPS neutral clips (their calm speech)."""
    chosen, per_speaker = {}, {}
    for r in records:
        if r.label == "neutral" and r.has_audio and per_speaker.get(r.speaker, 0) < ENROL_CLIPS:
            chosen[id(r)] = r
            per_speaker[r.speaker] = per_speaker.get(r.speaker, 0) + 1
    return chosen


def confidence_report(logits: np.ndarray, targets: np.ndarray, config) -> dict:
    """ECE and the reliability bins before and after the model's temperature, the answers kept
    above its "not sure" threshold, and the accuracy-coverage curve."""
    probs, raw = calibrated(logits, config.temperature), calibrated(logits)
    return dict(confidence_scores(logits, targets, config), temperature=config.temperature,
                not_sure_below=config.not_sure_below, reliability=reliability(probs, targets),
                reliability_uncalibrated=reliability(raw, targets), accuracy_coverage=accuracy_coverage(probs, targets))


def group_of(record, normalise: str) -> str | None:
    return {"corpus": "all", "speaker": record.speaker, "enrolment": record.speaker}.get(normalise)


def reference_means(recognizer, records, normalise: str, condition: str, seed: int, enrolled: dict) -> dict:
    """{group: SpeechMean of its clips as they are heard}: every clip of the group, or its enrolment
    clips; labels are read only to pick an enrolment (the calm speech an app asks a user for)."""
    if normalise == "none":
        return {}
    if recognizer.training_means is None:
        raise InputError(f"--normalise {normalise} needs the checkpoint's training means ({recognizer.checkpoint}/"
                         "speech_stats.npz): write them with python -m mgcma.normalise")
    references = {}
    for k, r in enumerate(tqdm(records, desc=f"reference speech ({normalise})", unit="clip", file=sys.stderr)):
        if enrolled and id(r) not in enrolled:
            continue
        try:
            recognizer.add_reference(references.setdefault(group_of(r, normalise), SpeechMean()),
                                     load_degraded(recognizer, r, records, condition, seed + k))
        except (AudioError, InputError, OSError):
            continue   # reported when the clip is scored
    return references


def load_degraded(recognizer, record, records, condition: str, seed: int):
    """The clip, degraded by `condition` before the recogniser's own clean-up (babble: other speakers' clips)."""
    if record.path is None:
        raise InputError("the row has no audio")
    if condition == "clean":
        return record.path
    wave, _ = recognizer.load_raw(record.path)
    babble = [r.path for r in records if r.path and r.speaker != record.speaker][:200]
    return (SAMPLE_RATE, degrade(wave, condition, seed, babble))


def words_of(recognizer, record, text_from: str, heard=None) -> str:
    """The words a clip is answered with: the manifest's, the manifest's as a recogniser may write them
    (lower case, no punctuation), or the recogniser's own transcript of the clip as heard (under the
    condition). With the voice in the answer (`heard` None) that transcript is left to the
    prediction's own ASR pass, which shares the voice's encoder pass: the words are then empty."""
    if text_from == "plain":
        return " ".join(re.sub(r"[^\w' ]", " ", record.text.lower()).split())
    if text_from == "asr":
        if recognizer.asr is None:
            raise InputError("--text-from asr needs a speech recogniser (not --asr none)")
        return "" if heard is None else recognizer.transcribe(recognizer.load(heard)[0])[0]
    return record.text


def predict_one(recognizer, audio, text: str, modality: str, reference=None, calm: bool = False) -> tuple[str, np.ndarray]:
    """(label, logits) of one modality's answer (or both); with modality "speech" the text is
    empty, so the recogniser's main answer is already the voice's alone."""
    if modality == "text":
        if not text.strip():
            raise InputError("the row has no text")
        answers, _, _ = recognizer.forward(None, text)
        logits = answers["both"].logits[0].numpy()
        return recognizer.config.labels[int(logits.argmax())], logits
    pred = recognizer.predict(audio, text or None, use_asr=recognizer.asr is not None and modality == "both",
                              reference=reference, calm_reference=calm)
    return pred.label, pred.output.logits[0].numpy()


def grouped(answered, labels, column: str) -> dict:
    """Metrics per value of a manifest column (e.g. sex)."""
    groups = defaultdict(list)
    for r, pred in answered:
        groups[r.meta.get(column, "")].append((labels.index(r.label), labels.index(pred)))
    return {g: classification_metrics(np.array([t for t, _ in v]), np.array([p for _, p in v]), labels)
            for g, v in sorted(groups.items())}


def print_metrics(m: dict, title: str) -> None:
    print(f"{title}: n = {m['n']}, WA {100 * m['WA']:.2f} %, UA {100 * m['UA']:.2f} %")
    print("recall: " + ", ".join(f"{k} {100 * v:.1f} %" for k, v in m["recall"].items() if v is not None))
    width = max(len(x) for x in m["labels"])
    print("confusion (rows: true, columns: predicted)")
    print(" " * (width + 2) + " ".join(f"{x[:6]:>6}" for x in m["labels"]))
    for name, row in zip(m["labels"], m["confusion_matrix"]):
        print(f"{name:>{width}}  " + " ".join(f"{v:>6}" for v in row))


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
    if "untuned" in metrics:
        print(f"the same {metrics['n']} clips untuned: WA {100 * metrics['untuned']['WA']:.2f} %, UA "
              f"{100 * metrics['untuned']['UA']:.2f} % (enrolment: {metrics['enrolment']['clips']} neutral clips of "
              f"{metrics['enrolment']['speakers']} speakers, not scored)")
    c = metrics["calibration"]
    print(f"calibration: ECE {100 * c['ECE_uncalibrated']:.1f} % before, {100 * c['ECE']:.1f} % with temperature "
          f"{c['temperature']:.2f}; answered {100 * c['answered']:.0f} % (not sure below {c['not_sure_below']:.2f}), "
          f"accuracy on those {100 * (c['accuracy_answered'] or 0):.1f} %")
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
