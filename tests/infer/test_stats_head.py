"""The voice statistics head (mgcma/infer/stats_head.py): what it reads, how its layer is chosen, and how
it answers with the MGCMA heads (PyTorch and ONNX)."""
import csv
import json

import numpy as np
import pytest
import torch

from mgcma.checkpoint import load_tokenizer, save_model
from mgcma.config import preset
from mgcma.ensemble import main as pack
from mgcma.infer.onnx_export import compare_with_torch, export
from mgcma.infer.recognizer import EmotionRecognizer
from mgcma.infer.stats_head import StatsHead, StatsHeadConfig, mix_into, pooled_statistics
from mgcma.model import MGCMA
from mgcma.stats_head import main as stats_head_cli
from mgcma.training.stats_head import C_GRID, TrainingSet, candidate_layers, train_stats_head

LABELS = ["neutral", "happy", "angry", "sad"]
RNG = np.random.default_rng(0)


def test_the_statistics_read_only_a_clips_real_frames():
    features = RNG.normal(size=(2, 9, 3, 4))       # (B, T, L, D)
    mask = np.ones((2, 9), bool)
    mask[1, 5:] = False
    alone = pooled_statistics(features[1:, :5], np.ones((1, 5), bool), layer=2)
    np.testing.assert_allclose(pooled_statistics(features, mask, layer=2)[1:], alone)
    np.testing.assert_allclose(alone[0, :4], features[1, :5, 2].mean(0))
    np.testing.assert_allclose(alone[0, 4:], features[1, :5, 2].std(0, ddof=1))


def two_corpora(n: int = 120, views: int = 2) -> TrainingSet:
    """Layer 1 tells the class the same way in both corpora; layer 0 tells it in the first and
    contradicts it in the second (a corpus's own habit); layer 2 is noise."""
    labels = np.tile(np.arange(4), n // 4)
    groups = np.repeat(["a", "b"], n // 2)
    signal = np.eye(4)[labels] * 3.0                                   # (N, 4)
    flipped = np.where((groups == "a")[:, None], signal, signal[:, ::-1])
    layers = [flipped, signal, np.zeros_like(signal)]
    stats = np.stack([np.stack([np.concatenate([x, x], -1) for x in layers], 1)] * views, 1)   # (N, V, 3, 8)
    return TrainingSet(stats + RNG.normal(size=stats.shape), labels, groups)


def test_the_layer_chosen_is_the_one_that_holds_across_corpora():
    data = two_corpora()
    reports = []
    head = train_stats_head(data, LABELS, "enc", layers=[0, 1, 2], report=reports.append)
    assert head.config.layer == 1 and len(reports) == len(head.config.selection) == 3 * len(C_GRID)
    best = {layer: max(ua for l, _, ua in head.config.selection if l == layer) for layer in range(3)}
    assert best[1] > 0.9 and best[0] < 0.5
    probs = head.probabilities(data.stats[:, 0, 1])
    np.testing.assert_allclose(probs.sum(1), 1.0)
    assert (probs.argmax(1) == data.labels).mean() > 0.9


def test_one_group_cannot_choose_a_layer():
    data = two_corpora()
    with pytest.raises(ValueError, match="two corpora"):
        train_stats_head(TrainingSet(data.stats, data.labels, np.full(len(data.labels), "a")), LABELS, "enc", [0, 1])


def test_the_candidate_layers_are_those_the_encoder_has():
    assert candidate_layers(None, 8) == list(range(8))
    assert candidate_layers("2-4", 8) == [2, 3, 4] and candidate_layers("3", 8) == [3]
    for spec in ("5-9", "4-2", "8", "a-b", "3-"):
        with pytest.raises(ValueError, match="--layers"):
            candidate_layers(spec, 8)


def test_a_saved_head_answers_as_before(tmp_path):
    head = train_stats_head(two_corpora(), LABELS, "enc", layers=[1])
    again = StatsHead.load(head.save(tmp_path / "s"))
    x = RNG.normal(size=(5, 8))
    np.testing.assert_allclose(again.probabilities(x), head.probabilities(x))
    assert again.config == head.config


def test_a_head_that_reads_the_spread_alone_is_blind_to_an_offset_of_every_frame(tmp_path):
    data = two_corpora()
    head = train_stats_head(data, LABELS, "enc", layers=[1], reads="spread")
    assert head.coef.shape == (4, 4) and StatsHead.load(head.save(tmp_path / "s")).config.reads == "spread"
    features = RNG.normal(size=(3, 20, 2, 4))                              # (B, T, L, D)
    mask = np.ones((3, 20), bool)
    plain = head.probabilities(pooled_statistics(features, mask, layer=1))
    moved = head.probabilities(pooled_statistics(features + RNG.normal(size=(3, 1, 1, 4)) * 5, mask, layer=1))
    np.testing.assert_allclose(moved, plain, atol=1e-9)                    # a voice's offset moves nothing
    both = train_stats_head(data, LABELS, "enc", layers=[1])
    assert not np.allclose(both.probabilities(pooled_statistics(features + 5.0, mask, layer=1)),
                           both.probabilities(pooled_statistics(features, mask, layer=1)))
    with pytest.raises(ValueError, match="spread"):
        train_stats_head(data, LABELS, "enc", layers=[1], reads="mean")


def random_stats_head(path, width: int, layer: int, weight: float, encoder: str) -> StatsHead:
    rng = np.random.default_rng(1)
    config = StatsHeadConfig(labels=LABELS, speech_encoder=encoder, layer=layer, temperature=1.5, weight=weight)
    head = StatsHead(config, rng.normal(size=2 * width), rng.uniform(0.5, 2, 2 * width),
                     rng.normal(size=(4, 2 * width)), rng.normal(size=4))
    head.save(path)
    return head


@pytest.fixture(scope="module")
def model_and_stats(tmp_path_factory):
    """A small random Whisper + BERT model (calibrated: temperature 1.7), a statistics head beside it, and the two packed."""
    root = tmp_path_factory.mktemp("stats")
    config = preset("test-whisper", speech_layers="weighted", freeze_speech_encoder=True, freeze_text_encoder=True,
                    temperature=1.7)
    torch.manual_seed(0)
    model = MGCMA(config).eval()
    save_model(model, root / "model", load_tokenizer(config))
    head = random_stats_head(root / "stats", model.speech_encoder.config.hidden_size, 2, 0.5, config.speech_encoder)
    assert pack(["--members", str(root / "model"), str(root / "stats"), "--out", str(root / "both")]) == 0
    return root, head


def test_every_answer_that_hears_the_voice_takes_the_heads_share(model_and_stats):
    root, head = model_and_stats
    plain, together = (EmotionRecognizer(root / d, asr="none", device="cpu") for d in ("model", "both"))
    clip = (16000, np.random.default_rng(2).normal(0, 0.1, 24000).astype(np.float32))
    a, b = plain.predict(clip, "what a day", use_asr=False), together.predict(clip, "what a day", use_asr=False)
    wave = torch.from_numpy(plain.load(clip)[0])[None]
    with torch.inference_mode():
        features, mask = plain.model.encode_speech(wave, torch.ones_like(wave, dtype=torch.bool))
    voice = head.probabilities(pooled_statistics(features.numpy(), mask.numpy(), 2))[0]
    for answer in ("both", "speech"):
        expected = mix_into(np.array([list(a.answers[answer].values())]), voice[None], 0.5)[0]
        np.testing.assert_allclose(list(b.answers[answer].values()), expected, atol=1e-5)
    assert b.answers["text"] == pytest.approx(a.answers["text"], abs=1e-6)   # the words alone: unchanged
    assert b.answers["both"] != pytest.approx(a.answers["both"], abs=1e-3)


@pytest.mark.slow
def test_the_onnx_export_carries_the_statistics_head(model_and_stats, tmp_path):
    root, _ = model_and_stats
    onnx = export(root / "both", tmp_path / "onnx")
    assert (onnx / "members" / "1" / "stats_head.json").is_file()
    clip = (16000, np.random.default_rng(3).normal(0, 0.1, 20000).astype(np.float32))
    assert compare_with_torch(root / "both", onnx, [clip], text="said twice") < 1e-4


def test_a_head_for_other_labels_is_refused(model_and_stats, tmp_path):
    root, head = model_and_stats
    StatsHead(StatsHeadConfig(labels=LABELS[::-1], speech_encoder=head.config.speech_encoder), head.mean, head.scale,
              head.coef, head.intercept).save(tmp_path / "other")
    with pytest.raises(Exception, match="cannot answer together"):
        EmotionRecognizer(root / "model", asr="none", device="cpu", members=[tmp_path / "other"])


def test_the_command_never_trains_on_test_rows(model_and_stats, tiny_corpus, tmp_path):
    """Two corpora made from the synthetic one; scrambling the labels of its test rows changes nothing."""
    root, _ = model_and_stats
    rows = list(csv.DictReader(open(tiny_corpus)))
    base = tiny_corpus.parent

    def write(name, scramble: bool):
        paths = []
        for half in (0, 1):
            part = [dict(r, path=str(base / r["path"])) for r in rows if int(r["speaker"][3:]) % 2 == half]
            for k, r in enumerate(part):
                r["split"] = "test" if k % 3 == 0 else "train"
                if scramble and r["split"] == "test":
                    r["label"] = LABELS[(LABELS.index(r["label"]) + 1) % 4]
            path = tmp_path / f"{name}-{half}.csv"
            with open(path, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=list(part[0]))
                writer.writeheader()
                writer.writerows(part)
            paths.append(str(path))
        return ",".join(paths)

    for name, scramble in (("clean", False), ("scrambled", True)):
        assert stats_head_cli(["--checkpoint", str(root / "model"), "--manifest", write(name, scramble),
                               "--out", str(tmp_path / name), "--augment-views", "2", "--layers", "1-2"]) == 0
    first, second = (StatsHead.load(tmp_path / n) for n in ("clean", "scrambled"))
    assert first.config.layer in (1, 2) and len(first.config.selection) == 2 * len(C_GRID)
    np.testing.assert_allclose(first.coef, second.coef)
    assert json.loads((tmp_path / "clean" / "stats_head.json").read_text())["trained_on"][0].endswith("clips")


@pytest.mark.slow
def test_the_command_hears_the_microphone_and_codec_views_it_is_asked_for(model_and_stats, tiny_corpus, tmp_path):
    """--augment-colour / --augment-codec change the augmented views it learns from, and keep their own cache."""
    root, _ = model_and_stats
    args = ["--checkpoint", str(root / "model"), "--manifest", str(tiny_corpus), "--augment-views", "2",
            "--layers", "1", "--cache", str(tmp_path / "cache")]
    assert stats_head_cli(args + ["--out", str(tmp_path / "plain")]) == 0
    assert stats_head_cli(args + ["--out", str(tmp_path / "codec"), "--augment-codec", "1", "--augment-colour", "1"]) == 0
    plain, codec = (StatsHead.load(tmp_path / n) for n in ("plain", "codec"))
    assert not np.allclose(plain.mean, codec.mean)
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 2


@pytest.mark.slow
def test_the_command_holds_out_a_runs_validation_speakers(model_and_stats, tiny_corpus, tmp_path):
    """--hold-out-validation-of: scrambling the labels of a trained fold's validation speakers changes nothing."""
    from mgcma.training.config import TrainConfig
    from mgcma.training.loop import train
    from mgcma.training.protocols import run_validation
    root, _ = model_and_stats
    train(TrainConfig(data="manifest", data_path=str(tiny_corpus), preset="test", epochs=1, batch_size=8,
                      num_workers=0, folds="0", out=str(tmp_path / "run")))
    _, records, val_idx = run_validation(tmp_path / "run" / "fold-0")
    held = {records[i].speaker for i in val_idx}
    rows = list(csv.DictReader(open(tiny_corpus)))
    scrambled = tmp_path / "scrambled" / tiny_corpus.name   # the same corpus name: its speakers are the run's
    scrambled.parent.mkdir()
    with open(scrambled, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(dict(r, path=str(tiny_corpus.parent / r["path"]), label=LABELS[(LABELS.index(r["label"]) + 1) % 4]
                              if r["speaker"] in held else r["label"]) for r in rows)
    for name, manifest in (("clean", tiny_corpus), ("scrambled", scrambled)):
        assert stats_head_cli(["--checkpoint", str(root / "model"), "--manifest", str(manifest), "--out", str(tmp_path / name),
                               "--augment-views", "1", "--layers", "1", "--hold-out-validation-of",
                               str(tmp_path / "run" / "fold-0" / "best")]) == 0
    first, second = (StatsHead.load(tmp_path / n) for n in ("clean", "scrambled"))
    np.testing.assert_allclose(first.coef, second.coef)
    assert {h.split(":")[1] for h in first.config.held_out} == held and len(held) >= 2
