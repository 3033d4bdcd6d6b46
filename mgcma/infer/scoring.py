"""Score a recogniser on labelled records: each clip through the app's path, under a condition
(clean, noise, codec...), with its voice heard relative to a speaker's or corpus's speech where asked.
The command: python -m mgcma.evaluate."""
from __future__ import annotations

import re
import sys
from collections import defaultdict
from typing import NamedTuple

import numpy as np
from tqdm import tqdm

from ..audio import SAMPLE_RATE, AudioError
from ..calibration import accuracy_coverage, calibrated, confidence_scores, ece_by_chance, reliability
from ..data.augment import degrade
from ..metrics import classification_metrics
from .asr import ASRError
from .recognizer import EmotionRecognizer, InputError
from .speaker_means import SpeechMean

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
    answered, targets, preds, logits, temperatures, untuned = [], [], [], [], [], []
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
            answer = predict_one(recognizer, audio, text, modality, references.get(group_of(r, normalise)),
                                 calm=normalise == "enrolment")
            if enrolled:
                untuned.append(labels.index(predict_one(recognizer, audio, text, modality).label))
        except (AudioError, InputError, ASRError, OSError) as e:
            report(f"{where}: {e}; skipped")
            continue
        targets.append(labels.index(r.label))
        preds.append(labels.index(answer.label))
        logits.append(answer.logits)
        temperatures.append(answer.temperature)
        answered.append((r, answer.label))
    metrics = classification_metrics(np.array(targets, dtype=int), np.array(preds, dtype=int), labels)
    if answered:
        metrics["calibration"] = confidence_report(np.array(logits), np.array(targets), recognizer.config,
                                                   np.array(temperatures))
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


def confidence_report(logits: np.ndarray, targets: np.ndarray, config, temperatures: np.ndarray) -> dict:
    """ECE and the reliability bins before and after each answer's temperature (an ensemble's
    answer that reads one side only may have its own), the range of ECE a calibrated model would
    show on as many answers by chance, the answers kept above the model's "not sure" threshold, and
    the accuracy-coverage curve. `temperature`: the one most answers took."""
    probs, raw = calibrated(logits, temperatures[:, None]), calibrated(logits)
    values, counts = np.unique(temperatures, return_counts=True)
    scores = confidence_scores(logits, targets, config, temperatures)
    return dict(scores, ECE_by_chance=ece_by_chance(probs.max(1), scores["ECE"]), temperature=float(values[counts.argmax()]),
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


class Answer(NamedTuple):
    label: str
    logits: np.ndarray    # (C,), before the temperature
    temperature: float    # the one the answer is calibrated with


def predict_one(recognizer, audio, text: str, modality: str, reference=None, calm: bool = False) -> Answer:
    """One modality's answer (or both); with modality "speech" the text is empty, so the
    recogniser's main answer is already the voice's alone."""
    if modality == "text":
        if not text.strip():
            raise InputError("the row has no text")
        answers, _, _ = recognizer.forward(None, text)
        logits = answers["both"].logits[0].numpy()
        return Answer(recognizer.config.labels[int(logits.argmax())], logits, float(answers["both"].temperature))
    pred = recognizer.predict(audio, text or None, use_asr=recognizer.asr is not None and modality == "both",
                              reference=reference, calm_reference=calm)
    return Answer(pred.label, pred.output.logits[0].numpy(), float(pred.output.temperature))


def grouped(answered, labels, column: str) -> dict:
    """Metrics per value of a manifest column (e.g. sex)."""
    groups = defaultdict(list)
    for r, pred in answered:
        groups[r.meta.get(column, "")].append((labels.index(r.label), labels.index(pred)))
    return {g: classification_metrics(np.array([t for t, _ in v]), np.array([p for _, p in v]), labels)
            for g, v in sorted(groups.items())}
