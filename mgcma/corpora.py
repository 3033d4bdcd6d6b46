"""Readers for real corpora into Utterance records: RAVDESS (speech) and GoEmotions (text).

RAVDESS: 24 actors, two fixed emotion-free sentences, 8 emotions. In RAVDESS calm is not
neutral: the 4-class set (neutral, happy, angry, sad) drops it. The speaker is the actor, the
fold the EmoBox benchmark's speaker-independent fold, and `split` holds out whole actors.
"""
from __future__ import annotations

import csv
import re
from pathlib import Path

from .data import Utterance

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


def read_goemotions(root: str | Path) -> list[Utterance]:
    """train.csv / validation.csv / test.csv (text, emotion) -> text-only records with their split."""
    root = Path(root)
    records = []
    for split in ("train", "validation", "test"):
        path = root / f"{split}.csv"
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing (GoEmotions needs train.csv, validation.csv, test.csv)")
        with open(path, newline="", encoding="utf-8") as f:
            for i, row in enumerate(csv.DictReader(f)):
                records.append(Utterance(id=f"goemotions-{split}-{i}", path=None, text=row["text"], label=row["emotion"],
                                         speaker="goemotions", split=split, corpus="goemotions"))
    return records
