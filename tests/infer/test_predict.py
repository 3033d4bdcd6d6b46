import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from mgcma.infer.asr import ASRError, load_asr, word_error_rate
from mgcma.infer.recognizer import EmotionRecognizer

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "app" / "examples" / "happy-happy-spk04.wav"


@pytest.fixture(scope="module")
def recognizer(test_checkpoint):
    return EmotionRecognizer(test_checkpoint, asr="none", device="cpu")


def test_prediction_has_label_probabilities_and_w2(recognizer):
    pred = recognizer.predict(EXAMPLE, "I just got the job")
    assert pred.label in recognizer.config.labels
    assert sum(pred.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    assert pred.label == max(pred.probabilities, key=pred.probabilities.get)
    assert pred.w2 > 0 and pred.sim < 0 and pred.transcript_source == "user"
    assert set(pred.to_json()) >= {"label", "probabilities", "transcript", "w2"}
    json.dumps(pred.to_json())


def test_an_unsure_answer_says_so_with_its_top_two(test_checkpoint, tmp_path, tokenizer):
    from mgcma.checkpoint import load_model, save_model
    model = load_model(test_checkpoint)
    model.config.temperature, model.config.not_sure_below = 2.0, 0.9
    save_model(model, tmp_path / "unsure", tokenizer)
    plain = EmotionRecognizer(test_checkpoint, asr="none", device="cpu").predict(EXAMPLE, "I just got the job")
    unsure = EmotionRecognizer(tmp_path / "unsure", asr="none", device="cpu").predict(EXAMPLE, "I just got the job")
    logits = unsure.output.logits[0]
    assert unsure.probabilities == pytest.approx(dict(zip(unsure.probabilities, (logits / 2.0).softmax(-1).tolist())), abs=1e-6)
    assert unsure.label == plain.label                                  # a temperature changes no label
    assert max(unsure.probabilities.values()) < max(plain.probabilities.values())
    assert unsure.not_sure and not plain.not_sure
    answer = unsure.to_json()
    assert answer["not_sure"] is True and [name for name, _ in answer["top_two"]] == [n for n, _ in unsure.top_two]
    assert answer["top_two"][0][0] == unsure.label and answer["top_two"][0][1] >= answer["top_two"][1][1]


def test_gradio_style_input_matches_the_file(recognizer):
    wave, sr = sf.read(EXAMPLE, dtype="int16")
    a = recognizer.predict(EXAMPLE, "words")
    b = recognizer.predict((sr, np.stack([wave, wave], axis=1)), "words")  # int16 stereo as gr.Audio gives it
    assert a.label == b.label and a.probabilities == pytest.approx(b.probabilities, abs=1e-4)


def test_missing_text_without_asr_answers_from_the_voice_and_says_so(recognizer):
    pred = recognizer.predict(EXAMPLE, "  ")
    assert pred.transcript == "" and pred.transcript_source == "none" and pred.w2 is None
    assert any("voice alone" in note for note in pred.warnings)
    with_words = recognizer.predict(EXAMPLE, "I just got the job")
    assert pred.probabilities == pytest.approx(with_words.answers["speech"], abs=1e-5)


@pytest.mark.parametrize("words", [100, 2000])
def test_a_transcript_past_the_token_limit_is_cut_with_a_note_saying_where(recognizer, words):
    text = " ".join(f"w{i}" for i in range(words))
    pred = recognizer.predict(EXAMPLE, text)
    limit = recognizer.config.max_text_tokens
    assert len(pred.words) == limit                                 # [CLS], the tokens read, [SEP]
    read = max(end for _, end in pred.offsets)
    assert 0 < read < len(text) and text[:read].split()[-1].startswith("w")
    [note] = [w for w in pred.warnings if "longer than" in w]
    assert f"{limit} tokens" in note and text[read - 10:read] in note and f"last {len(text) - read} characters" in note
    short = recognizer.predict(EXAMPLE, "a short sentence")
    assert not any("longer than" in w for w in short.warnings)


def test_bundled_whisper_transcribes_a_synthetic_clip():
    asr = load_asr("faster-whisper")
    wave, _ = sf.read(EXAMPLE, dtype="float32")
    assert word_error_rate("I just got the job, this is wonderful news.", asr(wave)) <= 0.3


def test_word_error_rate_ignores_case_and_punctuation():
    assert word_error_rate("I just got the job.", "i just got the Job") == 0.0
    assert word_error_rate("a b c d", "a x c") == 0.5
    assert word_error_rate("a b", "") == 1.0


def test_openai_whisper_loads_a_local_checkpoint(tmp_path):
    import whisper
    from whisper.model import ModelDimensions, Whisper
    dims = ModelDimensions(n_mels=80, n_audio_ctx=1500, n_audio_state=16, n_audio_head=2, n_audio_layer=1,
                           n_vocab=51864, n_text_ctx=448, n_text_state=16, n_text_head=2, n_text_layer=1)
    torch.manual_seed(0)
    torch.save({"dims": asdict(dims), "model_state_dict": Whisper(dims).state_dict()}, tmp_path / "tiny-random.pt")
    asr = load_asr(f"openai-whisper:{tmp_path / 'tiny-random.pt'}")
    assert isinstance(asr.model, whisper.model.Whisper) and asr.model.dims.n_audio_state == 16
    with pytest.raises(ASRError, match="local .pt file"):
        load_asr(f"openai-whisper:{tmp_path / 'missing.pt'}")


def test_unknown_asr_spec():
    with pytest.raises(ASRError, match="unknown ASR"):
        load_asr("kaldi")


def run_predict(*args):
    return subprocess.run([sys.executable, "-m", "mgcma.predict", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_cli_prints_json(test_checkpoint):
    done = run_predict("--checkpoint", test_checkpoint, "--audio", EXAMPLE, "--text", "hello there", "--asr", "none", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert set(result) >= {"label", "probabilities", "transcript", "w2"} and result["transcript"] == "hello there"


@pytest.mark.parametrize("make,message", [
    (lambda p: p.write_bytes(b""), "empty"),
    (lambda p: p.write_bytes(b"not audio" * 50), "not a readable audio file"),
    (lambda p: sf.write(p, np.zeros(16000, np.float32), 16000), "silent"),
])
@pytest.mark.slow
def test_cli_bad_input_exits_non_zero_with_one_line(test_checkpoint, tmp_path, make, message):
    path = tmp_path / "bad.wav"
    make(path)
    done = run_predict("--checkpoint", test_checkpoint, "--audio", path, "--text", "x", "--asr", "none", "--json")
    assert done.returncode == 1 and done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1 and message in done.stderr


def test_cli_missing_checkpoint(tmp_path):
    done = run_predict("--checkpoint", tmp_path / "nope", "--audio", EXAMPLE, "--text", "x", "--asr", "none")
    assert done.returncode == 1 and "does not exist" in done.stderr


def test_the_voice_alone_answers_as_the_voice_beside_hidden_words():
    """Without words the text encoder is skipped; the answer is the one given when words are there
    but hidden from it (the "speech" answer)."""
    from mgcma.config import DEFAULT_CHECKPOINT
    from mgcma.infer.recognizer import EmotionRecognizer
    recognizer = EmotionRecognizer(DEFAULT_CHECKPOINT, asr="none", device="cpu")
    clip = sorted((Path(__file__).resolve().parents[2] / "app" / "examples").glob("*.flac"))[0]
    alone = recognizer.predict(clip, None, use_asr=False)
    beside = recognizer.predict(clip, "Kids are talking by the door.")
    assert alone.transcript_source == "none" and alone.words == []
    assert alone.probabilities == pytest.approx(beside.answers["speech"], abs=1e-5)
