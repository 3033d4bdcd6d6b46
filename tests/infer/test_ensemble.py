"""Several heads answering together over one encoder pass (mgcma/infer/ensemble.py)."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mgcma.checkpoint import save_model
from mgcma.config import preset
from mgcma.ensemble import main as pack
from mgcma.infer.ensemble import StackedHeads
from mgcma.infer.members import ENSEMBLE_FILE, Together, write_together
from mgcma.infer.recognizer import EmotionRecognizer, InputError
from mgcma.infer.speaker_means import STATS_FILE, SpeechMean, save_means
from mgcma.model import MGCMA

ROOT = Path(__file__).resolve().parents[2]
CLIPS = sorted((ROOT / "app" / "examples").glob("*.wav"))


FROZEN = dict(speech_layers="weighted", freeze_speech_encoder=True, freeze_text_encoder=True)


def random_head(path, tokenizer, seed: int, encoders: MGCMA | None = None, **config):
    """A small random model with frozen encoders (`encoders`' where given), saved at `path`."""
    torch.manual_seed(seed)
    model = MGCMA(preset("test", **FROZEN, **config), shared_encoders=encoders).eval()
    save_model(model, path, tokenizer)
    return model


@pytest.fixture(scope="module")
def members(tmp_path_factory, tokenizer):
    """Two heads over one small random model's encoders: the second calibrated (T 2.5, 'not sure' below 0.4)."""
    root = tmp_path_factory.mktemp("members")
    first = random_head(root / "a", tokenizer, 0, not_sure_below=0.3)
    random_head(root / "b", tokenizer, 1, first, temperature=2.5, not_sure_below=0.4)
    return root / "a", root / "b"


@pytest.fixture(scope="module")
def ensemble(members, tmp_path_factory):
    out = tmp_path_factory.mktemp("ensemble") / "model"
    assert pack(["--members", *map(str, members), "--out", str(out)]) == 0
    return out


def test_the_answer_is_the_mean_of_the_heads_calibrated_probabilities(members, ensemble):
    together = EmotionRecognizer(ensemble, asr="none", device="cpu")
    alone = [EmotionRecognizer(m, asr="none", device="cpu") for m in members]
    assert together.config.not_sure_below == pytest.approx(0.35) and together.config.temperature == 1.0
    for clip, words in ((CLIPS[0], "what a lovely day"), (CLIPS[1], None)):
        got = together.predict(clip, words, use_asr=False)
        each = [r.predict(clip, words, use_asr=False) for r in alone]
        for modality in got.answers or {"both": None}:
            expected = {k: np.mean([(p.answers or {"both": p.probabilities})[modality][k] for p in each]) for k in got.probabilities}
            assert (got.answers or {"both": got.probabilities})[modality] == pytest.approx(expected, abs=1e-5)
        assert got.not_sure == (max(got.probabilities.values()) < 0.35)
    # the two heads differ, so the mean is neither's
    assert each[0].probabilities != pytest.approx(each[1].probabilities, abs=1e-3)


@pytest.mark.parametrize("precision", ["float32", "int8"])
def test_the_encoders_run_once_whatever_the_number_of_heads(members, ensemble, precision):
    calls = []
    for checkpoint in (members[0], ensemble):
        recognizer = EmotionRecognizer(checkpoint, asr="none", device="cpu", precision=precision)
        counted = []
        for encoder in (recognizer.model.speech_encoder, recognizer.model.text_encoder):
            encoder.register_forward_hook(lambda *args: counted.append(1))
        recognizer.predict(CLIPS[0], "some words", use_asr=False)
        calls.append(len(counted))
    assert calls[0] == calls[1] == 2


def test_stacked_heads_give_each_head_s_own_output(tmp_path, tokenizer):
    first = random_head(tmp_path / "a", tokenizer, 0)
    heads = [first] + [random_head(tmp_path / k, tokenizer, seed, first, temperature=t)
                       for k, seed, t in (("b", 1, 2.5), ("c", 2, 0.7))]
    assert StackedHeads.fits(heads)
    torch.manual_seed(3)
    audio, ids = torch.randn(1, 16000), torch.randint(1000, 2000, (1, 7))
    with torch.inference_mode():
        speech = first.encode_speech(audio, torch.ones_like(audio, dtype=torch.bool))
        text = first.encode_text(ids, torch.ones_like(ids, dtype=torch.bool))
        rows = dict(speech_features=speech[0].expand(3, -1, -1, -1), speech_mask=speech[1].repeat(3, 1),
                    text_features=text.expand(3, -1, -1), text_mask=torch.ones(3, 7, dtype=torch.bool))
        rows["speech_mask"][2] = False   # words only
        rows["text_mask"][1] = False     # voice only
        stacked = StackedHeads(heads)(**rows)
        for head, got in zip(heads, stacked):
            want = head(**rows)
            assert got.temperature == head.config.temperature
            for name, value in vars(want).items():
                if torch.is_tensor(value):
                    torch.testing.assert_close(getattr(got, name), value, atol=1e-5, rtol=1e-5, msg=name)
    assert not torch.allclose(stacked[0].probs, stacked[1].probs, atol=1e-3)   # the heads differ


def test_heads_of_different_shapes_are_not_stacked(tmp_path, tokenizer):
    first = random_head(tmp_path / "a", tokenizer, 0)
    assert not StackedHeads.fits([first])
    assert not StackedHeads.fits([first, random_head(tmp_path / "b", tokenizer, 1, first, d_model=16)])
    assert not StackedHeads.fits([first, random_head(tmp_path / "c", tokenizer, 1, first, use_token=False)])


def test_one_set_of_training_means_tunes_every_head(members, ensemble):
    """A reference moves each head's voice by its own mix of the layer means: the ensemble's tuned
    answer is the mean of each head's tuned answer alone."""
    rng = np.random.default_rng(0)
    recognizer = EmotionRecognizer(members[0], asr="none", device="cpu")
    width = recognizer.model.speech_encoder.config.hidden_size
    depth = recognizer.model.speech_layers_used.stop
    training = SpeechMean(total=rng.normal(0, 1, (depth, width)) * 50, frames=50, clips=5, seconds=5.0)
    for checkpoint in (*members, ensemble):
        save_means({"all": training, "neutral": training}, checkpoint / STATS_FILE)
    heard = [EmotionRecognizer(c, asr="none", device="cpu") for c in (*members, ensemble)]
    reference = heard[0].add_reference(SpeechMean(), CLIPS[2])
    tuned = [r.predict(CLIPS[0], None, use_asr=False, reference=reference).probabilities for r in heard]
    plain = heard[2].predict(CLIPS[0], None, use_asr=False).probabilities
    assert tuned[2] == pytest.approx({k: (tuned[0][k] + tuned[1][k]) / 2 for k in plain}, abs=1e-5)
    assert tuned[2] != pytest.approx(plain, abs=1e-4)
    for checkpoint in (*members, ensemble):
        (checkpoint / STATS_FILE).unlink()


def test_heads_that_cannot_share_an_encoder_pass_are_refused(members, tmp_path, tokenizer, capsys):
    other = tmp_path / "other"
    random_head(other, tokenizer, 2, labels=["sad", "happy", "angry", "neutral"])
    assert pack(["--members", str(members[0]), str(other), "--out", str(tmp_path / "bad")]) == 1
    assert "labels differ" in capsys.readouterr().err
    with pytest.raises(InputError, match="labels differ"):
        EmotionRecognizer(members[0], asr="none", device="cpu", members=[other])
    stranger = tmp_path / "stranger"   # the same config, its own random encoders
    random_head(stranger, tokenizer, 3)
    with pytest.raises(InputError, match="encoder weights other than"):
        EmotionRecognizer(members[0], asr="none", device="cpu", members=[stranger])
    assert pack(["--members", str(members[0]), "--out", str(tmp_path / "one")]) == 1


def test_the_packed_checkpoint_is_its_first_head_for_single_model_tools(members, ensemble):
    from mgcma.checkpoint import load_model
    first, packed = load_model(members[0]), load_model(ensemble)
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), packed.state_dict().values()))
    spec = json.loads((ensemble / ENSEMBLE_FILE).read_text())
    assert spec["members"] == ["members/1"] and spec["not_sure_below"] == pytest.approx(0.35)


def test_evaluate_scores_several_checkpoints_as_the_packed_ensemble(members, ensemble, tmp_path):
    from mgcma.evaluate import main as evaluate
    labels = ["angry", "angry", "happy", "neutral", "sad"]
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,text,label,speaker\n" + "".join(f"{c},,{y},s\n" for c, y in zip(CLIPS, labels)))
    scored = {}
    for name, checkpoints in (("listed", list(map(str, members))), ("packed", [str(ensemble)])):
        out = tmp_path / f"{name}.json"
        assert evaluate(["--checkpoint", *checkpoints, "--manifest", str(manifest), "--asr", "none", "--out", str(out)]) == 0
        scored[name] = json.loads(out.read_text())
    assert scored["listed"]["confusion"] == scored["packed"]["confusion"]
    assert scored["listed"]["checkpoint"] == list(map(str, members))
    for m in scored.values():
        assert m["calibration"]["temperature"] == 1.0 and m["calibration"]["not_sure_below"] == pytest.approx(0.35)


def test_a_temperature_fitted_for_the_answer_together_scales_it_by_what_it_reads(members, ensemble, tmp_path):
    """ensemble.json's temperatures (python -m mgcma.ensemble --calibrate) apply to the heads' mean, as one
    answer: the words alone at their own (0.5), every other answer at the main one (2)."""
    import shutil
    calibrated = tmp_path / "calibrated"
    shutil.copytree(ensemble, calibrated)
    write_together(calibrated, Together(2.0, 0.3, {"text": 0.5}), dict(rows={"x": 1}))
    plain, got = (EmotionRecognizer(m, asr="none", device="cpu") for m in (ensemble, calibrated))
    before, after = (r.predict(CLIPS[0], "what a lovely day", use_asr=False) for r in (plain, got))
    for modality, probs in before.answers.items():
        power = np.array(list(probs.values())) ** (2.0 if modality == "text" else 0.5)   # softmax(log p / T)
        assert list(after.answers[modality].values()) == pytest.approx(list(power / power.sum()), abs=1e-5)
    assert after.label == before.label and after.not_sure == (max(after.probabilities.values()) < 0.3)
    typed = (r.forward(None, "what a lovely day")[0]["both"].probs[0].numpy() for r in (plain, got))
    words_before, words_after = typed                   # words typed without a voice: the words alone too
    assert words_after == pytest.approx(words_before ** 2 / (words_before ** 2).sum(), abs=1e-5)
