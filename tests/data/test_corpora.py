from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mgcma.data.corpora import EMOBOX_FOLDS, read_goemotions, read_ravdess
from mgcma.data.records import read_manifest, write_manifest
from mgcma.prepare import main as prepare

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
needs_shared = pytest.mark.skipif(not (SHARED / "ravdess" / "manifest.csv").is_file(),
                                  reason="../shared/data (your copies of the corpora) is not beside this checkout; "
                                         "the data is never committed")
needs_nemo = pytest.mark.skipif(not (SHARED / "nemo" / "manifest.csv").is_file(),
                                reason="your copy of nEMO is not in ../shared/data/nemo (the data is never committed)")


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


def write_clip(path: Path, seconds: float = 0.3, rate: int = 16000):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, 0.1 * np.sin(np.arange(int(seconds * rate)) / 7.0), rate, format="FLAC" if path.suffix == ".flac" else None)


def acted_fixture(root: Path, rows):
    """A corpus laid out as the shared EmoDB / EMOVO folders: manifest.csv + audio/."""
    lines = ["path,speaker,sex,emotion,sentence,text,language,duration_s,source_rate"]
    for name, speaker, emotion in rows:
        write_clip(root / "audio" / name)
        lines.append(f"audio/{name},{speaker},female,{emotion},a01,,de,0.3,16000")
    (root / "manifest.csv").write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("corpus", ["emodb", "emovo", "nemo"])
def test_acted_corpora_give_speech_only_rows_folded_by_speaker(tmp_path, corpus):
    acted_fixture(tmp_path / corpus, [("a.flac", "s1", "angry"), ("b.flac", "s1", "fearful"),
                                      ("c.flac", "s2", "sad"), ("d.flac", "s3", "neutral")])
    out = tmp_path / f"{corpus}.csv"
    assert prepare([corpus, str(tmp_path / corpus), "--out", str(out)]) == 0
    records = read_manifest(out)
    assert [(r.label, r.speaker, r.group, r.split, r.text) for r in records] == [
        ("angry", "s1", "s1", "", ""), ("sad", "s2", "s2", "", ""), ("neutral", "s3", "s3", "", "")]   # fearful: not of the 4
    assert all(Path(r.path).is_file() and r.corpus == corpus for r in records)
    assert prepare([corpus, str(tmp_path / corpus), "--out", str(out), "--classes", "all", "--test-speakers", "s2"]) == 0
    records = read_manifest(out)
    assert [(r.label, r.split) for r in records] == [("angry", "train"), ("fearful", "train"), ("sad", "test"),
                                                      ("neutral", "train")]
    assert prepare([corpus, str(tmp_path / corpus), "--out", str(out), "--split", "train"]) == 0
    assert {r.split for r in read_manifest(out)} == {"train"}


def test_acted_corpus_errors_are_explained(tmp_path, capsys):
    assert prepare(["emodb", str(tmp_path), "--out", str(tmp_path / "m.csv")]) == 1
    assert "manifest.csv is missing" in capsys.readouterr().err
    acted_fixture(tmp_path / "emodb", [("a.flac", "s1", "angry")])
    assert prepare(["emodb", str(tmp_path / "emodb"), "--out", str(tmp_path / "m.csv"), "--test-speakers", "zz"]) == 1
    assert "zz are not speakers of emodb" in capsys.readouterr().err


def test_a_folder_of_clips_becomes_a_manifest(tmp_path, capsys):
    root = tmp_path / "mycorpus"
    for rel in ["angry/spk1/x.wav", "angry/spk2/y.flac", "W/spk1/z.wav", "L/spk2/w.wav", "notes.txt"]:
        write_clip(root / rel) if not rel.endswith(".txt") else (root / rel).write_text("not audio")
    write_clip(root / "loose.wav")    # no folders above it: neither label nor speaker
    out = tmp_path / "mine.csv"
    assert prepare(["folder", str(root), "--out", str(out), "--label-from", "grandparent", "--speaker-from", "parent",
                    "--label-map", "W=angry,L="]) == 0
    records = read_manifest(out)
    assert sorted((r.label, r.speaker, r.group) for r in records) == [
        ("angry", "spk1", "spk1"), ("angry", "spk1", "spk1"), ("angry", "spk2", "spk2")]   # L= drops, loose.wav unread
    assert {r.corpus for r in records} == {"mine"} and "1 clip(s) skipped" in capsys.readouterr().err


def test_folder_labels_and_speakers_from_a_pattern(tmp_path, capsys):
    root = tmp_path / "c"
    for name in ["03a01Wa.wav", "11b02Fc.wav", "readme.wav"]:
        write_clip(root / name)
    assert prepare(["folder", str(root), "--out", str(tmp_path / "m.csv"), "--label-from", r"regex:^\d\d\w\d\d(\w)",
                    "--speaker-from", r"regex:^(\d\d)", "--label-map", "W=angry,F=happy"]) == 0
    records = read_manifest(tmp_path / "m.csv")
    assert sorted((r.label, r.speaker) for r in records) == [("angry", "03"), ("happy", "11")]
    assert prepare(["folder", str(root), "--out", str(tmp_path / "n.csv"), "--label-from", "stem"]) == 0
    assert "cannot be speaker-independent" in capsys.readouterr().err
    assert prepare(["folder", str(root), "--out", str(tmp_path / "o.csv"), "--label-from", "regex:(["]) == 1
    assert "not a regular expression" in capsys.readouterr().err


@needs_shared
@pytest.mark.parametrize("corpus, n, speakers, sad", [("emodb", 278, 10, 22), ("emovo", 336, 6, 84),
                                                     pytest.param("nemo", 1589, 9, 405, marks=needs_nemo)])
def test_shared_acted_corpora_counts(tmp_path, corpus, n, speakers, sad):
    out = tmp_path / f"{corpus}.csv"
    assert prepare([corpus, str(SHARED / corpus), "--out", str(out)]) == 0
    records = read_manifest(out)
    assert len(records) == n and len({r.speaker for r in records}) == speakers
    assert sum(r.label == "sad" for r in records) == sad and not any(r.text for r in records)
    assert all(Path(r.path).is_file() for r in records[:5])


@needs_nemo
def test_nemo_test_speakers_are_held_out_whole(tmp_path):
    """nEMO's counts per class (neutral 405, happy 390, angry 389, sad 405) and two of its nine actors
    held out: every clip of theirs is test, none of theirs trains."""
    out = tmp_path / "nemo.csv"
    assert prepare(["nemo", str(SHARED / "nemo"), "--out", str(out), "--test-speakers", "nemoEB0,nemoMP0"]) == 0
    records = read_manifest(out)
    assert Counter(r.label for r in records) == {"neutral": 405, "happy": 390, "angry": 389, "sad": 405}
    test = {r.speaker for r in records if r.split == "test"}
    assert test == {"nemoEB0", "nemoMP0"} and {r.split for r in records if r.speaker not in test} == {"train"}
    assert sum(r.speaker == "nemoMP0" for r in records) == 149     # the one actor with fewer than 180 clips


def test_dailydialog_keeps_its_splits_and_can_drop_test_turns_seen_in_train(tmp_path, capsys):
    root = tmp_path / "dd"
    root.mkdir()
    header = "text,emotion,dialogue,turn,raw_text\n"
    (root / "train.csv").write_text(header + "Hello there.,neutral,0,0,x\nI am so happy!,happy,0,1,x\n")
    (root / "validation.csv").write_text(header + "Hello there.,neutral,0,0,x\n")
    (root / "test.csv").write_text(header + "hello   THERE.,neutral,3,0,x\nWhy would you do that?,angry,3,1,x\n")
    out = tmp_path / "dd.csv"
    assert prepare(["dailydialog", str(root), "--out", str(out)]) == 0
    records = read_manifest(out)
    assert [(r.split, r.path, r.label) for r in records] == [("train", None, "neutral"), ("train", None, "happy"),
                                                             ("validation", None, "neutral"), ("test", None, "neutral"),
                                                             ("test", None, "angry")]
    assert records[4].meta == {"dialogue": "3", "turn": "1"}
    assert prepare(["dailydialog", str(root), "--out", str(out), "--drop-train-twins"]) == 0
    kept = read_manifest(out)
    # the twin differs only in case and spacing; validation keeps its copy (only test turns are filtered)
    assert [r.text for r in kept if r.split == "test"] == ["Why would you do that?"] and len(kept) == 4
    assert "1 test turns occur verbatim in train" in capsys.readouterr().err
    # with context, the left-out twin is still the turn before the one that answered it (after it, so that
    # truncation cuts the context first), and only its own dialogue counts
    assert prepare(["dailydialog", str(root), "--out", str(out), "--drop-train-twins", "--context", "1"]) == 0
    texts = {(r.split, r.label): r.text for r in read_manifest(out)}
    assert texts[("test", "angry")] == "Why would you do that? [SEP] hello   THERE."
    assert texts[("train", "happy")] == "I am so happy! [SEP] Hello there." and texts[("train", "neutral")] == "Hello there."


@pytest.mark.slow
@needs_shared
def test_shared_dailydialog_counts(tmp_path):
    out = tmp_path / "dd.csv"
    assert prepare(["dailydialog", str(SHARED / "dailydialog"), "--out", str(out), "--drop-train-twins"]) == 0
    records = read_manifest(out)
    splits = {s: sum(r.split == s for r in records) for s in ("train", "validation", "test")}
    assert splits["train"] == 85110 and splits["validation"] == 7948
    assert 7560 - 2334 - 200 <= splits["test"] < 7560     # the README: 2,334 of 7,560 test turns have a train twin
