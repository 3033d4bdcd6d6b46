"""Normalisation by the speaker's or session's own speech (test-time mean alignment)."""
import shutil
from pathlib import Path

import numpy as np
import pytest

from mgcma.evaluate import main as evaluate
from mgcma.normalise import main as write_stats
from mgcma.infer.speaker_means import STATS_FILE, SpeechMean, load_means
from mgcma.infer.recognizer import EmotionRecognizer

ROOT = Path(__file__).resolve().parents[2]
CLIPS = sorted((ROOT / "app" / "examples").glob("*.wav"))


@pytest.fixture(scope="module")
def tuned_checkpoint(test_checkpoint, tiny_corpus, tmp_path_factory):
    """The small random model with a training mean written from the tiny corpus, as the CLI writes it."""
    path = tmp_path_factory.mktemp("tuned") / "model"
    shutil.copytree(test_checkpoint, path)
    assert write_stats(["--checkpoint", str(path), "--manifest", str(tiny_corpus)]) == 0
    return path


def test_the_training_means_are_written_beside_the_model(tuned_checkpoint, tiny_corpus):
    from mgcma.data.records import read_manifest
    means = load_means(tuned_checkpoint / STATS_FILE)
    labels = {r.label for r in read_manifest(tiny_corpus)}
    assert set(means) == {"all"} | labels and means["all"].clips == 64 == sum(means[k].clips for k in labels)
    assert means["all"].mean.shape == (32,) and np.isfinite(means["all"].mean).all()
    weighted = sum(means[k].total for k in labels) / sum(means[k].frames for k in labels)
    np.testing.assert_allclose(weighted, means["all"].mean, rtol=1e-5)


def test_a_reference_shifts_the_voice_by_the_difference_of_means(tuned_checkpoint):
    recognizer = EmotionRecognizer(tuned_checkpoint, asr="none", device="cpu")
    plain = recognizer.predict(CLIPS[0], "some words")
    assert plain.tuned_on_seconds is None
    # a reference whose mean is the training mean moves nothing
    same = SpeechMean(total=recognizer.training_means["all"].mean.astype(np.float64) * 10, frames=10, clips=1, seconds=1.0)
    unmoved = recognizer.predict(CLIPS[0], "some words", reference=same)
    assert unmoved.probabilities == pytest.approx(plain.probabilities, abs=1e-5) and unmoved.tuned_on_seconds == 1.0
    # the reference of other clips moves the voice's answer, and the words-only answer not at all
    reference = SpeechMean()
    for clip in CLIPS[1:]:
        recognizer.add_reference(reference, clip)
    tuned = recognizer.predict(CLIPS[0], "some words", reference=reference)
    assert reference.clips == len(CLIPS) - 1 and tuned.tuned_on_seconds == pytest.approx(reference.seconds)
    assert tuned.answers["speech"] != pytest.approx(plain.answers["speech"], abs=1e-4)
    assert tuned.answers["text"] == pytest.approx(plain.answers["text"], abs=1e-6)


def test_the_layer_means_move_a_heads_mixed_frames_as_their_own_means_do():
    """Two references' difference of layer means, mixed by a head, is the difference of the means of
    its mixed frames: one set of training means serves heads with any mix (an ensemble's)."""
    import torch
    from mgcma.config import preset
    from mgcma.model import MGCMA
    from mgcma.infer.speaker_means import layer_frames
    torch.manual_seed(0)
    model = MGCMA(preset("test", speech_layers="weighted")).eval()
    torch.nn.init.normal_(model.speech_layer_logits, std=2.0)
    n = model.speech_layers_used.stop
    a, b = torch.randn(1, 30, n, 32) * 3 + 1, torch.randn(1, 20, n, 32)
    mask_a, mask_b = torch.ones(1, 30, dtype=torch.bool), torch.ones(1, 20, dtype=torch.bool)
    with torch.no_grad():
        mixed = model.mix_layers(a)[0].mean(0) - model.mix_layers(b)[0].mean(0)
        layers = layer_frames(a, mask_a)[0].mean(0) - layer_frames(b, mask_b)[0].mean(0)     # (L, D)
        torch.testing.assert_close(model.mixed_shift(layers[None])[0], mixed, atol=1e-5, rtol=1e-5)


def test_means_of_another_shape_are_set_aside_with_a_warning(test_checkpoint, tmp_path):
    """Means written by an older version (of another model's mixed frames): the model still answers."""
    path = tmp_path / "model"
    shutil.copytree(test_checkpoint, path)
    stale = SpeechMean(total=np.ones(7), frames=1, clips=1, seconds=1.0)
    from mgcma.infer.speaker_means import save_means
    save_means({"all": stale}, path / STATS_FILE)
    with pytest.warns(UserWarning, match="python -m mgcma.normalise"):
        recognizer = EmotionRecognizer(path, asr="none", device="cpu")
    assert recognizer.training_means is None and recognizer.predict(CLIPS[0], "x").label in recognizer.config.labels


def test_without_a_training_mean_a_reference_changes_nothing(test_checkpoint):
    recognizer = EmotionRecognizer(test_checkpoint, asr="none", device="cpu")
    assert recognizer.training_means is None
    reference = recognizer.add_reference(SpeechMean(), CLIPS[1])
    assert recognizer.predict(CLIPS[0], "x", reference=reference).probabilities == pytest.approx(
        recognizer.predict(CLIPS[0], "x").probabilities, abs=1e-6)


def manifest(path: Path, labels: list[str], speakers: list[str]) -> Path:
    rows = ["path,text,label,speaker"] + [f"{c},,{label},{s}" for c, label, s in zip(CLIPS, labels, speakers)]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_reference_statistics_never_read_the_labels(tuned_checkpoint, tmp_path):
    """Scrambling the labels changes the scores, never the answers given."""
    import json
    speakers = ["a", "a", "b", "b", "b"]
    runs = {}
    for name, labels in (("true", ["angry", "angry", "happy", "neutral", "sad"]), ("scrambled", ["sad"] * 5)):
        for mode in ("corpus", "speaker"):
            out = tmp_path / f"{name}-{mode}.json"
            assert evaluate(["--checkpoint", str(tuned_checkpoint), "--manifest", str(manifest(tmp_path / f"{name}.csv", labels, speakers)),
                             "--asr", "none", "--modality", "speech", "--normalise", mode, "--out", str(out)]) == 0
            runs[name, mode] = json.loads(out.read_text())
    for mode in ("corpus", "speaker"):
        predicted = [np.array(runs[name, mode]["confusion"]).sum(0).tolist() for name in ("true", "scrambled")]
        assert predicted[0] == predicted[1] and runs["true", mode]["normalise"] == mode


def test_a_clip_with_no_speaker_information_still_gets_an_answer(tuned_checkpoint, test_checkpoint, tmp_path, capsys):
    one = manifest(tmp_path / "one.csv", ["happy"], ["unknown"])
    assert evaluate(["--checkpoint", str(tuned_checkpoint), "--manifest", str(one), "--asr", "none",
                     "--modality", "speech", "--normalise", "speaker"]) == 0
    assert evaluate(["--checkpoint", str(test_checkpoint), "--manifest", str(one), "--asr", "none",
                     "--modality", "speech", "--normalise", "corpus"]) == 1
    assert "needs the checkpoint's training means" in capsys.readouterr().err


def test_an_enrolment_tunes_to_the_speakers_calm_speech_and_reports_the_untuned_score(tuned_checkpoint, tmp_path):
    import json
    speakers = ["a", "a", "a", "b", "b"]
    out = tmp_path / "enrol.json"
    assert evaluate(["--checkpoint", str(tuned_checkpoint), "--manifest",
                     str(manifest(tmp_path / "m.csv", ["neutral", "angry", "sad", "neutral", "happy"], speakers)),
                     "--asr", "none", "--modality", "speech", "--normalise", "enrolment", "--out", str(out)]) == 0
    m = json.loads(out.read_text())
    assert m["enrolment"] == {"clips": 2, "speakers": 2} and m["n"] == 3 == m["untuned"]["n"]   # the enrolment is not scored
    recognizer = EmotionRecognizer(tuned_checkpoint, asr="none", device="cpu")
    calm = recognizer.add_reference(SpeechMean(), CLIPS[0])
    onto_neutral = recognizer.predict(CLIPS[1], None, use_asr=False, reference=calm, calm_reference=True)
    onto_all = recognizer.predict(CLIPS[1], None, use_asr=False, reference=calm)
    assert onto_neutral.probabilities != pytest.approx(onto_all.probabilities, abs=1e-5)
