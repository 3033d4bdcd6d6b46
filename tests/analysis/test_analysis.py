import json
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np
import pytest
import torch

from mgcma.analysis.ablation import held_out_summary
from mgcma.analysis.embed import Embeddings, embed_records
from mgcma.analysis.figure3 import figure3, figure3_plotly
from mgcma.analysis.gaussians import closeness_text, gaussian_figure, gaussian_plotly, top_dimensions, w2_pairs_figure
from mgcma.analysis.heatmap import attention_maps, heatmap_figure, heatmap_plotly, merge_wordpieces, merge_words
from mgcma.analysis.reference import ReferenceMap, reference_plotly
from mgcma.checkpoint import load_model, load_tokenizer
from mgcma.data.records import read_manifest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("text,words", [
    ("I can't wait to see you this weekend.", ["I", "can't", "wait", "to", "see", "you", "this", "weekend."]),
    ("Unbelievably, she won!", ["Unbelievably,", "she", "won!"]),
    ("  spaced   out  ", ["spaced", "out"]),
    ("", []),
])
def test_tokens_merge_back_into_the_words_of_the_text(tokenizer, text, words):
    enc = tokenizer(text, return_offsets_mapping=True)
    merged = merge_words(text, enc["offset_mapping"])
    assert [w for w, _ in merged] == words
    tokens = tokenizer.convert_ids_to_tokens(enc["input_ids"])
    assert sorted(i for _, g in merged for i in g) == [i for i, t in enumerate(tokens) if t not in ("[CLS]", "[SEP]")]


def test_wordpieces_merge_without_offsets():
    tokens = ["[CLS]", "un", "##believ", "##ably", "happy", "[SEP]", "[PAD]"]
    assert merge_wordpieces(tokens) == [("unbelievably", [1, 2, 3]), ("happy", [4])]


@pytest.fixture(scope="module")
def one_output(test_checkpoint):
    model = load_model(test_checkpoint)
    tok = load_tokenizer(model.config, test_checkpoint)
    text = "I can't wait, really."
    enc = tok([text], return_tensors="pt", return_offsets_mapping=True)
    audio = 0.1 * torch.randn(1, 24000, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = model(audio, torch.ones_like(audio, dtype=torch.bool), enc["input_ids"], enc["attention_mask"].bool())
    return model, out, tok.convert_ids_to_tokens(enc["input_ids"][0]), text, enc["offset_mapping"][0].tolist()


def test_heatmap_has_both_directions_per_head_with_words_and_seconds(one_output):
    model, out, tokens, text, offsets = one_output
    words, s2w, w2s, times = attention_maps(out, tokens, model.frame_seconds, text=text, offsets=offsets)
    assert words == ["I", "can't", "wait,", "really."]
    heads, n_frames = model.config.n_heads, int(out.speech_mask.sum())
    assert s2w.shape == w2s.shape == (heads, 4, n_frames)
    # each frame's attention over the words plus [CLS] and [SEP] (not shown) sums to 1
    special = out.speech_to_text_attn[0, :, :n_frames, [0, len(tokens) - 1]].sum(-1).numpy()
    assert np.allclose(s2w.sum(1) + special, 1, atol=1e-5)
    assert times[-1] == pytest.approx((n_frames - 0.5) * 0.02)
    fig = heatmap_figure(words, s2w, w2s, times)
    image_axes = [ax for ax in fig.axes if ax.images]
    assert len(image_axes) == 2 * (1 + heads)
    assert all(ax.get_xlabel() == "time (s)" for ax in image_axes)
    assert [t.get_text() for t in image_axes[0].get_yticklabels()] == words
    assert len(heatmap_plotly(words, s2w, w2s, times).data) == 2


def test_gaussian_views(one_output):
    _, out, *_ = one_output
    params = [t[0].numpy() for t in (out.mu_speech, out.sigma_speech, out.mu_text, out.sigma_text)]
    w2, sim = float(out.w2[0, 0]), float(out.sim[0, 0])
    dims = top_dimensions(*params, k=3)
    contribution = (params[0] - params[2]) ** 2 + (params[1] - params[3]) ** 2
    assert contribution[dims[0]] == contribution.max()
    own, other = np.array([1.0, 2.0, 3.0, 4.0]), np.array([5.0, 6.0, 7.0, 8.0])
    fig = gaussian_figure(*params, w2, sim, k=3, reference=(own, other))
    assert len(fig.axes) == 2 and f"W2(speech, text) = {w2:.2f}" in fig._suptitle.get_text()
    assert len(fig.axes[0].get_yticklabels()) == 3
    plotly = gaussian_plotly(*params, w2, sim, k=3, reference=(own, other))
    assert len(plotly.data) == 4 and len(plotly.data[0].x) == 3   # speech and text means, two histograms
    assert closeness_text(4.5, (own, other)) == ("smaller than 100 % of mismatched pairs' W2 and 0 % of matched "
                                                 "pairs' (reference set)")
    w2_matrix = np.abs(np.random.default_rng(0).normal(3, 1, (20, 20)))
    hist = w2_pairs_figure(w2_matrix)
    assert "matched" in hist.axes[0].get_title()


def fake_embeddings(n=60, d=16, seed=0, aligned=True):
    rng = np.random.default_rng(seed)
    labels = [["neutral", "happy", "angry", "sad"][i % 4] for i in range(n)]
    centres = rng.normal(0, 3, (4, d))
    speech = np.array([centres[i % 4] for i in range(n)]) + rng.normal(0, 0.5, (n, d))
    text = speech + rng.normal(0, 0.3, (n, d)) if aligned else rng.normal(0, 3, (n, d))
    return Embeddings(speech=speech, text=text, labels=labels, predicted=labels)


@pytest.mark.slow
def test_figure3_panels_share_axes_and_numbers_back_the_picture():
    panels = {"aligned": fake_embeddings(), "not aligned": fake_embeddings(aligned=False)}
    fig, metrics, coords = figure3(panels)
    axes = [ax for ax in fig.axes if ax.collections]
    assert len(axes) == 2
    assert axes[0].get_xlim() == axes[1].get_xlim() and axes[0].get_ylim() == axes[1].get_ylim()
    assert sum(len(c.get_offsets()) for c in axes[0].collections) == 120   # 60 speech + 60 text points
    assert metrics["aligned"]["pair_distance"] < metrics["not aligned"]["pair_distance"]
    assert metrics["aligned"]["r_at_1"] > metrics["not aligned"]["r_at_1"]
    assert metrics["aligned"]["silhouette_text"] > metrics["not aligned"]["silhouette_text"]
    assert "R@1" in fig.axes[0].get_title()
    assert len(figure3_plotly(panels, coords).data) == 16


@pytest.mark.slow
def test_a_reference_utterance_lands_on_its_own_point(tmp_path):
    emb = fake_embeddings(n=80)
    ref = ReferenceMap.build(emb)
    extent = np.ptp(ref.coords, axis=0).max()
    placed = ref.place(emb.speech[7])
    assert np.linalg.norm(placed - ref.coords[7]) < 1e-3 * extent
    both = ref.place(np.stack([emb.speech[3], emb.text[3]]))
    assert np.allclose(both[1], ref.coords[80 + 3], atol=1e-3 * extent)
    ref.save(tmp_path)
    back = ReferenceMap.load(tmp_path)
    assert np.array_equal(back.coords, ref.coords) and list(back.labels) == list(ref.labels)
    fig = reference_plotly(back, placed, both[1])
    assert fig.data[-1].name == "this clip: text"


def test_embed_records_keeps_the_records_order(test_checkpoint, tiny_corpus):
    model = load_model(test_checkpoint)
    records = read_manifest(tiny_corpus)[:12]
    emb = embed_records(model, load_tokenizer(model.config, test_checkpoint), records, batch_size=5, progress=False)
    assert emb.speech.shape == (12, model.config.d_model) and emb.mu_speech.shape == (12, model.config.gauss_dim)
    assert emb.labels == [r.label for r in records]


def run_analysis(*args):
    done = subprocess.run([sys.executable, "-m", "mgcma.analysis", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done.stdout


@pytest.mark.slow
def test_commands_write_png_and_html(test_checkpoint, tiny_corpus, tmp_path):
    clip = read_manifest(tiny_corpus)[1]
    run_analysis("figure3", "--checkpoint", test_checkpoint, "--name", "test", "--data", tiny_corpus, "--out", tmp_path)
    run_analysis("heatmap", "--checkpoint", test_checkpoint, "--audio", clip.path, "--text", clip.text, "--out", tmp_path)
    run_analysis("gaussians", "--checkpoint", test_checkpoint, "--audio", clip.path, "--text", clip.text,
                 "--data", tiny_corpus, "--out", tmp_path)
    for name in ("figure3", "heatmap", "gaussians"):
        assert (tmp_path / f"{name}.png").stat().st_size > 5000
        assert (tmp_path / f"{name}.html").stat().st_size > 5000
    assert (tmp_path / "w2_pairs.png").stat().st_size > 5000
    assert "| test |" in (tmp_path / "figure3_metrics.md").read_text()


def test_alignment_metrics_on_known_geometry():
    from mgcma.analysis.alignment import alignment_metrics
    rng = np.random.default_rng(0)
    speech = rng.normal(size=(40, 8))
    labels = ["a", "b"] * 20
    same = alignment_metrics(speech, speech, labels)
    assert same["r_at_1"] == 1.0 and same["mean_rank"] == 1.0 and same["pair_distance"] == 0.0
    assert same["random_distance"] > 1.0 and same["modality_gap"] < 1e-9
    shuffled = alignment_metrics(speech, speech[rng.permutation(40)], labels)
    assert shuffled["r_at_1"] < 0.2 and shuffled["pair_distance"] > 1.0
    # identical transcripts are one target: a clip nearest to any copy of its sentence is a hit
    texts = ["kids are talking"] * 20 + ["dogs are sitting"] * 20
    centres = rng.normal(size=(2, 8))
    spoken = np.repeat(centres, 20, axis=0) + 0.1 * rng.normal(size=(40, 8))
    merged = alignment_metrics(spoken, np.repeat(centres, 20, axis=0), labels, texts)
    assert merged["n_targets"] == 2 and merged["r_at_1"] == 1.0
    assert alignment_metrics(speech, rng.normal(size=(40, 5)), labels).get("r_at_1") is None   # no shared space


def test_reference_w2_percentiles_say_what_close_means(tmp_path):
    rng = np.random.default_rng(1)
    emb = fake_embeddings(n=40)
    emb.mu_speech = rng.normal(size=(40, 4)).astype(np.float32)
    emb.mu_text = emb.mu_speech + 0.1 * rng.normal(size=(40, 4)).astype(np.float32)   # own pairs close
    emb.sigma_speech = emb.sigma_text = np.ones((40, 4), np.float32)
    emb.texts = [f"sentence {i % 10}" for i in range(40)]
    ref = ReferenceMap.build(emb)
    assert ref.w2_own.shape == (40,) and np.median(ref.w2_own) < np.median(ref.w2_other)
    own, other = ref.w2_percentiles(float(np.median(ref.w2_own)))
    assert 40 <= own <= 60 and other > 90
    ref.save(tmp_path)
    assert ReferenceMap.load(tmp_path).w2_percentiles(0.0) == (100.0, 100.0)


def test_figure3_draws_each_panel_in_its_own_space():
    emb = fake_embeddings()
    emb.spaces = {"mu": (emb.speech[:, :8], emb.text[:, :8])}
    fig, metrics, _ = figure3({"a: fused": emb, "a: mu": emb}, space={"a: fused": "fused", "a: mu": "mu"}, columns=1)
    axes = [ax for ax in fig.axes if ax.collections]
    assert len(axes) == 2 and axes[0].get_position().y0 > axes[1].get_position().y0   # one column, two rows
    assert metrics["a: fused"]["pair_distance"] != metrics["a: mu"]["pair_distance"]


def test_figure3_leaves_a_blank_panel_where_a_module_is_off():
    emb = fake_embeddings()
    fig, metrics, _ = figure3({"full: fused": emb, "no-dist: mu": None}, space={"full: fused": "fused"})
    assert set(metrics) == {"full: fused"}
    assert any("no such space" in ax.get_title() for ax in fig.axes)


@pytest.mark.slow
def test_ablation_command_writes_the_table_its_record_and_bars(tiny_corpus, tmp_path):
    from mgcma import ablate
    from mgcma.training.ablation import ablation_summary
    runs = tmp_path / "runs"
    assert ablate.main(["--data", "manifest", "--data-path", str(tiny_corpus), "--preset", "test", "--freeze-encoders",
                        "--epochs", "1", "--batch-size", "8", "--num-workers", "0", "--folds", "0",
                        "--settings", "full,none", "--out", str(runs)]) == 0
    out = tmp_path / "docs"
    printed = run_analysis("ablation", "--runs", runs, "--no-confusion", "--answer", "speech", "--out", out)
    assert "no alignment (plain fusion)" in printed and not list(out.glob("confusion-*"))
    record = json.loads((out / "ablation-speech.json").read_text())
    assert record["none"]["UA_mean"] == ablation_summary(runs, answer="speech")["none"]["UA_mean"]
    assert (out / "ablation-speech.png").stat().st_size > 5000


def fake_fold(folder: Path, fold: int, group: str, confusion: list, val_ua: list) -> None:
    cm = np.array(confusion)
    recall = {name: float(cm[i, i] / cm[i].sum()) for i, name in enumerate(["neutral", "happy", "angry", "sad"])}
    (folder / f"fold-{fold}").mkdir(parents=True)
    (folder / f"fold-{fold}" / "metrics.json").write_text(json.dumps(dict(
        fold=fold, test_group=group, n_test=int(cm.sum()), UA=float(np.mean(list(recall.values()))),
        WA=float(np.trace(cm) / cm.sum()), recall=recall, confusion_matrix=confusion, labels=list(recall),
        by_modality={"both": {"ECE": 0.123}}, best_epoch=3, history=[{"val_UA": u / 100, "val_UA_by_corpus": {"ravdess4": u / 100}} for u in val_ua],
        calibration={"temperature": 1.5})))


def test_held_out_report_names_the_answer_a_corpus_collapses_onto(tmp_path):
    run = tmp_path / "run"
    fake_fold(run, 0, "emovo", [[2, 0, 8, 0], [0, 3, 7, 0], [0, 0, 10, 0], [0, 0, 5, 5]], [40, 60, 50, 70, 71, 75, 74])
    fake_fold(run, 1, "emodb", [[10, 0, 0, 0], [0, 9, 1, 0], [0, 1, 9, 0], [0, 0, 0, 10]], [50, 80, 81, 82, 82, 83, 83])
    earlier = tmp_path / "earlier.json"
    earlier.write_text(json.dumps({"groups": {"emovo": {"UA": 61.0}, "emodb": {"UA": 90.0}}}))
    printed = run_analysis("held-out", "--run", run, "--against", earlier, "--name", "loco", "--out", tmp_path / "docs")
    record = json.loads((tmp_path / "docs" / "loco.json").read_text())["groups"]
    assert record["emovo"]["most_frequent_answer"] == "angry" and record["emovo"]["most_frequent_answer_share"] == 75.0
    assert record["emovo"]["largest_swing_from_epoch_5"] == 4.0 and record["emovo"]["ECE"] == {"both": 12.3}
    assert record["emovo"]["largest_swing_by_corpus"] == {"ravdess4": 4.0}
    assert record["emodb"]["UA"] == 95.0
    assert "angry 75 %" in printed and "| 61.00 |" in printed and "75.50" in printed   # the earlier mean beside


def fake_answers(fold_dir: Path, test_logits, test_targets, val_logits, val_targets) -> None:
    np.savez(fold_dir / "answers.npz", **{
        "test/logits": np.asarray(test_logits, dtype=float), "test/targets": np.asarray(test_targets),
        "test/id": np.array([f"clip{k:03d}" for k in range(len(test_targets))]),
        "validation/logits": np.asarray(val_logits, dtype=float), "validation/targets": np.asarray(val_targets),
        "validation/corpus": np.array(["ravdess4"] * len(val_targets))})


def test_held_out_report_averages_seeds_and_can_undo_a_lean_towards_one_class(tmp_path):
    rng = np.random.default_rng(0)
    targets = np.repeat(np.arange(4), 25)
    lean = np.array([0.0, 0.0, 3.0, 0.0])                               # every answer pushed towards "angry"
    runs = []
    for seed in range(2):
        run = tmp_path / f"seed-{seed}"
        fake_fold(run, 0, "emovo", [[25, 0, 0, 0], [0, 25, 0, 0], [0, 0, 25, 0], [0, 0, 0, 25]], [50] * 6)
        logits = lambda: 2.0 * np.eye(4)[targets] + rng.normal(0, 1, (100, 4)) + lean
        fake_answers(run / "fold-0", logits(), targets, logits(), targets)
        runs.append(run)
    as_is = held_out_summary(runs)["emovo"]
    balanced = held_out_summary(runs, class_balanced=True)["emovo"]
    assert as_is["most_frequent_answer"] == "angry" and as_is["most_frequent_answer_share"] > 60
    assert balanced["most_frequent_answer_share"] < 40 and balanced["UA"] > as_is["UA"] + 20
    assert as_is["n"] == balanced["n"] == 100
    fake_fold(tmp_path / "older", 0, "emovo", np.eye(4, dtype=int).tolist(), [50] * 6)   # a run that kept no answers
    with pytest.raises(FileNotFoundError, match="answers.npz"):
        held_out_summary([runs[0], tmp_path / "older"])
