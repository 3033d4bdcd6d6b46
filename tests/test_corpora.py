from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mgcma.corpora import EMOBOX_FOLDS, read_goemotions, read_ravdess
from mgcma.data import read_manifest, write_manifest
from mgcma.prepare import main as prepare

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
needs_shared = pytest.mark.skipif(not (SHARED / "ravdess" / "manifest.csv").is_file(),
                                  reason="../shared/data (RAVDESS, GoEmotions) is not on this machine; the data is never committed")


def test_original_wav_names_give_labels_actors_and_emobox_folds(tmp_path):
    names = ["03-01-01-01-01-01-19.wav", "03-01-02-01-01-01-19.wav", "03-01-05-02-02-02-04.wav",
             "02-01-05-02-02-02-04.wav", "notes.wav"]   # calm, a video file and a stray file are left out
    for n in names:
        sf.write(tmp_path / n, np.zeros(1600, dtype=np.float32), 16000)
    records = read_ravdess(tmp_path, classes=4)
    assert [(r.label, r.speaker, r.group, r.split, r.text) for r in records] == [
        ("neutral", "actor19", "3", "test", "Kids are talking by the door."),
        ("angry", "actor04", "2", "train", "Dogs are sitting by the door.")]
    assert records[1].meta["sex"] == "female" and records[0].meta["sex"] == "male"
    assert len(read_ravdess(tmp_path, classes=8)) == 3


def test_emobox_folds_cover_every_actor_once():
    actors = sorted(a for fold in EMOBOX_FOLDS.values() for a in fold)
    assert actors == list(range(1, 25))


@needs_shared
def test_shared_ravdess_counts_and_speaker_independent_split(tmp_path):
    out = tmp_path / "ravdess.csv"
    assert prepare(["ravdess", str(SHARED / "ravdess"), "--out", str(out)]) == 0
    records = read_manifest(out)
    assert len(records) == 672 and sum(r.label == "neutral" for r in records) == 96
    assert all(Path(r.path).is_file() for r in records[:5])
    test = {r.speaker for r in records if r.split == "test"}
    assert test == {f"actor{a}" for a in range(19, 25)} and not test & {r.speaker for r in records if r.split == "train"}
    assert len(read_ravdess(SHARED / "ravdess", classes=8)) == 1440


@needs_shared
def test_shared_goemotions_are_text_only_rows_with_their_splits(tmp_path):
    out = tmp_path / "goemotions.csv"
    assert prepare(["goemotions", str(SHARED / "goemotions"), "--out", str(out)]) == 0
    records = read_manifest(out)
    assert len(records) == 23862 and all(r.path is None and r.has_text for r in records)
    assert sum(r.split == "test" for r in records) == 2371


def test_text_only_manifest_round_trip(tmp_path):
    (tmp_path / "g").mkdir()
    (tmp_path / "g" / "train.csv").write_text("text,emotion\nso happy today,happy\n")
    (tmp_path / "g" / "validation.csv").write_text("text,emotion\nugh,angry\n")
    (tmp_path / "g" / "test.csv").write_text("text,emotion\nfine,neutral\n")
    records = read_manifest(write_manifest(read_goemotions(tmp_path / "g"), tmp_path / "m.csv"))
    assert [(r.path, r.text, r.split) for r in records] == [(None, "so happy today", "train"), (None, "ugh", "validation"),
                                                           (None, "fine", "test")]
