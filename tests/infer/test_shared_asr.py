from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file

from mgcma.infer.asr import ASRError, FasterWhisperASR, word_error_rate
from mgcma.config import DEFAULT_CHECKPOINT, SYNTHETIC_CHECKPOINT
from mgcma.infer.recognizer import EmotionRecognizer
from mgcma.infer.shared_asr import SharedWhisperASR

EXAMPLES = Path(__file__).resolve().parents[2] / "app" / "examples"
EXAMPLE = EXAMPLES / "happy-happy-spk04.wav"
WORDS = "I just got the job, this is wonderful news."
OTHER, OTHER_WORDS = EXAMPLES / "ravdess-happy-actor21.flac", "Kids are talking by the door."


@pytest.fixture(scope="module")
def recognizer():
    return EmotionRecognizer(DEFAULT_CHECKPOINT, device="cpu")   # asr "auto"


def test_the_default_transcribes_with_its_own_encoder_pass(recognizer):
    assert isinstance(recognizer.asr, SharedWhisperASR)
    wave, _ = recognizer.load(EXAMPLE)
    features, mask, text = recognizer.asr.listen(wave)
    assert word_error_rate(WORDS, text) <= 0.3
    with torch.inference_mode():
        alone, alone_mask = recognizer.model.encode_speech(torch.from_numpy(wave)[None], torch.ones(1, len(wave), dtype=torch.bool))
    assert features.shape == alone.shape and bool(mask.all()) and bool(alone_mask.all())
    torch.testing.assert_close(features, alone, atol=2e-3, rtol=1e-3)


def test_clips_decoded_together_each_get_their_own_transcript_and_features(recognizer):
    """A long recording's utterances share one decoder batch; each must keep its own words (in
    order) and the exact features of its own encoder pass."""
    waves = [recognizer.load(path)[0] for path in (EXAMPLE, OTHER, OTHER)]
    together = recognizer.asr.listen_many(waves)
    assert len(together) == 3
    for wave, words, (features, mask, text) in zip(waves, (WORDS, OTHER_WORDS, OTHER_WORDS), together):
        assert word_error_rate(words, text) <= 0.3
        alone, _, _ = recognizer.asr.listen(wave)
        assert features.shape == alone.shape and bool(mask.all())
        torch.testing.assert_close(features, alone)


def test_predict_many_answers_each_clip_and_puts_an_error_where_one_cannot_be_heard(recognizer):
    from mgcma.audio import AudioError
    silent = (16000, np.zeros(16000, np.float32))
    many = recognizer.predict_many([EXAMPLE, silent, OTHER])
    assert isinstance(many[1], AudioError)
    for pred, path, words in ((many[0], EXAMPLE, WORDS), (many[2], OTHER, OTHER_WORDS)):
        assert pred.transcript_source == "asr" and word_error_rate(words, pred.transcript) <= 0.3
        alone = recognizer.predict(path, pred.transcript)   # the same words typed: the same answers
        for modality in ("both", "speech", "text"):
            assert pred.answers[modality] == pytest.approx(alone.answers[modality], abs=1e-3)
        assert pred.timings_ms["asr"] > 0


def test_a_shared_pass_answers_as_the_separate_encoder_does(recognizer):
    heard = recognizer.predict(EXAMPLE)
    assert heard.transcript_source == "asr" and heard.transcript
    typed = EmotionRecognizer(DEFAULT_CHECKPOINT, asr="none", device="cpu").predict(EXAMPLE, heard.transcript)
    for modality in ("both", "speech", "text"):
        assert heard.answers[modality] == pytest.approx(typed.answers[modality], abs=1e-3)


def test_a_model_without_a_whisper_encoder_falls_back_to_faster_whisper():
    assert isinstance(EmotionRecognizer(SYNTHETIC_CHECKPOINT, device="cpu").asr, FasterWhisperASR)
    with pytest.raises(ASRError, match="Whisper speech encoder"):
        EmotionRecognizer(SYNTHETIC_CHECKPOINT, asr="shared", device="cpu")


def test_the_transcript_alone_through_the_asr_interface(recognizer):
    wave, _ = sf.read(EXAMPLE, dtype="float32")
    assert word_error_rate(WORDS, recognizer.asr(wave)) <= 0.3


def test_an_unsure_transcript_is_decoded_again_the_standard_way(recognizer):
    from dataclasses import replace
    asr, saved = recognizer.asr, recognizer.asr.config
    asr.config = replace(saved, min_log_prob=0.0)   # every transcript counts as unsure
    try:
        before = asr.fallbacks
        wave, _ = recognizer.load(EXAMPLE)
        _, _, text = asr.listen(wave)
        assert asr.fallbacks == before + 1 and word_error_rate(WORDS, text) <= 0.3
    finally:
        asr.config = saved


def test_a_greedy_loop_is_decoded_again_with_a_beam(recognizer, monkeypatch):
    """Greedy decoding comes first; a transcript longer than anyone speaks in the clip's time is a
    loop, and the beam's transcript is the one returned (no standard decoding needed)."""
    asr, calls = recognizer.asr, []
    real = asr.decode

    def looping_greedy(frames, beam_size, max_length):
        calls.append(beam_size)
        if beam_size == 1:
            return [("again " * 60, -0.1, 60)] * len(frames)
        return real(frames, beam_size, max_length)
    monkeypatch.setattr(asr, "decode", looping_greedy)
    before = asr.fallbacks
    wave, _ = recognizer.load(EXAMPLE)
    _, _, text = asr.listen(wave)
    assert calls == [1, 5] and asr.fallbacks == before
    assert word_error_rate(WORDS, text) <= 0.3


def test_loading_the_decoder_leaves_pytorch_its_threads():
    """CTranslate2 sets the OpenMP thread count when it loads; the encoder must keep PyTorch's."""
    threads = torch.get_num_threads()
    EmotionRecognizer(DEFAULT_CHECKPOINT, device="cpu")
    assert torch.get_num_threads() == threads
    FasterWhisperASR()
    assert torch.get_num_threads() == threads


def test_a_sentence_the_decoder_repeats_at_the_end_is_kept_once():
    from mgcma.infer.shared_asr import drop_repeats
    assert drop_repeats("Dogs are sitting by the door. Dogs are sitting by the door.") == "Dogs are sitting by the door."
    assert drop_repeats("Kids are talking. Kids are talking. Kids are talking.") == "Kids are talking."
    assert drop_repeats("Oh no. No, no, no, no.") == "Oh no. No, no, no, no."    # short words repeat in speech
    assert drop_repeats("I said it. And then I said it.") == "I said it. And then I said it."


def test_the_encoding_of_silence_is_kept_on_disk_and_made_again_when_broken(recognizer, tmp_path, monkeypatch):
    from mgcma.infer.shared_asr import encode_silence, encoder_key
    monkeypatch.setenv("MGCMA_CACHE", str(tmp_path))
    asr = recognizer.asr
    monkeypatch.setattr(asr, "_silence", None)
    made = asr.silence()
    (cached,) = tmp_path.glob("silence-*.safetensors")
    assert torch.equal(made, encode_silence(asr.encoder))
    monkeypatch.setattr(asr, "_silence", None)
    assert torch.equal(asr.silence(), made)                 # read back from the file
    cached.write_bytes(b"not a tensor file")
    monkeypatch.setattr(asr, "_silence", None)
    assert torch.equal(asr.silence(), made)                 # made again, and the file mended
    assert torch.equal(load_file(cached)["silence"], made)
    key, bias = encoder_key(asr.encoder), asr.encoder.ln_post.bias
    saved = bias.detach().clone()
    with torch.no_grad():
        bias.add_(1.0)
        try:
            assert encoder_key(asr.encoder) != key          # other weights: another file
        finally:
            bias.copy_(saved)
