import numpy as np
import pytest
import soundfile as sf
import torch

from mgcma.data.records import (ManifestError, Utterance, check_speaker_independence, leave_one_corpus_out, leave_one_group_out, read_iemocap, read_manifest, training_share, validation_split, write_manifest)
from mgcma.data.batching import BucketSampler, Collator, CorpusMixture, UtteranceDataset, padding_fraction


def tone(seconds=0.5, sr=16000, freq=220.0):
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def make_iemocap(root):
    """Two sessions in the real line formats: an exc (-> happy), a fru (dropped), a missing wav."""
    dialogs = {
        "Session1": ("Ses01F_impro01", [("F000", "neu", "Excuse me."), ("M001", "exc", "Great news!"),
                                         ("F002", "fru", "Ugh."), ("M003", "ang", "Get out."),
                                         ("F004", "sad", "I miss him.")]),
        "Session2": ("Ses02M_script01_1", [("F000", "hap", "I love it."), ("M001", "sad", "It's gone."),
                                            ("F002", "neu", "Okay.")]),
    }
    for session, (dialog, utts) in dialogs.items():
        base = root / session
        (base / "dialog" / "EmoEvaluation").mkdir(parents=True)
        (base / "dialog" / "transcriptions").mkdir(parents=True)
        (base / "sentences" / "wav" / dialog).mkdir(parents=True)
        eval_lines = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
        text_lines = []
        for k, (suffix, code, text) in enumerate(utts):
            utt = f"{dialog}_{suffix}"
            eval_lines += [f"[{k * 3 + 6.2901:.4f} - {k * 3 + 8.2357:.4f}]\t{utt}\t{code}\t[2.5000, 2.5000, 2.5000]",
                           f"C-E1:\t{code.capitalize()};\t()", ""]
            text_lines.append(f"{utt} [{k * 3 + 6.2901:08.4f}-{k * 3 + 8.2357:08.4f}]: {text}")
            if not (session == "Session2" and suffix == "M001"):  # this wav is missing
                sf.write(base / "sentences" / "wav" / dialog / f"{utt}.wav", tone(), 16000)
        (base / "dialog" / "EmoEvaluation" / f"{dialog}.txt").write_text("\n".join(eval_lines))
        (base / "dialog" / "transcriptions" / f"{dialog}.txt").write_text("\n".join(text_lines + ["M: [LAUGHTER]"]))
    return root


def test_iemocap_fixture_parses_to_records_labels_and_folds(tmp_path):
    messages = []
    records = read_iemocap(make_iemocap(tmp_path / "IEMOCAP_full_release"), report=messages.append)
    by_id = {r.id: r for r in records}
    assert sorted(by_id) == ["Ses01F_impro01_F000", "Ses01F_impro01_F004", "Ses01F_impro01_M001",
                             "Ses01F_impro01_M003", "Ses02M_script01_1_F000", "Ses02M_script01_1_F002"]
    assert by_id["Ses01F_impro01_M001"].label == "happy"           # exc merged into happy
    assert by_id["Ses02M_script01_1_F000"].label == "happy"
    assert by_id["Ses01F_impro01_M003"].label == "angry"
    assert by_id["Ses01F_impro01_F000"].text == "Excuse me."
    assert by_id["Ses01F_impro01_M003"].speaker == "Ses01M" and by_id["Ses01F_impro01_F000"].speaker == "Ses01F"
    assert {r.group for r in records} == {"Session1", "Session2"}
    assert [g for g, _, _ in leave_one_group_out(records)] == ["Session1", "Session2"]
    assert "skipped" in messages[0] and "'missing wav': 1" in messages[0] and "'other emotion': 1" in messages[0]
    assert "WARNING" in messages[1] and "5531" in messages[1]


def test_iemocap_wrong_root_is_explained(tmp_path):
    with pytest.raises(FileNotFoundError, match="Session1..Session5"):
        read_iemocap(tmp_path)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_manifest_round_trip(tmp_path, suffix):
    sf.write(tmp_path / "a.wav", tone(), 16000)
    records = [Utterance("a", str(tmp_path / "a.wav"), "hello, \"world\"", "happy", "s1", group="1"),
               Utterance("b", str(tmp_path / "a.wav"), "", "sad", "s2", group="2")]
    path = write_manifest(records, tmp_path / f"m{suffix}")
    back = read_manifest(path)
    assert [(r.id, r.path, r.text, r.label, r.speaker, r.group) for r in back] == \
           [(r.id, r.path, r.text, r.label, r.speaker, r.group) for r in records]


def test_manifest_relative_paths_are_taken_from_its_folder(tmp_path):
    (tmp_path / "m.csv").write_text("path,text,label,speaker\nclips/x.wav,hi,neutral,s1\n")
    assert read_manifest(tmp_path / "m.csv")[0].path == str(tmp_path / "clips" / "x.wav")


@pytest.mark.parametrize("content,name,message", [
    ("path,text,label,speaker\na.wav,hi,neutral,s1\nb.wav,hi,,s2\n", "m.csv", r"m\.csv:3: 'label' is empty"),
    ("path,text,label\na.wav,hi,neutral\n", "m.csv", r"m\.csv:1: the header lacks column\(s\) speaker"),
    ('{"path": "a.wav", "label": "sad", "speaker": "s"}\n{oops\n', "m.jsonl", r"m\.jsonl:2: not valid JSON"),
    ('{"path": "a.wav", "label": "sad"}\n', "m.jsonl", r"m\.jsonl:1: 'speaker' is empty"),
    ("path,text,label,speaker\n", "m.csv", "holds no utterances"),
])
def test_bad_manifest_rows_name_file_and_line(tmp_path, content, name, message):
    (tmp_path / name).write_text(content)
    with pytest.raises(ManifestError, match=message):
        read_manifest(tmp_path / name)


def records_for(speakers, per=4, groups=None):
    return [Utterance(f"{s}-{k}", None, "t", ["neutral", "happy", "angry", "sad"][k % 4], s,
                      group=(groups or {}).get(s, ""), waveform=tone(0.2 + 0.1 * k))
            for s in speakers for k in range(per)]


def test_no_speaker_is_on_both_sides_of_any_fold_and_validation_comes_from_training():
    speakers = [f"spk{i:02d}" for i in range(8)]
    records = records_for(speakers, groups={s: str(i % 4) for i, s in enumerate(speakers)})
    folds = leave_one_group_out(records)
    assert len(folds) == 4
    for _, train, test in folds:
        train_spk = {records[i].speaker for i in train}
        assert not train_spk & {records[i].speaker for i in test}
        tr, val = validation_split(records, train, seed=1)
        assert set(tr) | set(val) == set(train) and not set(tr) & set(val)
        assert not {records[i].speaker for i in tr} & {records[i].speaker for i in val}
        assert not set(val) & set(test)


def test_training_share_keeps_every_class_alike_and_is_seeded():
    records = records_for([f"spk{i:02d}" for i in range(10)], per=8)   # 20 of each class
    train = list(range(len(records)))
    kept = training_share(records, train, 0.25, seed=3)
    counts = {}
    for i in kept:
        counts[records[i].label] = counts.get(records[i].label, 0) + 1
    assert counts == {"neutral": 5, "happy": 5, "angry": 5, "sad": 5}
    assert set(kept) <= set(train) and kept == sorted(kept)
    assert training_share(records, train, 0.25, seed=3) == kept
    assert training_share(records, train, 0.25, seed=4) != kept
    assert training_share(records, train, 1.0) == train


def test_leave_one_corpus_out_tests_each_speech_corpus_whole_and_never_trains_a_test_split():
    records = records_for(["a1", "a2"]) + records_for(["b1"]) + [
        Utterance("t", None, "so sad", "sad", "reddit", split="test"), Utterance("u", None, "yay", "happy", "reddit", split="train")]
    for r in records[:8]:
        r.corpus = "a"
    records[0].split = "test"                  # a's own test split: tested when a is held out, never trained on
    for r in records[8:12]:
        r.corpus = "b"
    records[12].corpus = records[13].corpus = "text"
    folds = {name: (train, test) for name, train, test in leave_one_corpus_out(records)}
    assert sorted(folds) == ["a", "b"]         # a text-only corpus has no voice to hold out
    assert folds["a"][1] == list(range(8)) and folds["a"][0] == [8, 9, 10, 11, 13]
    assert folds["b"][1] == [8, 9, 10, 11] and folds["b"][0] == [1, 2, 3, 4, 5, 6, 7, 13]
    with pytest.raises(ValueError, match="at least 2 corpora with audio"):
        leave_one_corpus_out(records[:8])


def test_a_speaker_on_both_sides_of_a_fold_is_refused_with_the_line():
    records = records_for(["a", "b", "c"])
    for k, r in enumerate(records):
        r.corpus, r.line = "m", k + 2
    check_speaker_independence(records, "0", list(range(4, 12)), list(range(4)))
    with pytest.raises(ManifestError, match=r"fold '0' is not speaker-independent: speaker\(s\) a .*m:2"):
        check_speaker_independence(records, "0", list(range(1, 12)), [0])
    text_only = Utterance("t", None, "words", "sad", "a")     # a text row of the same "speaker" carries no voice
    check_speaker_independence(records + [text_only], "0", list(range(4, 12)) + [12], list(range(4)))


def test_validation_with_too_few_speakers_says_it_cannot_be_speaker_independent():
    records = records_for(["a", "b"])
    with pytest.warns(UserWarning, match="cannot be speaker-independent"):
        train, val = validation_split(records, list(range(8)))
    assert val and set(train) | set(val) == set(range(8))


def test_validation_holds_two_speakers_of_a_small_corpus_or_one_by_the_rule_before():
    records = records_for(["a", "b", "c", "d", "e", "f"])   # six speakers: 15 % is one
    n = len(records)
    for min_speakers, held in ((2, 2), (1, 1)):
        train, val = validation_split(records, list(range(n)), 0.15, seed=0, min_speakers=min_speakers)
        assert len({records[i].speaker for i in val}) == held
        assert {records[i].label for i in train} == {records[i].label for i in val} == {r.label for r in records}


def mixture_records():
    """Corpus "big": 60 neutral, 20 happy, 10 angry, 10 sad. Corpus "small": 8 of each of the four."""
    records = []
    for corpus, counts in (("big", (60, 20, 10, 10)), ("small", (8, 8, 8, 8))):
        for label, n in zip(["neutral", "happy", "angry", "sad"], counts):
            records += [Utterance(f"{corpus}-{label}-{k}", None, "t", label, "s", corpus=corpus) for k in range(n)]
    return records


def drawn_counts(records, indices):
    counts = {}
    for i in indices:
        key = (records[i].corpus, records[i].label)
        counts[key] = counts.get(key, 0) + 1
    return counts


def test_corpus_weights_draw_their_share_of_each_corpus_in_its_own_class_proportions():
    records = mixture_records()
    draw = CorpusMixture(records, {"big": 0.5, "small": 2.0}, balance_classes=False, seed=1)
    counts = drawn_counts(records, draw(0))
    assert counts == {("big", "neutral"): 30, ("big", "happy"): 10, ("big", "angry"): 5, ("big", "sad"): 5,
                      **{("small", c): 16 for c in ("neutral", "happy", "angry", "sad")}}
    first, second = draw(0), draw(1)
    assert sorted(first) != sorted(second)                       # a fresh subset of "big" every epoch
    small = [i for i in first if records[i].corpus == "small"]
    assert len(set(small)) == 32                                # weight 2: every clip before any repeat


def test_balanced_classes_draw_every_class_of_a_corpus_equally_often():
    records = mixture_records()
    draw = CorpusMixture(records, {"small": 0.5}, balance_classes=True, seed=0)
    for epoch in range(3):
        counts = drawn_counts(records, draw(epoch))
        assert {counts[("big", c)] for c in ("neutral", "happy", "angry", "sad")} == {25}    # 100 rows, 4 classes
        assert {counts[("small", c)] for c in ("neutral", "happy", "angry", "sad")} == {4}   # 16 rows
    assert drawn_counts(records, draw(2)) == drawn_counts(records, CorpusMixture(records, {"small": 0.5}, True, 0)(2))


def test_folds_fall_back_to_speakers_without_groups():
    records = records_for(["a", "b", "c"])
    assert [g for g, _, _ in leave_one_group_out(records)] == ["a", "b", "c"]


def test_collate_pads_audio_and_text_with_masks(tokenizer):
    ds = UtteranceDataset(records_for(["a"], per=3), ["neutral", "happy", "angry", "sad"])
    ds.records[1].text = ""  # no transcript: a speech-only record, its text mask all False
    batch = Collator(tokenizer)([ds[0], ds[1], ds[2]])
    assert batch["audio"].shape == (3, 6400) and batch["audio_mask"].sum(1).tolist() == [3200, 4800, 6400]
    assert torch.all(batch["audio"][0, 3200:] == 0)
    assert batch["text_mask"].dtype == torch.bool and batch["text_mask"][1].sum() == 0
    assert batch["text_mask"][0].sum() > 2 and batch["labels"].tolist() == [0, 1, 2]


def test_dataset_refuses_labels_outside_the_model():
    with pytest.raises(ValueError, match="not among the model's labels"):
        UtteranceDataset(records_for(["a"]), ["neutral", "happy"])


def test_bucketing_reduces_padding_and_covers_every_item_once():
    rng = np.random.default_rng(0)
    durations = list(rng.uniform(0.5, 8.0, size=500))
    bucketed = BucketSampler(durations, 16, bucket_size=10, seed=0).batches()
    plain = [list(range(i, min(i + 16, 500))) for i in range(0, 500, 16)]
    assert sorted(i for b in bucketed for i in b) == list(range(500))
    assert padding_fraction(bucketed, durations) < 0.25 * padding_fraction(plain, durations)
    sampler = BucketSampler(durations, 16, seed=0)
    first = sampler.batches()
    assert first == BucketSampler(durations, 16, seed=0).batches()
    sampler.set_epoch(1)
    assert sampler.batches() != first


def test_prepare_fills_empty_transcripts_or_every_one_with_the_asr(tmp_path):
    import shutil
    from pathlib import Path
    from mgcma.prepare import main
    clip = Path(__file__).resolve().parents[2] / "app" / "examples" / "happy-happy-spk04.wav"
    shutil.copy(clip, tmp_path / "a.wav")
    (tmp_path / "in.csv").write_text("path,text,label,speaker\na.wav,,happy,s1\na.wav,kept as it is,happy,s1\n")
    assert main(["manifest", str(tmp_path / "in.csv"), "--out", str(tmp_path / "out.csv")]) == 0
    texts = [r.text for r in read_manifest(tmp_path / "out.csv")]
    from mgcma.infer.asr import word_error_rate   # quantised decoding varies between machines: bound the error, not the words
    assert word_error_rate("I just got the job, this is wonderful news.", texts[0]) <= 0.3 and texts[1] == "kept as it is"
    assert main(["manifest", str(tmp_path / "in.csv"), "--out", str(tmp_path / "heard.csv"), "--retranscribe"]) == 0
    heard = [r.text for r in read_manifest(tmp_path / "heard.csv")]   # what a recogniser hears replaces what was typed
    assert heard[1] != "kept as it is" and word_error_rate("I just got the job, this is wonderful news.", heard[1]) <= 0.3
