import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mgcma.checkpoint import load_model, save_model
from mgcma.config import TEST_WHISPER, WHISPER_BASE, WHISPER_TINY_EN, preset
from mgcma.model import MGCMA
from mgcma.encoders.whisper import (WhisperAudioEncoder, WhisperEncoderConfig, embedded_whisper_dir, load_whisper_encoder,
                                    log_mel, log_mel_batch)


def speechlike(seconds, seed=0):
    """A voiced-sounding test signal: harmonics of a wandering pitch, with noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(16000 * seconds)) / 16000
    f0 = 140 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / 16000
    wave = sum(np.sin(k * phase) / k for k in range(1, 8)) * (0.5 + 0.5 * np.sin(2 * np.pi * 2 * t))
    return (0.1 * wave + 0.005 * rng.standard_normal(len(t))).astype(np.float32)


@pytest.mark.parametrize("name", [WHISPER_TINY_EN, WHISPER_BASE])
def test_matches_ctranslate2_on_the_same_30_s_input(name):
    ctranslate2 = pytest.importorskip("ctranslate2")
    from whisper.audio import pad_or_trim
    mel = log_mel(torch.from_numpy(pad_or_trim(speechlike(3.0))))[None]           # (1, 80, 3000)
    encoder = load_whisper_encoder(name).eval()
    with torch.no_grad():
        ours = encoder(mel, torch.tensor([3000])).last_hidden_state[0].numpy()
    model = ctranslate2.models.Whisper(str(embedded_whisper_dir(name)), device="cpu", compute_type="float32")
    ref = np.array(model.encode(ctranslate2.StorageView.from_array(mel.numpy()), to_cpu=True))[0]
    cos = (ours * ref).sum(-1) / np.linalg.norm(ours, axis=-1) / np.linalg.norm(ref, axis=-1)
    assert ours.shape == ref.shape == (1500, encoder.config.d_model)
    assert cos.min() >= 0.999


def test_embedded_models_have_the_published_sizes():
    tiny, base = (load_whisper_encoder(n).config for n in (WHISPER_TINY_EN, WHISPER_BASE))
    assert (tiny.n_layers, tiny.d_model, tiny.n_heads) == (4, 384, 6)
    assert (base.n_layers, base.d_model, base.n_heads) == (6, 512, 8)


@pytest.fixture
def small_encoder():
    torch.manual_seed(0)
    return WhisperAudioEncoder(WhisperEncoderConfig(**{k: v for k, v in TEST_WHISPER.items() if k != "model_type"})).eval()


def test_a_clip_padded_in_a_batch_gives_the_same_frames_as_alone(small_encoder):
    short, long = torch.from_numpy(speechlike(1.03, 1)), torch.from_numpy(speechlike(2.5, 2))  # odd mel length too
    audio = torch.zeros(2, len(long))
    audio[0, :len(short)], audio[1] = short, long
    mask = torch.zeros_like(audio, dtype=torch.bool)
    mask[0, :len(short)], mask[1] = True, True
    with torch.no_grad():
        batch = small_encoder.forward_audio(audio, mask)
        alone = small_encoder.forward_audio(short[None], torch.ones(1, len(short), dtype=torch.bool))
    n = int(batch.mask[0].sum())
    assert n == alone.last_hidden_state.shape[1] == (len(short) // 160 + 1) // 2
    assert torch.allclose(batch.last_hidden_state[0, :n], alone.last_hidden_state[0], atol=1e-5)
    assert torch.allclose(batch.last_hidden_state[0, :n].mean(0), alone.last_hidden_state[0].mean(0), atol=1e-5)


@pytest.mark.parametrize("n_mels", [80, 128])
def test_log_mel_is_whispers_own_front_end(n_mels):
    from whisper.audio import log_mel_spectrogram
    wave = torch.from_numpy(speechlike(1.0))
    mel, lengths = log_mel_batch(torch.stack([wave, wave]), torch.tensor([16000, 8000]), n_mels)
    assert torch.equal(mel[0], log_mel_spectrogram(wave, n_mels))
    assert lengths.tolist() == [100, 50] and torch.all(mel[1, :, 50:] == 0)


def test_log_mel_does_not_import_openai_whisper():
    """Its import (numba) would cost a request 0.3 s."""
    code = ("import sys, torch; from mgcma.encoders.whisper import log_mel; "
            "log_mel(torch.zeros(1600)); assert 'whisper' not in sys.modules and 'numba' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])


def test_openai_whisper_checkpoint_loads_and_matches_its_encoder(tmp_path):
    from whisper.model import ModelDimensions, Whisper
    dims = ModelDimensions(n_mels=80, n_audio_ctx=100, n_audio_state=32, n_audio_head=2, n_audio_layer=2,
                           n_vocab=100, n_text_ctx=8, n_text_state=32, n_text_head=2, n_text_layer=1)
    torch.manual_seed(1)
    reference = Whisper(dims).eval()
    torch.save({"dims": vars(dims), "model_state_dict": reference.state_dict()}, tmp_path / "small.pt")
    ours = load_whisper_encoder(str(tmp_path / "small.pt")).eval()
    mel = log_mel(torch.from_numpy(speechlike(2.0)))[None]                       # 200 frames = its n_ctx x 2
    with torch.no_grad():
        assert torch.allclose(ours(mel, torch.tensor([200])).last_hidden_state, reference.encoder(mel), atol=1e-5)


def test_transformers_whisper_directory_loads_and_matches_its_encoder(tmp_path):
    from transformers import WhisperConfig, WhisperModel
    config = WhisperConfig(d_model=32, encoder_layers=2, encoder_attention_heads=2, decoder_layers=1,
                           decoder_attention_heads=2, encoder_ffn_dim=128, decoder_ffn_dim=128, max_source_positions=100,
                           vocab_size=100, num_mel_bins=80, pad_token_id=0, bos_token_id=1, eos_token_id=2,
                           decoder_start_token_id=1)
    torch.manual_seed(2)
    reference = WhisperModel(config).eval()
    reference.save_pretrained(tmp_path / "hf")
    ours = load_whisper_encoder(str(tmp_path / "hf")).eval()
    mel = log_mel(torch.from_numpy(speechlike(2.0)))[None]
    with torch.no_grad():
        expected = reference.encoder(mel).last_hidden_state
        assert torch.allclose(ours(mel, torch.tensor([200])).last_hidden_state, expected, atol=1e-4)


def test_frozen_whisper_gets_no_gradient_and_top_k_trains_only_the_top(make_batch):
    frozen = MGCMA(preset("test-whisper", freeze_speech_encoder=True))
    assert not any(p.requires_grad for p in frozen.speech_encoder.parameters())
    model = MGCMA(preset("test-whisper", finetune_top_layers=1, freeze_feature_encoder=True))
    trainable = {n for n, p in model.speech_encoder.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith(("blocks.1.", "ln_post.")) for n in trainable)
    before = {n: p.detach().clone() for n, p in model.speech_encoder.named_parameters()}
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model(**make_batch([16000, 12000])).loss.backward()
    opt.step()
    moved = {n for n, p in model.speech_encoder.named_parameters() if not torch.equal(p, before[n])}
    assert moved == trainable


def test_weighted_layers_mix_every_hidden_state(make_batch):
    model = MGCMA(preset("test-whisper", speech_layers="weighted")).eval()
    batch = make_batch([16000, 9000])
    feats, mask = model.encode_speech(batch["audio"], batch["audio_mask"])
    assert feats.shape[2] == TEST_WHISPER["n_layers"] + 2 and mask.sum(1).tolist() == [50, 28]
    with torch.no_grad():
        direct = model(**batch)
        cached = model(speech_features=feats, speech_mask=mask, input_ids=batch["input_ids"],
                       text_mask=batch["text_mask"], labels=batch["labels"])
    assert torch.allclose(direct.logits, cached.logits, atol=1e-6)
    assert model.frame_seconds == 0.02


def test_a_layer_span_mixes_only_those_hidden_states(make_batch, tmp_path, tokenizer):
    torch.manual_seed(0)
    model = MGCMA(preset("test-whisper", speech_layers="weighted", speech_layer_span="1-2")).eval()
    assert model.speech_layer_logits.shape == (2,)
    batch = make_batch([16000, 9000])
    feats, _ = model.encode_speech(batch["audio"], batch["audio_mask"])
    with torch.no_grad():
        model.speech_layer_logits.copy_(torch.tensor([0.0, 1.0]))
        w = torch.tensor([0.0, 1.0]).softmax(0)
        expected = sum(w[k] * torch.nn.functional.layer_norm(feats[:, :, 1 + k], feats.shape[-1:]) for k in range(2))
        mixed = model.mix_layers(feats)
        feats[:, :, [0, 3]] = 1e3   # the states outside the span do not matter
        assert torch.allclose(mixed, expected, atol=1e-5) and torch.allclose(model.mix_layers(feats), mixed)
    save_model(model, tmp_path / "ckpt", tokenizer)
    assert load_model(tmp_path / "ckpt").config.speech_layer_span == "1-2"
    for span in ("0-9", "2-1"):
        with pytest.raises(ValueError, match="speech_layer_span"):
            MGCMA(preset("test-whisper", speech_layers="weighted", speech_layer_span=span))
    with pytest.raises(ValueError, match="speech_layer_span"):
        preset("test-whisper", speech_layer_span="1-2")   # a span needs the weighted mix


def test_checkpoint_round_trip_with_a_whisper_encoder(tmp_path, tokenizer, make_batch):
    torch.manual_seed(0)
    model = MGCMA(preset("test-whisper")).eval()
    save_model(model, tmp_path / "ckpt", tokenizer)
    batch = make_batch([16000, 11000])
    with torch.no_grad():
        assert torch.equal(model(**batch).logits, load_model(tmp_path / "ckpt")(**batch).logits)


def test_a_frozen_embedded_whisper_is_referenced_not_stored(tmp_path, tokenizer, make_batch):
    config = preset("test-whisper", speech_encoder=WHISPER_TINY_EN, speech_encoder_config={}, freeze_speech_encoder=True)
    model = MGCMA(config).eval()
    save_model(model, tmp_path / "ckpt", tokenizer)
    from safetensors.torch import load_file
    assert not any(k.startswith("speech_encoder.") for k in load_file(tmp_path / "ckpt" / "model.safetensors"))
    batch = make_batch([16000, 11000])
    with torch.no_grad():
        assert torch.equal(model(**batch).logits, load_model(tmp_path / "ckpt")(**batch).logits)


def test_top_k_fine_tuning_stores_only_the_fine_tuned_layers(tmp_path, tokenizer, make_batch):
    config = preset("test-whisper", speech_encoder=WHISPER_TINY_EN, speech_encoder_config={}, finetune_top_layers=1)
    model = MGCMA(config)
    with torch.no_grad():
        model.speech_encoder.blocks[3].mlp[0].weight.add_(0.01)   # as if fine-tuned
    model.eval()
    save_model(model, tmp_path / "ckpt", tokenizer)
    from safetensors.torch import load_file
    stored = {k for k in load_file(tmp_path / "ckpt" / "model.safetensors") if k.startswith("speech_encoder.")}
    assert stored and all(k.startswith(("speech_encoder.blocks.3.", "speech_encoder.ln_post.")) for k in stored)
    batch = make_batch([16000, 11000])
    with torch.no_grad():
        assert torch.equal(model(**batch).logits, load_model(tmp_path / "ckpt")(**batch).logits)

