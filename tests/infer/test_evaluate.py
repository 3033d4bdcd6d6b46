import csv
import json

import pytest

from mgcma.data.records import read_manifest
from mgcma.evaluate import main


@pytest.fixture
def scored_manifest(tmp_path, tiny_corpus):
    """Four good rows of the synthetic corpus (four speakers), then a missing file and an unknown label."""
    records = read_manifest(tiny_corpus)[:4]
    path = tmp_path / "eval.csv"
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["path", "text", "label", "speaker", "sex"])
        w.writeheader()
        for i, r in enumerate(records):
            w.writerow(dict(path=r.path, text=r.text, label=r.label, speaker=f"s{i}", sex="female" if i % 2 else "male"))
        w.writerow(dict(path=str(tmp_path / "gone.wav"), text="hello", label="happy", speaker="x", sex="male"))
        w.writerow(dict(path=records[0].path, text="hello", label="bored", speaker="x", sex="male"))
    return path


def test_scores_good_rows_and_reports_bad_ones_by_line(scored_manifest, test_checkpoint, tmp_path, capsys):
    out = tmp_path / "metrics.json"
    rc = main(["--checkpoint", str(test_checkpoint), "--manifest", str(scored_manifest), "--asr", "none",
               "--by", "sex", "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 0
    assert "line 6" in captured.err and "no such file" in captured.err
    assert "line 7" in captured.err and "'bored'" in captured.err
    m = json.loads(out.read_text())
    assert {"WA", "UA", "recall", "confusion", "labels", "n"} <= set(m) and m["n"] == 4 and m["skipped"] == 2
    assert sum(map(sum, m["confusion"])) == 4 and 0 <= m["UA"] <= 1
    assert sum(g["n"] for g in m["by"]["sex"].values()) == 4
    assert "UA" in captured.out and "confusion" in captured.out
    c = m["calibration"]     # a random model: temperature 1, so "before" and "after" are the same answers
    assert c["temperature"] == 1.0 and c["ECE"] == pytest.approx(c["ECE_uncalibrated"]) and 0 <= c["ECE"] <= 1
    assert sum(b["n"] for b in c["reliability"]) == 4 and c["answered"] == 1.0
    assert [p["coverage"] for p in c["accuracy_coverage"]] == sorted((p["coverage"] for p in c["accuracy_coverage"]), reverse=True)
    assert "calibration: ECE" in captured.out
    chance, spread = c["ECE_by_chance"], m["UA_over_resampled_speakers"]    # how far chance could move each figure
    assert 0 <= chance["low"] <= chance["median"] <= chance["high"] and "by chance" in captured.out
    assert spread["speakers"] == 4
    assert 0 <= spread["low"] <= spread["median"] <= spread["high"] <= 1 and "redrawn from these" in captured.out
    from mgcma.analysis.__main__ import main as analysis
    assert analysis(["calibration", "--metrics", f"test={out}", "--out", str(tmp_path / "fig")]) == 0
    assert (tmp_path / "fig" / "calibration.png").stat().st_size > 20_000


def test_speech_only_and_a_degraded_condition_run(scored_manifest, test_checkpoint, tmp_path):
    out = tmp_path / "m.json"
    assert main(["--checkpoint", str(test_checkpoint), "--manifest", str(scored_manifest), "--asr", "none",
                 "--modality", "speech", "--condition", "white-10", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["n"] == 4


def test_nothing_scorable_exits_non_zero(tmp_path, test_checkpoint, capsys):
    path = tmp_path / "bad.csv"
    path.write_text("path,text,label,speaker\nmissing.wav,hi,happy,a\n")
    assert main(["--checkpoint", str(test_checkpoint), "--manifest", str(path), "--asr", "none"]) == 1
    assert "no row could be scored" in capsys.readouterr().err


def test_speech_condition_hides_the_text_and_scores_the_noise_it_names(scored_manifest, test_checkpoint, monkeypatch):
    """What reaches the recogniser: no words, and each clip at 10 dB SNR under white noise."""
    import numpy as np

    from mgcma.infer.recognizer import EmotionRecognizer
    heard = []
    original = EmotionRecognizer.predict
    def spy(self, audio, text=None, use_asr=True, **tuning):
        heard.append((audio, text, use_asr))
        return original(self, audio, text, use_asr, **tuning)
    monkeypatch.setattr(EmotionRecognizer, "predict", spy)
    assert main(["--checkpoint", str(test_checkpoint), "--manifest", str(scored_manifest), "--asr", "none",
                 "--modality", "speech", "--condition", "white-10"]) == 0
    clean = [r.path for r in read_manifest(scored_manifest)[:4]]
    assert len(heard) == 4 and all(not text and not use_asr for _, text, use_asr in heard)
    recognizer = EmotionRecognizer(test_checkpoint, asr="none", device="cpu")
    for (audio, _, _), path in zip(heard, clean):
        rate, noisy = audio
        reference, _ = recognizer.load_raw(path)
        assert rate == 16000 and noisy.shape == reference.shape
        snr = 10 * np.log10(np.mean(reference.astype(np.float64) ** 2) / np.mean((noisy - reference).astype(np.float64) ** 2))
        assert snr == pytest.approx(10.0, abs=1.0)
    heard.clear()
    assert main(["--checkpoint", str(test_checkpoint), "--manifest", str(scored_manifest), "--asr", "none"]) == 0
    assert [a for a, _, _ in heard[:4]] == clean and all(text for _, text, _ in heard)   # clean: the file itself, with its words


def test_text_from_gives_the_words_a_recogniser_would(scored_manifest, test_checkpoint):
    """plain: lower case, no punctuation; asr: the recogniser's transcript of the clip as heard (with the
    voice in the answer, left to the prediction's own ASR pass); refused without a recogniser."""
    from mgcma.infer.recognizer import EmotionRecognizer, InputError
    from mgcma.infer.scoring import words_of
    record = read_manifest(scored_manifest)[0]
    recognizer = EmotionRecognizer(test_checkpoint, asr="none", device="cpu")
    assert words_of(recognizer, record, "manifest") == record.text
    plain = words_of(recognizer, record, "plain")
    assert plain == plain.lower() and not any(c in plain for c in ".,!?") and plain.split()
    with pytest.raises(InputError, match="--text-from asr"):
        words_of(recognizer, record, "asr", record.path)
    heard = []
    recognizer.asr = object()
    recognizer.transcribe = lambda wave: (heard.append(len(wave)) or "words it heard", None)
    assert words_of(recognizer, record, "asr", record.path) == "words it heard" and len(heard) == 1
    assert words_of(recognizer, record, "asr", None) == "" and len(heard) == 1
