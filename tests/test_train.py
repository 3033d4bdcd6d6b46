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
from mgcma.data import read_manifest, write_manifest
from mgcma.train import TrainConfig, TrainingError, train

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def corpus(tiny_corpus):
    return tiny_corpus


def quick(corpus, out, **kw):
    base = dict(data="manifest", data_path=str(corpus), preset="test", epochs=2, batch_size=8,
                num_workers=0, out=str(out))
    base.update(kw)
    return TrainConfig(**base)


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
    saved = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert saved["UA_mean"] == pytest.approx(summary["UA_mean"]) and len(saved["folds"]) == 2
    table = (tmp_path / "run" / "results.md").read_text()
    assert "| mean +- std |" in table and "UA %" in table
    assert "test UA" in (tmp_path / "run" / "train.log").read_text()


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
    def without_time(history):
        return [{k: v for k, v in h.items() if k != "seconds"} for h in history]
    assert ma["best_epoch"] == mb["best_epoch"] and without_time(ma["history"]) == without_time(mb["history"])
    wa, wb = (load_file(tmp_path / x / "fold-0" / "best" / "model.safetensors") for x in "ab")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert ma["confusion_matrix"] != mb["confusion_matrix"]  # the test fold itself did change


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


def test_kill_and_resume_gives_the_same_final_weights(corpus, tmp_path):
    args = ["--data", "manifest", "--data-path", str(corpus), "--preset", "test", "--folds", "0",
            "--epochs", "4", "--batch-size", "8", "--num-workers", "0"]
    assert run_cli(args + ["--out", str(tmp_path / "straight")]).wait(timeout=300) == 0
    proc = run_cli(args + ["--out", str(tmp_path / "killed")])
    state = tmp_path / "killed" / "fold-0" / "state.pt"
    deadline = time.time() + 240
    while not state.exists() and time.time() < deadline:
        time.sleep(0.05)
    assert state.exists(), proc.communicate()[0]
    time.sleep(random.Random(1).uniform(0, 1.5))  # somewhere inside a later epoch, or while it writes
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "killed" / "fold-0" / "metrics.json").exists()
    resumed = run_cli(args + ["--out", str(tmp_path / "killed"), "--resume"])
    output = resumed.communicate(timeout=300)[0]
    assert resumed.returncode == 0, output
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
