"""Utterance records: read from IEMOCAP or a manifest, written as manifests, split into
speaker-independent folds and validation speakers; and the keys that tell transcripts apart."""
from __future__ import annotations

import csv
import os
import json
import random
import re
import warnings
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class Utterance:
    id: str
    path: str | None          # audio file; None when `waveform` holds the audio, or for a text-only record
    text: str                 # "" = no transcript (a speech-only record in training; the ASR fills it in inference)
    label: str
    speaker: str
    group: str = ""           # the cross-validation group: IEMOCAP session, or a manifest's fold
    waveform: np.ndarray | None = field(default=None, repr=False)
    split: str = ""           # "train" | "validation" | "test": a fixed split instead of cross-validation
    corpus: str = ""          # the manifest it came from, for mixed-corpus training and per-corpus scores
    meta: dict = field(default_factory=dict, repr=False)   # a manifest's other columns (sex, ...)
    line: int = 0             # its line in the manifest, for messages

    @property
    def has_audio(self) -> bool:
        return self.path is not None or self.waveform is not None

    @property
    def has_text(self) -> bool:
        return bool(self.text.strip())


class ManifestError(ValueError):
    pass


# ---------------------------------------------------------------------------------- IEMOCAP
IEMOCAP_MAP = {"neu": "neutral", "hap": "happy", "exc": "happy", "ang": "angry", "sad": "sad"}
IEMOCAP_EXPECTED = {"neutral": 1708, "happy": 1636, "angry": 1103, "sad": 1084}
_EVAL_LINE = re.compile(r"^\[\s*[\d.]+\s*-\s*[\d.]+\s*\]\t(\S+)\t(\S+)\t")
_TRANSCRIPT_LINE = re.compile(r"^(Ses\d\d[MF]_\S+?_[MF]\d{3})\s*\[[^\]]*\]:\s*(.*)$")


def read_iemocap(root: str | Path, report=print) -> list[Utterance]:
    """Parse IEMOCAP_full_release/: 4 classes (hap + exc merged), sessions as groups.
    Utterances whose wav or transcript is missing are skipped and counted."""
    root = Path(root)
    sessions = sorted(p for p in root.glob("Session[1-5]") if p.is_dir())
    if not sessions:
        raise FileNotFoundError(f"{root} has no Session1..Session5 folders: is it IEMOCAP_full_release/?")
    records, skipped = [], Counter()
    for session in sessions:
        texts = {}
        for tfile in sorted((session / "dialog" / "transcriptions").glob("*.txt")):
            for line in tfile.read_text(errors="replace").splitlines():
                if m := _TRANSCRIPT_LINE.match(line.strip()):
                    texts[m.group(1)] = m.group(2).strip()
        for efile in sorted((session / "dialog" / "EmoEvaluation").glob("*.txt")):
            dialog = efile.stem
            for line in efile.read_text(errors="replace").splitlines():
                m = _EVAL_LINE.match(line)
                if not m:
                    continue
                utt, code = m.groups()
                if code not in IEMOCAP_MAP:
                    skipped["other emotion"] += 1
                    continue
                wav = session / "sentences" / "wav" / dialog / f"{utt}.wav"
                if not wav.is_file():
                    skipped["missing wav"] += 1
                    continue
                if utt not in texts:
                    skipped["missing transcript"] += 1
                    continue
                speaker = f"{utt[:5]}{utt.split('_')[-1][0]}"  # Ses01 + F/M of the speaking actor
                records.append(Utterance(utt, str(wav), texts[utt], IEMOCAP_MAP[code], speaker,
                                         group=session.name))
    report_counts(records, skipped, report)
    return records


def report_counts(records, skipped, report=print) -> None:
    counts = Counter(r.label for r in records)
    report(f"IEMOCAP: {len(records)} utterances: " + ", ".join(f"{k} {counts[k]}" for k in IEMOCAP_EXPECTED)
           + (f" (skipped: {dict(skipped)})" if skipped else ""))
    expected_total = sum(IEMOCAP_EXPECTED.values())
    if dict(counts) != IEMOCAP_EXPECTED:
        diff = ", ".join(f"{k} {counts[k]} vs {v}" for k, v in IEMOCAP_EXPECTED.items() if counts[k] != v)
        report(f"WARNING: the class counts differ from the standard 4-class IEMOCAP set "
               f"({expected_total} = 1708 / 1636 / 1103 / 1084): {diff}. Results are not comparable "
               f"with published numbers unless this is intended.")


# --------------------------------------------------------------------------------- manifest
MANIFEST_FIELDS = ["path", "text", "label", "speaker"]
SPLITS = ("train", "validation", "test")


def read_manifest(path: str | Path, errors: list | None = None) -> list[Utterance]:
    """CSV or JSONL with path, text, label, speaker and optional fold, split and id.
    Relative audio paths are taken from the manifest's folder. An empty path is a text-only
    record; an empty text a record without transcript (the ASR fills it where one is asked for)."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"manifest {path} does not exist")
    if path.suffix == ".jsonl":
        rows = []
        for lineno, line in enumerate(path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ManifestError(f"{path}:{lineno}: not valid JSON ({e})") from None
            rows.append((lineno, row))
    else:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            missing = [k for k in MANIFEST_FIELDS if k not in (reader.fieldnames or [])]
            if missing:
                raise ManifestError(f"{path}:1: the header lacks column(s) {', '.join(missing)} "
                                    f"(needs {', '.join(MANIFEST_FIELDS)}, optional fold, split, id)")
            rows = [(i, row) for i, row in enumerate(reader, start=2)]
    records = []
    for lineno, row in rows:
        try:
            records.append(manifest_row(path, lineno, row))
        except ManifestError as e:
            if errors is None:
                raise
            errors.append(str(e))
    if not records:
        raise ManifestError(f"{path} holds no utterances")
    return records


def manifest_row(path: Path, lineno: int, row) -> Utterance:
    where = f"{path}:{lineno}"
    if not isinstance(row, dict):
        raise ManifestError(f"{where}: expected an object with {', '.join(MANIFEST_FIELDS)}")
    for key in ("label", "speaker"):
        if row.get(key) in (None, ""):
            raise ManifestError(f"{where}: '{key}' is empty")
    text = str(row.get("text") or "")
    if row.get("path") in (None, "") and not text.strip():
        raise ManifestError(f"{where}: neither audio ('path') nor 'text': the row holds nothing to learn from")
    audio = None
    if row.get("path") not in (None, ""):
        audio = Path(str(row["path"]))
        if not audio.is_absolute():
            audio = path.parent / audio
    split = str(row.get("split") or "")
    if split and split not in SPLITS:
        raise ManifestError(f"{where}: split {split!r} is not one of {', '.join(SPLITS)}")
    fold = row.get("fold")
    extra = {k: str(v) for k, v in row.items() if k not in (*MANIFEST_FIELDS, "fold", "split", "id") and v not in (None, "")}
    return Utterance(meta=extra, line=lineno, id=str(row.get("id") or (audio.stem if audio else f"{path.stem}-{lineno}")),
                     path=None if audio is None else str(audio), text=text,
                     label=str(row["label"]), speaker=str(row["speaker"]),
                     group="" if fold in (None, "") else str(fold), split=split, corpus=path.stem)


def write_manifest(records: list[Utterance], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    extra = sorted({k for r in records for k in r.meta})
    rows = [dict(path=os.path.relpath(r.path, path.parent.resolve()) if r.path else "", text=r.text, label=r.label,
                 speaker=r.speaker, fold=r.group, id=r.id, split=r.split, **{k: r.meta.get(k, "") for k in extra})
            for r in records]
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    else:
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["path", "text", "label", "speaker", "fold", "id", "split", *extra])
            writer.writeheader()
            writer.writerows(rows)
    return path


# ------------------------------------------------------------------------------------ folds
def groups_of(records: list[Utterance]) -> list[str]:
    """The leave-one-out unit: the record's group (session / fold) if every record has one, else speaker."""
    if all(r.group for r in records):
        return [r.group for r in records]
    return [r.speaker for r in records]


def leave_one_group_out(records: list[Utterance]) -> list[tuple[str, list[int], list[int]]]:
    """-> [(test group, train indices, test indices)] for each group in sorted order."""
    groups = groups_of(records)
    return [(g, [i for i, x in enumerate(groups) if x != g], [i for i, x in enumerate(groups) if x == g])
            for g in sorted(set(groups))]


def leave_one_corpus_out(records: list[Utterance]) -> list[tuple[str, list[int], list[int]]]:
    """-> [(held-out corpus, train indices, test indices)] for each corpus with audio. The held-out
    corpus is tested whole (every split); the others train on every row but their test split, so a
    corpus's own test speakers are never trained on, whichever corpus is held out."""
    speech_corpora = sorted({r.corpus for r in records if r.has_audio})
    if len(speech_corpora) < 2:
        raise ValueError(f"leaving one corpus out needs at least 2 corpora with audio; got {speech_corpora or 'none'} "
                         "(the corpus is the manifest's file name: pass several manifests)")
    return [(c, [i for i, r in enumerate(records) if r.corpus != c and r.split != "test"],
             [i for i, r in enumerate(records) if r.corpus == c and r.has_audio]) for c in speech_corpora]


def check_speaker_independence(records: list[Utterance], name: str, train_idx: list[int], test_idx: list[int]) -> None:
    """Refuse a fold whose test speakers also speak in its training side (a voice heard in
    training inflates the test score). Text-only rows have no voice and are not counted."""
    heard = {records[i].speaker for i in train_idx if records[i].has_audio}
    both = sorted(heard & {records[i].speaker for i in test_idx if records[i].has_audio})
    if both:
        lines = [f"{records[i].corpus}:{records[i].line}" for i in test_idx if records[i].speaker == both[0]][:3]
        raise ManifestError(f"fold {name!r} is not speaker-independent: speaker(s) {', '.join(both[:5])}"
                            f"{' ...' if len(both) > 5 else ''} are in its test side (e.g. {', '.join(lines)}) "
                            "and in its training side. Give each speaker one fold (or one split) in the manifest.")


def validation_split(records: list[Utterance], train_idx: list[int], fraction: float = 0.15,
                     seed: int = 0, min_speakers: int = 2) -> tuple[list[int], list[int]]:
    """Split the training side only: whole speakers go to validation (as the test fold holds
    unseen speakers), at least `min_speakers` of them while two stay to train, chosen so that
    every class of the training side is heard in validation when some choice allows it. Falls
    back to random utterances when there are too few speakers."""
    rng = random.Random(seed)
    speakers = sorted({records[i].speaker for i in train_idx})
    if len(speakers) >= 3:
        n_val = max(1, min(max(min_speakers, round(fraction * len(speakers))), len(speakers) - 2))
        held = held_out_speakers(records, train_idx, speakers, n_val, rng)
        val = [i for i in train_idx if records[i].speaker in held]
        return [i for i in train_idx if records[i].speaker not in held], val
    corpus = records[train_idx[0]].corpus if train_idx else ""
    warnings.warn(f"{corpus or 'the training side'} has {len(speakers)} speaker(s): its validation split cannot be "
                  "speaker-independent, so it holds random utterances of the training speakers and model selection "
                  "may favour what they alone say", stacklevel=2)
    shuffled = list(train_idx)
    rng.shuffle(shuffled)
    n_val = max(1, round(fraction * len(shuffled)))
    return sorted(shuffled[n_val:]), sorted(shuffled[:n_val])


def held_out_speakers(records, train_idx, speakers: list[str], n_val: int, rng: random.Random,
                      tries: int = 50) -> set[str]:
    """The best of `tries` seeded draws of `n_val` speakers: training must keep every class, and of
    those draws the first whose validation hears the most classes (all where any draw does)."""
    labels = {records[i].label for i in train_idx}
    best, best_score = None, None
    for _ in range(tries):
        rng.shuffle(speakers)
        held = set(speakers[:n_val])
        heard = {records[i].label for i in train_idx if records[i].speaker in held}
        kept = {records[i].label for i in train_idx if records[i].speaker not in held}
        score = (kept == labels, len(heard))
        if best_score is None or score > best_score:
            best, best_score = held, score
        if score == (True, len(labels)):
            break
    return best


def training_share(records: list[Utterance], train_idx: list[int], fraction: float = 1.0,
                   seed: int = 0) -> list[int]:
    """A seeded `fraction` of the training utterances, the same share of every class, for
    little-data runs: the test fold and the validation speakers stay as they are."""
    if fraction >= 1.0:
        return list(train_idx)
    rng = random.Random(seed)
    by_label: dict[str, list[int]] = {}
    for i in train_idx:
        by_label.setdefault(records[i].label, []).append(i)
    kept = []
    for label in sorted(by_label):
        pool = by_label[label]
        rng.shuffle(pool)
        kept += pool[:max(1, round(fraction * len(pool)))]
    return sorted(kept)


# ---------------------------------------------------------------------------- text keys
def same_text(text: str) -> str:
    """A transcript as compared for identity: case and spacing ignored."""
    return " ".join(text.lower().split())


def text_key(text: str) -> int:
    """Equal for identical transcripts (`same_text`): the "text" positives of the pair losses."""
    return zlib.crc32(same_text(text).encode("utf-8"))
