"""The ONNX export (mgcma/infer/onnx_export.py) and its torch-free backend (mgcma/infer/onnx_recognizer.py)."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mgcma.checkpoint import load_tokenizer, save_model
from mgcma.config import DEFAULT_CHECKPOINT, CheckpointError, preset
from mgcma.infer.onnx_export import compare_with_torch, export
from mgcma.infer.onnx_recognizer import OnnxRecognizer, log_mel
from mgcma.infer.recognizer import EmotionRecognizer
from mgcma.model import MGCMA

ROOT = Path(__file__).resolve().parents[2]
REAL = sorted((ROOT / "app" / "examples").glob("*.flac"))    # RAVDESS actors 20-23, committed with the app


@pytest.fixture(scope="module")
def small_export(tmp_path_factory):
    """A small random Whisper + BERT model, saved and exported."""
    torch.manual_seed(0)
    config = preset("test-whisper", speech_layers="weighted")
    checkpoint = tmp_path_factory.mktemp("small") / "model"
    save_model(MGCMA(config).eval(), checkpoint, load_tokenizer(config))
    return checkpoint, export(checkpoint, checkpoint.parent / "onnx")


def test_numpy_log_mel_is_whispers():
    from whisper.audio import log_mel_spectrogram, mel_filters
    wave = np.random.default_rng(0).normal(0, 0.1, 16000 * 3 + 123).astype(np.float32)
    ours = log_mel(wave, mel_filters("cpu", 80).numpy())
    theirs = log_mel_spectrogram(torch.from_numpy(wave), 80).numpy()
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, atol=1e-4)


@pytest.mark.slow
def test_small_model_round_trip_at_lengths_it_was_not_traced_with(small_export):
    checkpoint, onnx = small_export
    clips = [np.random.default_rng(s).normal(0, 0.1, n).astype(np.float32) for s, n in ((0, 8000), (1, 51234))]
    words = "a sentence that is longer than the eight tokens the export traced with, by some way"
    # each clip alone and with the words, every answer (the voice alone and the words alone hide a side)
    assert compare_with_torch(checkpoint, onnx, [(16000, c) for c in clips], text=words) < 1e-4


@pytest.mark.slow
def test_an_ensembles_heads_are_exported_and_answer_together(tmp_path):
    """Two heads over one random encoder pair, packed (mgcma/infer/ensemble.py) and exported: the ONNX
    answers are the PyTorch ensemble's (which is the mean of its heads: tests/infer/test_ensemble.py)."""
    from mgcma.ensemble import main as pack
    from mgcma.infer.members import Together, write_together
    config = preset("test-whisper", speech_layers="weighted", freeze_speech_encoder=True, freeze_text_encoder=True)
    torch.manual_seed(0)
    first = MGCMA(config).eval()
    save_model(first, tmp_path / "a", load_tokenizer(config))
    torch.manual_seed(1)
    config.temperature = 2.0
    save_model(MGCMA(config, shared_encoders=first).eval(), tmp_path / "b", load_tokenizer(config))
    assert pack(["--members", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "both")]) == 0
    # temperatures of the answer together, as --calibrate fits them: the words alone and the voice alone their own
    write_together(tmp_path / "both", Together(1.7, 0.4, {"text": 0.6, "speech": 1.2}), {})
    onnx = export(tmp_path / "both", tmp_path / "onnx")
    assert (onnx / "members" / "1" / "head.onnx").is_file() and (onnx / "ensemble.json").is_file()
    clip = (16000, np.random.default_rng(2).normal(0, 0.1, 24000).astype(np.float32))
    assert compare_with_torch(tmp_path / "both", onnx, [clip], text="two heads are better than one") < 1e-4
    first_alone = EmotionRecognizer(tmp_path / "a", asr="none", device="cpu").predict(clip, "x", use_asr=False)
    assert first_alone.probabilities != pytest.approx(
        OnnxRecognizer(onnx, asr="none").predict(clip, "x")["probabilities"], abs=1e-3)   # the second head counts


def test_export_refuses_what_it_cannot_run(tmp_path, test_checkpoint):
    with pytest.raises(CheckpointError, match="Whisper speech encoder"):
        export(test_checkpoint, tmp_path / "onnx")     # a wav2vec2 speech encoder


def test_a_missing_export_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m mgcma.export"):
        OnnxRecognizer(tmp_path, asr="none")


@pytest.fixture(scope="module")
def default_export(tmp_path_factory):
    return export(DEFAULT_CHECKPOINT, tmp_path_factory.mktemp("default-onnx"))


@pytest.mark.slow
def test_default_onnx_equals_pytorch_on_real_clips(default_export):
    assert len(REAL) >= 4
    assert compare_with_torch(DEFAULT_CHECKPOINT, default_export, REAL) < 1e-3


@pytest.mark.slow
def test_onnx_backend_runs_without_torch(default_export):
    """The backend and its CLI import neither torch nor transformers."""
    code = ("import sys, json; sys.modules['torch'] = None; sys.modules['transformers'] = None\n"
            "from mgcma.onnx_backend import main\n"
            f"sys.exit(main(['--onnx', {str(default_export)!r}, '--audio', {str(REAL[0])!r}, '--text', 'hello there', "
            "'--asr', 'none', '--json']))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout)
    assert result["transcript"] == "hello there" and sum(result["probabilities"].values()) == pytest.approx(1, abs=1e-4)


@pytest.mark.slow
def test_predict_cli_runs_the_export_and_refuses_what_it_cannot(default_export, capsys):
    from mgcma.predict import main
    args = ["--backend", "onnx", "--checkpoint", str(default_export), "--audio", str(REAL[0]), "--asr", "none"]
    assert main(args + ["--text", "Kids are talking by the door.", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["transcript_source"] == "user"
    assert main(args + ["--segments"]) == 1
    assert "--backend onnx answers one clip" in capsys.readouterr().err
