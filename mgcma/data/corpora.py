"""Readers for real corpora into Utterance records: RAVDESS, EmoDB and EMOVO (speech),
GoEmotions and DailyDialog (text), and any folder of clips whose labels are in their paths.

RAVDESS: 24 actors, two fixed emotion-free sentences, 8 emotions. In RAVDESS calm is not
neutral: the 4-class set (neutral, happy, angry, sad) drops it. The speaker is the actor, the
fold the EmoBox benchmark's speaker-independent fold, and `split` holds out whole actors.
EmoDB (German) and EMOVO (Italian): speech-only rows (an English text encoder cannot read
their words); the fold is the speaker, so leave-one-group-out holds out whole speakers.
"""
from __future__ import annotations

import csv
import re
from pathlib import Path

from .records import Utterance, same_text

RAVDESS_EMOTIONS = {"01": "neutral", "02": "calm", "03": "happy", "04": "sad", "05": "angry",
                    "06": "fearful", "07": "disgust", "08": "surprised"}
RAVDESS_SENTENCES = {"01": "Kids are talking by the door.", "02": "Dogs are sitting by the door."}
FOUR_CLASSES = ("neutral", "happy", "angry", "sad")
# EmoBox data/ravdess/fold_K: the 4 actors each test fold holds
EMOBOX_FOLDS = {1: (1, 11, 20, 21), 2: (4, 10, 12, 14), 3: (8, 9, 19, 23), 4: (3, 5, 7, 24),
                5: (2, 15, 16, 18), 6: (6, 13, 17, 22)}
_RAVDESS_NAME = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")


def emobox_fold(actor: int) -> int:
    return next(k for k, actors in EMOBOX_FOLDS.items() if actor in actors)


def parse_actors(spec: str) -> set[int]:
    """"19-24" or "19,20,23" -> actor numbers."""
    actors = set()
    for part in filter(None, spec.split(",")):
        lo, _, hi = part.partition("-")
        actors.update(range(int(lo), int(hi or lo) + 1))
    return actors


def read_ravdess(root: str | Path, classes: int = 4, test_actors: set[int] = frozenset(range(19, 25))) -> list[Utterance]:
    """The shared folder (manifest.csv + FLAC) or a folder of RAVDESS's original WAVs, whose
    file names carry the labels (modality-channel-emotion-intensity-statement-repetition-actor)."""
    root = Path(root)
    if classes not in (4, 8):
        raise ValueError(f"RAVDESS has 4 or 8 classes here, not {classes}")
    rows = list(_manifest_rows(root)) if (root / "manifest.csv").is_file() else list(_wav_rows(root))
    if not rows:
        raise FileNotFoundError(f"{root}: no manifest.csv and no RAVDESS-named audio files (03-01-05-02-01-01-19.wav)")
    records = []
    for path, actor, emotion, text in rows:
        if classes == 4 and emotion not in FOUR_CLASSES:
            continue
        records.append(Utterance(id=Path(path).stem, path=str(path), text=text, label=emotion,
                                 speaker=f"actor{actor:02d}", group=str(emobox_fold(actor)),
                                 split="test" if actor in test_actors else "train", corpus="ravdess",
                                 meta={"sex": "male" if actor % 2 else "female"}))   # RAVDESS: odd actors are male
    return records


def _manifest_rows(root: Path):
    with open(root / "manifest.csv", newline="") as f:
        for row in csv.DictReader(f):
            yield root / row["path"], int(row["actor"]), row["emotion"], row["text"]


def _wav_rows(root: Path):
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in (".wav", ".flac")):
        m = _RAVDESS_NAME.match(path.stem)
        if not m or m.group(1) != "03" or m.group(2) != "01":   # audio-only speech
            continue
        yield path, int(m.group(7)), RAVDESS_EMOTIONS[m.group(3)], RAVDESS_SENTENCES[m.group(5)]


CONTEXT_SEP = " [SEP] "   # BERT-family tokenizers read it as their own separator


def read_dailydialog(root: str | Path, drop_train_twins: bool = False, context: int = 0,
                     report=print) -> list[Utterance]:
    """DailyDialog's train / validation / test.csv (text, emotion, dialogue, turn) -> text-only
    records with the corpus's own split; `drop_train_twins`: leave out the test turns whose text
    occurs verbatim in train (upstream duplicates whole dialogues; most twins are short generic turns).
    `context`: each turn's text comes with up to that many earlier turns of its dialogue."""
    records = [r for split in ("train", "validation", "test") for r in text_rows(Path(root), "dailydialog", split)]
    kept = records
    if drop_train_twins:
        seen = {same_text(r.text) for r in records if r.split == "train"}
        kept = [r for r in records if r.split != "test" or same_text(r.text) not in seen]
        report(f"dailydialog: {len(records) - len(kept)} test turns occur verbatim in train and are left out")
    if context:
        with_context(records, context)   # a left-out twin is still context for the turn after it
    return kept


def with_context(records: list[Utterance], context: int) -> list[Utterance]:
    """Each record's text followed by the `context` turns before it in its dialogue, the nearest
    first, so that a tokenizer's length limit cuts the oldest context, never the turn (in place)."""
    dialogues = {}
    for r in records:
        dialogues.setdefault((r.split, r.meta["dialogue"]), {})[int(r.meta["turn"])] = r.text
    for r in records:
        turns, turn = dialogues[(r.split, r.meta["dialogue"])], int(r.meta["turn"])
        before = [turns[t] for t in range(turn - 1, max(0, turn - context) - 1, -1) if t in turns]   # as read
        r.text = CONTEXT_SEP.join([r.text] + before)
    return records


def read_goemotions(root: str | Path) -> list[Utterance]:
    """train.csv / validation.csv / test.csv (text, emotion) -> text-only records with their split."""
    return [r for split in ("train", "validation", "test") for r in text_rows(Path(root), "goemotions", split)]


def text_rows(root: Path, corpus: str, split: str) -> list[Utterance]:
    path = root / f"{split}.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing ({corpus} needs train.csv, validation.csv, test.csv)")
    with open(path, newline="", encoding="utf-8") as f:
        return [Utterance(id=f"{corpus}-{split}-{i}", path=None, text=row["text"], label=row["emotion"], speaker=corpus,
                          split=split, corpus=corpus,
                          meta={k: row[k] for k in ("dialogue", "turn") if row.get(k) not in (None, "")})
                for i, row in enumerate(csv.DictReader(f))]


ACTED_CORPORA = ("emodb", "emovo", "nemo")   # laid out as manifest.csv (path, speaker, sex, emotion) + audio/


def read_acted(root: str | Path, corpus: str, classes: str = "4", test_speakers: set[str] = frozenset(),
               split: str = "") -> list[Utterance]:
    """EmoDB (German), EMOVO (Italian) or nEMO (Polish), laid out as manifest.csv and audio/: speech-only
    rows (the English text encoder cannot read their words), 4 classes (neutral, happy, angry, sad) or
    "all" of the corpus's emotions. Rows of `test_speakers` get split=test,
    the others `split` ("train" where test speakers are given; "": no split, folds by speaker)."""
    root = Path(root)
    if corpus not in ACTED_CORPORA:
        raise ValueError(f"unknown acted corpus {corpus!r}: {', '.join(ACTED_CORPORA)}")
    if classes not in ("4", "all"):
        raise ValueError(f"--classes is 4 or all, not {classes!r}")
    manifest = root / "manifest.csv"
    if not manifest.is_file():
        raise FileNotFoundError(f"{manifest} is missing: point at your copy of {corpus.upper()} as laid out with its manifest.csv")
    with open(manifest, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    unknown = sorted(test_speakers - {row["speaker"] for row in rows})
    if unknown:
        raise ValueError(f"--test-speakers {', '.join(unknown)} are not speakers of {corpus}")
    records = []
    for row in rows:
        if classes == "4" and row["emotion"] not in FOUR_CLASSES:
            continue
        records.append(Utterance(id=f"{corpus}-{Path(row['path']).stem}", path=str(root / row["path"]), text="",
                                 label=row["emotion"], speaker=row["speaker"], group=row["speaker"],
                                 split="test" if row["speaker"] in test_speakers else split or ("train" if test_speakers else ""),
                                 corpus=corpus, meta={k: row[k] for k in ("sex", "language") if row.get(k)}))
    return records


def path_field(spec: str, what: str):
    """`parent` (the clip's folder), `grandparent`, `stem` (the file name) or `regex:PATTERN`
    (its first group, else the whole match, searched in the path relative to the corpus root)
    -> a function of that relative path giving the field, or None where it cannot be read."""
    if spec == "stem":
        return lambda rel: rel.stem
    if spec in ("parent", "grandparent"):
        up = 0 if spec == "parent" else 1
        return lambda rel: (rel.parents[up].name or None) if up < len(rel.parents) else None
    if spec.startswith("regex:"):
        try:
            pattern = re.compile(spec[len("regex:"):])
        except re.error as e:
            raise ValueError(f"--{what}-from {spec!r}: not a regular expression ({e})") from None
        return lambda rel: (m.group(1) if m.groups() else m.group(0)) if (m := pattern.search(rel.as_posix())) else None
    raise ValueError(f"--{what}-from must be parent, grandparent, stem or regex:PATTERN; got {spec!r}")


AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")


def read_folder(root: str | Path, label_from: str = "parent", speaker_from: str | None = None,
                label_map: dict[str, str] | None = None, report=print) -> list[Utterance]:
    """Any corpus laid out as a folder of clips: the label (and the speaker) read from each clip's
    path (the manifest's file name then names the corpus). `label_map` renames labels (W -> angry);
    a label mapped to "" drops the clip. Clips whose label or speaker cannot be read are skipped and
    counted. Without a speaker, each clip is its own speaker, and the report says that no split can
    then be speaker-independent."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder")
    label_of, speaker_of = path_field(label_from, "label"), speaker_from and path_field(speaker_from, "speaker")
    records, unread = [], 0
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file()):
        rel = path.relative_to(root)
        label, speaker = label_of(rel), speaker_of(rel) if speaker_of else rel.with_suffix("").as_posix()
        if label is not None and label_map:
            label = label_map.get(label, label)
        if not label or not speaker:
            unread += label is None or not speaker
            continue
        records.append(Utterance(id=rel.with_suffix("").as_posix().replace("/", "-"), path=str(path), text="",
                                 label=label, speaker=speaker, group=speaker if speaker_of else "", corpus=root.name))
    if not records:
        raise ValueError(f"{root}: no audio clip ({', '.join(AUDIO_SUFFIXES)}) with a label read by --label-from {label_from}")
    if unread:
        report(f"{unread} clip(s) skipped: their label or speaker could not be read from the path")
    if not speaker_of:
        report("warning: no --speaker-from, so every clip is its own speaker: a split of these clips cannot be "
               "speaker-independent")
    return records


def parse_label_map(spec: str) -> dict[str, str]:
    """"W=angry,F=happy,L=" -> {"W": "angry", "F": "happy", "L": ""} ("" drops the clips)."""
    out = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise ValueError(f"--label-map wants FROM=TO,...; got {part!r}")
        out[key] = value
    return out
