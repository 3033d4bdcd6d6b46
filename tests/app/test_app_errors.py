"""The app's error paths, on a small random model: what the user sees, and that the server lives on."""
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
import soundfile as sf
import torch
from gradio_client import Client, handle_file

from mgcma.app.recording import segment_name
from mgcma.app.ui import CLIP_OUTPUTS, App
from mgcma.infer.asr import word_error_rate
from mgcma.checkpoint import save_model
from mgcma.config import preset
from mgcma.model import MGCMA
from mgcma.infer.recognizer import EmotionRecognizer, InputError
from mgcma.audio import AudioError

ROOT = Path(__file__).resolve().parents[2]
HAPPY = ROOT / "app" / "examples" / "happy-happy-spk04.wav"


class BrokenASR:
    """A recogniser that fails the way a real one can (a crash inside its decoder)."""
    def __call__(self, wave):
        raise RuntimeError("decoder exploded")


@pytest.fixture(scope="module")
def broken_app(test_checkpoint):
    recognizer = EmotionRecognizer(test_checkpoint, asr="none", device="cpu")
    recognizer.asr = BrokenASR()
    app = App(recognizer)
    demo = app.build().queue()
    _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=None, quiet=True)
    yield app, Client(url, verbose=False)
    demo.close()


@pytest.mark.slow
def test_a_recogniser_that_raises_gives_a_message_and_the_server_lives(broken_app):
    _, client = broken_app
    for endpoint in ("/transcribe", "/predict"):
        args = (handle_file(str(HAPPY)),) if endpoint == "/transcribe" else (handle_file(str(HAPPY)), "")
        with pytest.raises(Exception, match="speech recogniser failed.*type the transcript"):
            client.predict(*args, api_name=endpoint)
    result = client.predict(handle_file(str(HAPPY)), "typed words instead", api_name="/predict")
    assert result["transcript"] == "typed words instead" and result["transcript_source"] == "user"


@pytest.mark.slow
def test_no_audio_at_all_is_explained(broken_app):
    app, _ = broken_app
    with pytest.raises(gr.Error, match="no audio"):
        next(app.analyse(None, "some words"))
    with pytest.raises(gr.Error, match="no recording"):
        app.long.analyse(None)


@pytest.mark.slow
def test_transcribe_endpoint_writes_the_words(running_app):
    text = Client(running_app[1], verbose=False).predict(handle_file(str(HAPPY)), api_name="/transcribe")
    assert word_error_rate("I just got the job, this is wonderful news.", text) <= 0.3


def test_a_text_only_model_without_text_says_it_needs_words(tmp_path, tokenizer):
    torch.manual_seed(0)
    save_model(MGCMA(preset("test", modality="text", use_dist=False, use_token=False, use_inst=False)).eval(),
               tmp_path / "text-only", tokenizer)
    recognizer = EmotionRecognizer(tmp_path / "text-only", asr="none", device="cpu")
    with pytest.raises(InputError, match="no transcript was given and no ASR"):
        recognizer.predict(HAPPY, "")
    with pytest.raises(InputError, match="reads words only, and there are none: type the transcript"):
        recognizer.predict(HAPPY, "   ", use_asr=False)
    assert recognizer.predict(HAPPY, "so happy today").label in recognizer.config.labels
    with pytest.raises(AudioError, match="no audio"):
        recognizer.predict(None, "words")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU: --device cuda is valid here")
def test_device_cuda_without_a_gpu_is_refused_clearly(test_checkpoint):
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-m", "mgcma.predict", "--checkpoint", str(test_checkpoint), "--audio",
                           str(HAPPY), "--text", "x", "--asr", "none", "--device", "cuda"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and "no CUDA GPU" in done.stderr and len(done.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_choosing_a_segment_of_the_timeline_explains_that_utterance(broken_app, tmp_path):
    app, _ = broken_app
    clips = [sf.read(p, dtype="float32")[0] for p in sorted((ROOT / "app" / "examples").glob("*.wav"))[:3]]
    gap = np.zeros(24000, np.float32)
    sf.write(tmp_path / "long.wav", np.concatenate([gap, clips[0], gap, clips[1], gap, clips[2], gap]), 16000)
    recording = dict(path=str(tmp_path / "long.wav"), segments=[
        dict(start=1.5 + 0.0, end=1.5 + len(clips[0]) / 16000, label="happy", probabilities={}, text="first words"),
        dict(start=3.0 + len(clips[0]) / 16000, end=3.0 + (len(clips[0]) + len(clips[1])) / 16000, label="sad",
             probabilities={}, text="second words")])
    *_, (probabilities, transcript, *_) = app.long.explain(segment_name(1, recording["segments"][1]), recording)
    assert transcript == "second words" and set(probabilities) == set(app.recognizer.config.labels)
    expected = app.recognizer.predict((16000, clips[1][None].T), "second words").probabilities
    assert probabilities == pytest.approx(expected, abs=0.02)   # the second utterance, not the first or the whole file
    [unchanged] = app.long.explain(None, recording)
    assert len(unchanged) == CLIP_OUTPUTS and all(u == gr.update() for u in unchanged)
