import csv

import numpy as np
import soundfile as sf

from mgcma.data.records import leave_one_group_out, read_manifest
from mgcma.data.synthetic import LABELS, SyntheticConfig, generate


def corpus(tmp_path, seed, size=64):
    return read_manifest(generate(tmp_path / f"s{seed}", SyntheticConfig(size=size, seed=seed), progress=False))


def test_same_seed_is_bit_identical_other_seed_differs(tmp_path):
    a = corpus(tmp_path / "a", 0)
    b = corpus(tmp_path / "b", 0)
    c = corpus(tmp_path / "c", 1)
    assert [(r.text, r.label, r.speaker) for r in a] == [(r.text, r.label, r.speaker) for r in b]
    for ra, rb in zip(a, b):
        assert np.array_equal(sf.read(ra.path)[0], sf.read(rb.path)[0])
    texts_differ = [r.text for r in a] != [r.text for r in c]
    audio_differs = any(not np.array_equal(sf.read(ra.path)[0], sf.read(rc.path)[0]) for ra, rc in zip(a, c))
    assert texts_differ and audio_differs


def test_every_class_and_speaker_and_the_audio_format(tmp_path):
    records = corpus(tmp_path, 0)
    assert {r.label for r in records} == set(LABELS)
    assert len({r.speaker for r in records}) == 16
    for r in records[:16]:
        info = sf.info(r.path)
        assert info.samplerate == 16000 and info.channels == 1
        wave, _ = sf.read(r.path, dtype="float32")
        assert wave.dtype == np.float32 and np.abs(wave).max() <= 1.0 and np.abs(wave).max() > 0.01
        assert 0.3 < len(wave) / 16000 < 6.0


def test_speaker_folds_are_disjoint(tmp_path):
    records = corpus(tmp_path, 0)
    folds = leave_one_group_out(records)
    assert len(folds) == 4
    for _, train, test in folds:
        assert not {records[i].speaker for i in train} & {records[i].speaker for i in test}


def test_generation_is_cached(tmp_path):
    manifest = generate(tmp_path, SyntheticConfig(size=8), progress=False)
    stamp = manifest.stat().st_mtime_ns
    assert generate(tmp_path, SyntheticConfig(size=8), progress=False).stat().st_mtime_ns == stamp
    rows = list(csv.DictReader(open(manifest)))
    assert len(rows) == 8 and set(rows[0]) >= {"path", "text", "label", "speaker", "fold"}
