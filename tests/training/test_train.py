import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from mgcma.checkpoint import load_model
from mgcma.data.records import read_manifest, write_manifest
from mgcma.training.run_files import TrainingError
from mgcma.training.loop import augment_config, train
from mgcma.training.config import TrainConfig

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def corpus(tiny_corpus):
    return tiny_corpus


def quick(corpus, out, **kw):
    base = dict(data="manifest", data_path=str(corpus), preset="test", epochs=2, batch_size=8,
                num_workers=0, out=str(out))
    base.update(kw)
    return TrainConfig(**base)


def without_time(history):
    """A run's history without its timings, and without the corpus's name (the manifest's file name)."""
    return [{k: list(v.values()) if k == "val_UA_by_corpus" else v for k, v in h.items() if k != "seconds"}
            for h in history]


@pytest.mark.slow
def test_two_fold_run_writes_every_file_and_honest_metrics(corpus, tmp_path):
    summary = train(quick(corpus, tmp_path / "run", folds="0,1"))
    for k in (0, 1):
        fold = tmp_path / "run" / f"fold-{k}"
        assert (fold / "best" / "config.json").is_file() and (fold / "best" / "model.safetensors").is_file()
        assert (fold / "curves.png").stat().st_size > 10_000
        metrics = json.loads((fold / "metrics.json").read_text())
        cm = np.array(metrics["confusion_matrix"])
        recalls = np.diag(cm) / cm.sum(1)
        assert metrics["UA"] == pytest.approx(recalls.mean())
        assert metrics["WA"] == pytest.approx(np.trace(cm) / cm.sum())
        assert [metrics["recall"][name] for name in metrics["labels"]] == pytest.approx(list(recalls))
        assert len(metrics["history"]) == 2 and metrics["n_test"] == cm.sum() == 16
        load_model(fold / "best")
        with np.load(fold / "answers.npz") as answers:   # each clip's answer, for analyses after the run
            predicted, truth = answers["test/logits"].argmax(1), answers["test/targets"]
            assert np.array_equal(np.bincount(4 * truth + predicted, minlength=16).reshape(4, 4), cm)
            assert not set(answers["test/speaker"]) & set(answers["validation/speaker"])
            assert len(answers["validation/id"]) == len(answers["validation/logits"]) > 0
    saved = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert saved["UA_mean"] == pytest.approx(summary["UA_mean"]) and len(saved["folds"]) == 2
    table = (tmp_path / "run" / "results.md").read_text()
    assert "| mean +- std |" in table and "UA %" in table
    assert "test UA" in (tmp_path / "run" / "train.log").read_text()


@pytest.mark.slow
def test_the_test_fold_never_influences_model_selection(corpus, tmp_path):
    """Scrambling the test fold's labels must change nothing but the test score."""
    records = read_manifest(corpus)
    for r in records:
        if r.group == "0":
            r.label = "sad"
    scrambled = write_manifest(records, tmp_path / "scrambled.csv")
    train(quick(corpus, tmp_path / "a", folds="0", epochs=3))
    train(quick(scrambled, tmp_path / "b", folds="0", epochs=3))
    ma, mb = (json.loads((tmp_path / x / "fold-0" / "metrics.json").read_text()) for x in "ab")
    assert ma["best_epoch"] == mb["best_epoch"] and without_time(ma["history"]) == without_time(mb["history"])
    wa, wb = (load_file(tmp_path / x / "fold-0" / "best" / "model.safetensors") for x in "ab")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert ma["confusion_matrix"] != mb["confusion_matrix"]  # the test fold itself did change
    # the confidence is fitted on validation only: the same temperature and threshold, saved with the model
    assert ma["calibration"] == mb["calibration"] and ma["calibration"]["temperature"] != 1.0
    ca, cb = (json.loads((tmp_path / x / "fold-0" / "best" / "config.json").read_text()) for x in "ab")
    assert ca["temperature"] == cb["temperature"] == ma["calibration"]["temperature"]
    assert ca["not_sure_below"] == ma["calibration"]["not_sure_below"]
    assert {"ECE", "ECE_uncalibrated", "answered"} <= set(ma["by_modality"]["both"])


def split_into_corpora(corpus, folder: Path, scramble: str | None = None) -> str:
    """The tiny corpus as three manifests (corpora) by speaker group; `scramble`: that corpus's labels all 'sad'."""
    records = read_manifest(corpus)
    paths = []
    for name, groups in (("one", "0"), ("two", "1"), ("three", "23")):
        mine = [r for r in records if r.group in groups]
        for r in mine:
            r.label = "sad" if name == scramble else r.label
        paths.append(str(write_manifest(mine, folder / f"{name}.csv")))
    return ",".join(paths)


@pytest.mark.slow
def test_leave_one_corpus_out_never_trains_or_selects_on_the_held_out_corpus(corpus, tmp_path):
    """Fold 0 holds out corpus "one" (sorted: one, three, two): scrambling its labels changes its test score only."""
    runs = {}
    for name, scramble in (("plain", None), ("scrambled", "one")):
        paths = split_into_corpora(corpus, tmp_path / name, scramble)
        summary = train(quick(paths, tmp_path / f"run-{name}", protocol="corpora", folds="0", epochs=2))
        assert [f["test_group"] for f in summary["folds"]] == ["one"]
        runs[name] = json.loads((tmp_path / f"run-{name}" / "fold-0" / "metrics.json").read_text())
    assert without_time(runs["plain"]["history"]) == without_time(runs["scrambled"]["history"])
    wa, wb = (load_file(tmp_path / f"run-{x}" / "fold-0" / "best" / "model.safetensors") for x in ("plain", "scrambled"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert runs["plain"]["n_test"] == 16 and runs["plain"]["confusion_matrix"] != runs["scrambled"]["confusion_matrix"]
    assert "recall %" in (tmp_path / "run-plain" / "results.md").read_text()
    [held_out] = json.loads((tmp_path / "run-plain" / "summary.json").read_text())["folds"]
    assert held_out["test_group"] == "one" and held_out["confusion_matrix"] == runs["plain"]["confusion_matrix"]
    assert set(held_out["recall"]) == set(runs["plain"]["labels"])


@pytest.mark.slow
def test_a_corpus_adversary_tells_apart_the_training_corpora_only(corpus, tmp_path):
    paths = split_into_corpora(corpus, tmp_path / "corpora")
    train(quick(paths, tmp_path / "run", protocol="corpora", folds="0", corpus_adversary=0.5))   # holds out "one"
    model = load_model(tmp_path / "run" / "fold-0" / "best", "cpu")
    assert model.config.adversary_corpora == ["three", "two"] and model.corpus_adversary[-1].out_features == 2
    history = json.loads((tmp_path / "run" / "fold-0" / "metrics.json").read_text())["history"]
    assert all(np.isfinite(h["train_corpus_ce"]) and h["train_corpus_ce"] > 0 for h in history)
    assert all(0.3 < h["corpus_guessing_ce"] <= np.log(2) + 1e-9 for h in history)   # rows of both corpora
    assert "guessing from the corpora's shares" in (tmp_path / "run" / "train.log").read_text()
    with pytest.raises(TrainingError, match="two or more training corpora"):
        train(quick(corpus, tmp_path / "one", folds="0", corpus_adversary=0.5))


def test_a_manifest_with_one_speaker_in_two_folds_is_refused(corpus, tmp_path):
    records = read_manifest(corpus)
    leaked = next(r for r in records if r.group == "1")
    leaked.speaker = next(r.speaker for r in records if r.group == "0")
    bad = write_manifest(records, tmp_path / "leak.csv")
    with pytest.raises(ValueError, match=f"not speaker-independent: speaker\\(s\\) {leaked.speaker}"):
        train(quick(bad, tmp_path / "run"))


def test_split_protocol_trains_once_on_the_manifests_splits(corpus, tmp_path):
    """Corpus "a" brings its own validation rows; corpus "b" has none and gives whole training speakers."""
    from mgcma.training.protocols import load_records, make_folds
    records = read_manifest(corpus)
    for r in records:
        r.split = {"0": "test", "1": "validation"}.get(r.group, "train")
    a = write_manifest([r for r in records if r.group in "01"], tmp_path / "a.csv")
    b = write_manifest([all_train(r) for r in records if r.group in "23"], tmp_path / "b.csv")
    cfg = quick(f"{a},{b}", tmp_path / "run", protocol="split", epochs=1)
    rows, _ = load_records(cfg)
    [(name, train_idx, test_idx, val_idx)] = make_folds(cfg, rows)
    assert name == "split" and {rows[i].split for i in test_idx} == {"test"} and len(test_idx) == 16
    assert {rows[i].split for i in val_idx if rows[i].corpus == "a"} == {"validation"}
    b_val = {rows[i].speaker for i in val_idx if rows[i].corpus == "b"}
    assert b_val and not b_val & {rows[i].speaker for i in train_idx}
    assert not {rows[i].split for i in train_idx} - {"train"}
    summary = train(cfg)
    assert [f["test_group"] for f in summary["folds"]] == ["split"] and summary["folds"][0]["n_test"] == 16


def all_train(r):
    r.split = "train"
    return r


WORDS = {"neutral": "table window paper street", "happy": "delight wonderful joy laugh",
         "angry": "furious rage hate shout", "sad": "grief tears lonely loss"}


def test_training_learns_a_learnable_toy_set_well_above_chance(tmp_path):
    """Each class has its own words: a model that learns at all must beat chance (25 %) by far."""
    import csv
    rng = random.Random(0)
    fillers = "the a and then so it was we they".split()
    with open(tmp_path / "toy.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "text", "label", "speaker", "fold"])
        for k in range(96):
            label = list(WORDS)[k % 4]
            words = rng.sample(WORDS[label].split(), 2) + rng.sample(fillers, 3)
            rng.shuffle(words)
            w.writerow(["", " ".join(words), label, f"spk{k % 16}", str(k % 16 // 4)])
    summary = train(quick(tmp_path / "toy.csv", tmp_path / "run", modality="text", use_dist=False, use_token=False,
                          use_inst=False, folds="0", epochs=8, lr_heads=3e-3))
    assert summary["UA_mean"] >= 0.75, summary["folds"]


@pytest.mark.slow
def test_validation_labels_move_the_temperature(corpus, tmp_path):
    """The other half of "fitted on validation only": what validation says does change it."""
    from mgcma.data.records import validation_split
    records = read_manifest(corpus)
    train_idx = [i for i, r in enumerate(records) if r.group != "0"]
    _, val = validation_split(records, train_idx, 0.15, 0)
    for i in val:
        records[i].label = "sad"
    moved = write_manifest(records, tmp_path / "moved.csv")
    train(quick(corpus, tmp_path / "a", folds="0", epochs=2))
    train(quick(moved, tmp_path / "b", folds="0", epochs=2))
    ta, tb = (json.loads((tmp_path / x / "fold-0" / "metrics.json").read_text())["calibration"]["temperature"] for x in "ab")
    assert ta != pytest.approx(tb, rel=1e-3)


def test_existing_run_is_not_overwritten_without_resume(corpus, tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "precious.txt").write_text("x")
    with pytest.raises(TrainingError, match="--resume"):
        train(quick(corpus, tmp_path / "run"))


@pytest.mark.parametrize("share", [0.0, 1.5])
def test_a_training_share_outside_0_1_is_refused(corpus, tmp_path, share):
    with pytest.raises(TrainingError, match="--train-fraction"):
        train(quick(corpus, tmp_path / "run", train_fraction=share))


def test_a_nan_loss_stops_the_run_with_a_clear_message(corpus, tmp_path, monkeypatch):
    import mgcma.model
    monkeypatch.setattr(mgcma.model, "info_nce", lambda sim, labels=None, one_target=False: sim.sum() * float("nan"))
    with pytest.raises(TrainingError, match="not finite.*no broken model is saved"):
        train(quick(corpus, tmp_path / "run", folds="0"))
    assert not (tmp_path / "run" / "fold-0" / "best").exists()


def run_cli(args, env_extra=None):
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1", **(env_extra or {}))
    return subprocess.Popen([sys.executable, "-m", "mgcma.train", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


PAUSING_TRAINER = """
import runpy, sys, time
from pathlib import Path
import mgcma.training.run_files as files
marker, pause_after = Path(sys.argv[1]), int(sys.argv[2])
save = files.save_state
def save_then_pause(path, *args):
    save(path, *args)
    marker.write_text(str(int(marker.read_text() or 0) + 1) if marker.exists() else "1")
    if int(marker.read_text()) == pause_after:
        time.sleep(600)        # killed here: right after that epoch's state was written
files.save_state = save_then_pause
sys.argv = ["mgcma.train", *sys.argv[3:]]
runpy.run_module("mgcma.train", run_name="__main__", alter_sys=True)
"""


@pytest.mark.slow
@pytest.mark.parametrize("extra", [[], ["--freeze-encoders", "--augment-voice-offset", "0.5"]],
                         ids=["plain", "voice-offsets"])
def test_kill_and_resume_gives_the_same_final_weights(corpus, tmp_path, extra):
    """The trainer is killed after its second epoch's state is saved, whatever the machine's speed:
    a launcher marks each save and holds the process there (no timing window). Voice offsets are
    drawn by step, and their means measured again on resuming."""
    args = ["--data", "manifest", "--data-path", str(corpus), "--preset", "test", "--folds", "0",
            "--epochs", "4", "--batch-size", "8", "--num-workers", "0", *extra]
    assert run_cli(args + ["--out", str(tmp_path / "straight")]).wait(timeout=300) == 0
    (tmp_path / "pausing.py").write_text(PAUSING_TRAINER)
    marker = tmp_path / "saves"
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1", PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, str(tmp_path / "pausing.py"), str(marker), "2", *args,
                             "--out", str(tmp_path / "killed")], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 240
    while not (marker.exists() and marker.read_text() == "2") and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert marker.read_text() == "2", proc.communicate()[0]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "killed" / "fold-0" / "metrics.json").exists()
    assert torch.load(tmp_path / "killed" / "fold-0" / "state.pt", weights_only=True)["progress"]["epoch"] == 2
    resumed = run_cli(args + ["--out", str(tmp_path / "killed"), "--resume"])
    output = resumed.communicate(timeout=300)[0]
    assert resumed.returncode == 0 and "resuming after epoch 2" in output, output
    a, b = (torch.load(tmp_path / x / "fold-0" / "state.pt", weights_only=True) for x in ("straight", "killed"))
    assert a["progress"]["epoch"] == b["progress"]["epoch"] == 4
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    ma, mb = (json.loads((tmp_path / x / "fold-0" / "metrics.json").read_text()) for x in ("straight", "killed"))
    assert ma["UA"] == mb["UA"] and ma["best_epoch"] == mb["best_epoch"]


def test_corrupt_resume_state_is_reported(corpus, tmp_path):
    train(quick(corpus, tmp_path / "run", folds="0", epochs=1))
    (tmp_path / "run" / "fold-0" / "metrics.json").unlink()
    (tmp_path / "run" / "fold-0" / "state.pt").write_bytes(b"garbage")
    with pytest.raises(TrainingError, match="corrupt"):
        train(quick(corpus, tmp_path / "run", folds="0", epochs=1, resume=True))


@pytest.mark.slow
def test_accelerate_two_cpu_processes_train_and_write_one_checkpoint(corpus, tmp_path):
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "-m", "mgcma.train", "--data", "manifest", "--data-path", str(corpus), "--preset", "test",
           "--folds", "0", "--epochs", "2", "--batch-size", "4", "--num-workers", "0", "--out", str(tmp_path / "ddp")]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "2 process(es)" in (tmp_path / "ddp" / "train.log").read_text()
    assert len(list((tmp_path / "ddp").glob("fold-*/best/model.safetensors"))) == 1
    assert json.loads((tmp_path / "ddp" / "fold-0" / "metrics.json").read_text())["n_test"] == 16


def test_unimodal_baselines_train(corpus, tmp_path):
    for modality in ("speech", "text"):
        summary = train(quick(corpus, tmp_path / modality, folds="0", epochs=1, modality=modality))
        cfg = load_model(tmp_path / modality / "fold-0" / "best").config
        assert cfg.modality == modality and not (cfg.use_dist or cfg.use_token or cfg.use_inst)
        assert 0 <= summary["UA_mean"] <= 1


def test_a_failed_checkpoint_write_leaves_the_previous_one_intact(corpus, tmp_path, monkeypatch):
    run = tmp_path / "run"
    train(quick(corpus, run, folds="0", epochs=1))
    state = run / "fold-0" / "state.pt"
    before = state.read_bytes()
    (run / "fold-0" / "metrics.json").unlink()  # the fold is unfinished again: resume continues it

    def disk_full(obj, path, *args, **kwargs):
        Path(path).write_bytes(b"half a checkpoint")
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError, match="No space left"):
        train(quick(corpus, run, folds="0", epochs=3, resume=True))
    assert state.read_bytes() == before
    assert not [p for p in (run / "fold-0").iterdir() if p.name.endswith(".tmp")]
    assert torch.load(state, weights_only=True)["progress"]["epoch"] == 1
    load_model(run / "fold-0" / "best")


def test_an_older_checkpoint_is_calibrated_on_its_own_validation_rows(corpus, tmp_path):
    """python -m mgcma.calibrate refits what the trainer fits, from the run's saved configuration."""
    from mgcma.calibrate import main as calibrate
    train(quick(corpus, tmp_path / "run", folds="1", epochs=2))
    fold = tmp_path / "run" / "fold-1"
    fitted = json.loads((fold / "metrics.json").read_text())["calibration"]
    best = fold / "best"
    config = json.loads((best / "config.json").read_text())
    (best / "config.json").write_text(json.dumps(dict(config, temperature=1.0, not_sure_below=0.0)))
    (best / "metrics.json").write_text((fold / "metrics.json").read_text())
    assert calibrate(["--checkpoint", str(best)]) == 0
    again = json.loads((best / "config.json").read_text())
    assert again["temperature"] == pytest.approx(fitted["temperature"], rel=1e-4)
    assert again["not_sure_below"] == pytest.approx(fitted["not_sure_below"], abs=1e-6)
    (best / "metrics.json").unlink()
    assert calibrate(["--checkpoint", str(best)]) == 1


def test_one_validation_seed_holds_out_the_same_speakers_for_every_seed(corpus):
    """--val-seed: the heads of an ensemble can share validation speakers that none of them trained on."""
    from mgcma.training.protocols import train_and_validation
    records = read_manifest(corpus)
    rows = [i for i, r in enumerate(records) if r.group != "0"]

    def held(**config) -> set[str]:
        train_rows, val = train_and_validation(records, rows, TrainConfig(**config))
        assert not {records[i].speaker for i in val} & {records[i].speaker for i in train_rows}
        return {records[i].speaker for i in val}

    assert held(seed=0) != held(seed=1)   # by default each seed draws its own
    assert held(seed=0, val_seed=5) == held(seed=1, val_seed=5) == held(seed=5)


def test_leave_one_corpus_out_selects_on_two_or_more_speakers_of_every_training_corpus():
    """Four corpora of 6-10 speakers, one of them text only: each fold's validation pool holds at least
    two whole speakers of every spoken training corpus, every class of it, and nobody it tests."""
    from mgcma.data.records import Utterance
    from mgcma.training.protocols import make_folds
    labels = ["neutral", "happy", "angry", "sad"]
    records = []
    for corpus, n_speakers in (("a", 6), ("b", 9), ("c", 10), ("d", 24)):
        for s in range(n_speakers):
            split = "test" if corpus == "d" and s >= 18 else ""
            # speaker 0 of "c" has no sad clip, so some draws miss a class
            records += [Utterance(f"{corpus}{s}-{k}", "x.wav", "t", labels[k % 4], f"{corpus}{s}", corpus=corpus,
                                  split=split) for k in range(8) if not (corpus == "c" and s == 0 and k % 4 == 3)]
    records += [Utterance(f"w{k}", None, "words", labels[k % 4], "w", corpus="words") for k in range(40)]
    folds = make_folds(TrainConfig(protocol="corpora"), records)
    assert [name for name, *_ in folds] == ["a", "b", "c", "d"]
    for name, train_idx, test_idx, val_idx in folds:
        tested = {records[i].speaker for i in test_idx}
        assert {records[i].corpus for i in test_idx} == {name}
        assert not tested & {records[i].speaker for i in train_idx + val_idx}
        assert not {records[i].speaker for i in val_idx} & {records[i].speaker for i in train_idx if records[i].has_audio}
        for corpus in {"a", "b", "c", "d"} - {name}:
            mine = [records[i] for i in val_idx if records[i].corpus == corpus]
            assert len({r.speaker for r in mine}) >= 2 and {r.label for r in mine} == set(labels)
        assert all(records[i].split != "test" for i in train_idx + val_idx)


def test_the_speed_and_pitch_options_reach_the_augmented_views_and_a_malformed_range_is_refused(corpus, tmp_path):
    wide = augment_config(quick(corpus, tmp_path, augment_speed_pitch=0.6, augment_tempo="0.75-1.25", augment_pitch=4))
    assert (wide.p_speed_pitch, wide.tempo_rates, wide.semitones) == (0.6, (0.75, 1.25), 4.0)
    with pytest.raises(ValueError, match="--augment-tempo"):
        train(quick(corpus, tmp_path / "run", augment_tempo="slow"))
    assert not (tmp_path / "run").exists()
