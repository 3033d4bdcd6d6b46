"""python -m mgcma.ensemble --calibrate: the answer together calibrated on validation speakers none of
its heads trained on; python -m mgcma.calibrate: an ensemble's words alone calibrated on the words
corpora's validation split (its packing and answers: tests/infer/test_ensemble.py)."""
import json

import numpy as np
import pytest

from mgcma.calibrate import main as calibrate
from mgcma.data.records import Utterance, read_manifest, write_manifest
from mgcma.ensemble import main as ensemble, shared_validation
from mgcma.infer.members import ENSEMBLE_FILE
from mgcma.infer.recognizer import EmotionRecognizer
from mgcma.infer.stats_head import StatsHead, StatsHeadConfig
from mgcma.training.config import TrainConfig
from mgcma.training.loop import train


def heads(corpus, root, val_seed):
    """Two tiny heads, seeds 0 and 1, selected on fold 0's training speakers (drawn by val_seed, or each by its seed)."""
    for seed in (0, 1):
        train(TrainConfig(data="manifest", data_path=str(corpus), preset="test", epochs=1, batch_size=8, num_workers=0,
                          folds="0", freeze_encoders=True, seed=seed, val_seed=val_seed, out=str(root / f"seed{seed}")))
    return [root / f"seed{seed}" / "fold-0" / "best" for seed in (0, 1)]


@pytest.fixture(scope="module")
def runs(tiny_corpus, tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return dict(shared=heads(tiny_corpus, root / "shared", val_seed=0), own=heads(tiny_corpus, root / "own", val_seed=None))


@pytest.mark.slow
def test_the_answer_together_is_calibrated_on_the_validation_speakers_its_heads_share(runs, tmp_path):
    records, val_idx = shared_validation(runs["shared"], [], None)   # one --val-seed: the same rows for both
    # the test's random encoders are drawn by each run's seed, so heads of two runs cannot share them: the
    # packed ensemble is the first head twice, calibrated as any ensemble is
    members, out = [runs["shared"][0]] * 2, tmp_path / "together"
    assert ensemble(["--members", *map(str, members), "--out", str(out), "--calibrate"]) == 0
    spec = json.loads((out / ENSEMBLE_FILE).read_text())
    assert sum(spec["calibrated_on"]["rows"].values()) == len(val_idx)
    fold_test = {r.speaker for r in records if r.group == "0"}
    assert not fold_test & {records[i].speaker for i in val_idx}   # the fold's test speakers never calibrate it
    recognizer = EmotionRecognizer(out, asr="none", device="cpu")
    assert recognizer.config.temperature == pytest.approx(spec["temperature"]) and spec["temperature"] != 1.0
    assert recognizer.config.not_sure_below == pytest.approx(spec["not_sure_below"])


@pytest.mark.slow
def test_heads_selected_on_other_speakers_or_a_statistics_head_that_heard_them_are_refused(runs, tmp_path):
    with pytest.raises(ValueError, match="--val-seed"):   # each seed drew its own validation speakers
        shared_validation(runs["own"], [], None)
    voice = StatsHead(StatsHeadConfig(labels=["neutral", "happy", "angry", "sad"], speech_encoder=""),
                      np.zeros(2), np.ones(2), np.zeros((4, 2)), np.zeros(4)).save(tmp_path / "voice")   # held_out: none
    with pytest.raises(ValueError, match="--hold-out-validation-of"):
        shared_validation(runs["shared"], [voice], None)
    with pytest.raises(ValueError, match="no model"):
        shared_validation([], [voice], None)
    refused = tmp_path / "refused"
    args = ["--members", *map(str, runs["own"]), "--out", str(refused), "--calibrate"]
    assert ensemble(args) == 1 and not refused.exists()   # nothing packed that would answer uncalibrated


WORDS = {"neutral": "table window paper street", "happy": "delight wonderful joy laugh",
         "angry": "furious rage hate shout", "sad": "grief tears lonely loss"}


@pytest.fixture(scope="module")
def words_pack(tiny_corpus, tmp_path_factory):
    """A head trained on the synthetic voices and on a corpus of words with its own validation split
    (8 rows), packed twice over as an ensemble whose heads each drew their own voices would be."""
    root = tmp_path_factory.mktemp("words")
    voices = read_manifest(tiny_corpus)
    for r in voices:
        r.split = "test" if r.group == "0" else "train"
    rng = np.random.default_rng(0)
    words = [Utterance(f"w{k}", None, " ".join(rng.permutation(WORDS[label].split())[:3]), label, "writers",
                       split=("train", "train", "validation", "test")[k % 4]) for k, label in enumerate(list(WORDS) * 8)]
    data = f"{write_manifest(voices, root / 'voices.csv')},{write_manifest(words, root / 'words.csv')}"
    train(TrainConfig(data="manifest", data_path=data, protocol="split", preset="test", epochs=1, batch_size=8,
                      num_workers=0, freeze_encoders=True, out=str(root / "run")))
    best = next((root / "run").glob("*/best"))
    assert ensemble(["--members", str(best), str(best), "--out", str(root / "pack")]) == 0
    return root / "pack"


@pytest.mark.slow
def test_an_ensembles_words_alone_are_calibrated_on_the_words_validation_split_only(words_pack, capsys):
    before = json.loads((words_pack / ENSEMBLE_FILE).read_text())
    plain = EmotionRecognizer(words_pack, asr="none", device="cpu").forward(None, "grief tears loss")[0]["both"].probs
    assert calibrate(["--checkpoint", str(words_pack)]) == 0 and "the words alone: temperature" in capsys.readouterr().out
    spec = json.loads((words_pack / ENSEMBLE_FILE).read_text())
    assert spec["calibrated_on"]["words"]["rows"] == {"words": 8}    # no spoken row, no test row
    assert set(spec["temperatures"]) == {"text"} and spec["temperature"] == 1.0
    assert spec["not_sure_below"] == before["not_sure_below"]        # the voice's answers keep their own calibration
    recognizer = EmotionRecognizer(words_pack, asr="none", device="cpu")
    answers = recognizer.forward(None, "grief tears loss")[0]
    tempered = (plain.log() / spec["temperatures"]["text"]).softmax(-1)
    assert answers["both"].probs.numpy() == pytest.approx(tempered.numpy(), abs=1e-5)
