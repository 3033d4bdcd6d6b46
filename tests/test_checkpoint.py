import json

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import BertConfig, BertModel, Wav2Vec2Config, Wav2Vec2Model

from mgcma.checkpoint import load_model, load_tokenizer, save_model
from mgcma.config import CheckpointError, preset
from mgcma.model import MGCMA


@pytest.fixture
def saved(tmp_path, tokenizer):
    torch.manual_seed(0)
    model = MGCMA(preset("test")).eval()
    save_model(model, tmp_path / "ckpt", tokenizer)
    return model, tmp_path / "ckpt"


def test_save_then_load_gives_bit_identical_logits(saved, make_batch):
    model, path = saved
    assert {p.name for p in path.iterdir()} == {"config.json", "model.safetensors", "tokenizer"}
    batch = make_batch([16000, 11000])
    with torch.no_grad():
        before = model(**batch)
        after = load_model(path)(**batch)
    assert torch.equal(before.logits, after.logits)
    assert torch.equal(before.w2, after.w2)


def test_saved_tokenizer_is_used(saved):
    _, path = saved
    cfg = load_model(path).config
    assert load_tokenizer(cfg, path)("hello").input_ids == load_tokenizer(cfg)("hello").input_ids


@pytest.mark.parametrize("damage,message", [
    (lambda p: (p / "config.json").unlink(), "no config.json"),
    (lambda p: (p / "model.safetensors").unlink(), "no model.safetensors"),
    (lambda p: (p / "config.json").write_text("{oops"), "not valid JSON"),
    (lambda p: (p / "model.safetensors").write_bytes(b"\x00" * 100), "corrupt"),
    (lambda p: (p / "model.safetensors").write_bytes((p / "model.safetensors").read_bytes()[:5000]), "corrupt"),
])
def test_bad_directories_are_reported(saved, damage, message):
    _, path = saved
    damage(path)
    with pytest.raises(CheckpointError, match=message):
        load_model(path)


def test_missing_directory(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_model(tmp_path / "nope")


def test_config_weights_mismatch_is_named(saved):
    _, path = saved
    cfg = json.loads((path / "config.json").read_text())
    cfg["labels"] = ["a", "b", "c"]  # 3 classes, the weights have 4
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"classifier\.3\.weight has shape \(4, 32\), config expects \(3, 32\)"):
        load_model(path)


def test_missing_and_extra_tensors_are_named(saved):
    _, path = saved
    state = load_file(path / "model.safetensors")
    state.pop("classifier.0.bias")
    state["stray.weight"] = torch.zeros(1)
    save_file(state, path / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"missing tensors: classifier\.0\.bias.*stray\.weight"):
        load_model(path)


def test_paper_preset_loads_from_local_directories(tmp_path, tokenizer, make_batch):
    """The `paper` preset's path (from_pretrained of a Wav2Vec2Model and a BertModel), with small
    random models saved locally in place of wav2vec2-base and bert-base-uncased."""
    speech_dir, text_dir = tmp_path / "wav2vec2", tmp_path / "bert"
    Wav2Vec2Model(Wav2Vec2Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                 intermediate_size=64, conv_dim=[16] * 7, num_conv_pos_embeddings=16,
                                 num_conv_pos_embedding_groups=4)).save_pretrained(speech_dir)
    BertModel(BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=1,
                         num_attention_heads=2, intermediate_size=64)).save_pretrained(text_dir)
    tokenizer.save_pretrained(text_dir)
    cfg = preset("paper", speech_encoder=str(speech_dir), text_encoder=str(text_dir))
    model = MGCMA(cfg).eval()
    reference = Wav2Vec2Model.from_pretrained(speech_dir)
    assert torch.equal(model.speech_encoder.encoder.layers[0].attention.q_proj.weight,
                       reference.encoder.layers[0].attention.q_proj.weight)
    # group-norm feature encoder (as in wav2vec2-base) is frozen by default
    assert not any(p.requires_grad for p in model.speech_encoder.feature_extractor.parameters())
    batch = make_batch([16000, 8000])
    out = model(**batch)
    assert out.logits.shape == (2, 4)
    save_model(model, tmp_path / "ckpt", load_tokenizer(cfg))
    # reloading needs neither source: the architecture is in config.json, the weights in safetensors
    speech_dir.rename(tmp_path / "gone1")
    text_dir.rename(tmp_path / "gone2")
    with torch.no_grad():
        assert torch.equal(load_model(tmp_path / "ckpt")(**batch).logits, model(**batch).logits)


def test_frozen_embedded_encoder_is_referenced_not_stored(tmp_path, make_batch):
    torch.manual_seed(0)
    cfg = preset("test", text_encoder="embedded:all-MiniLM-L6-v2", text_encoder_config={},
                 freeze_text_encoder=True)
    model = MGCMA(cfg).eval()
    save_model(model, tmp_path / "ckpt")
    keys = load_file(tmp_path / "ckpt" / "model.safetensors").keys()
    assert not any(k.startswith("text_encoder.") for k in keys)
    assert (tmp_path / "ckpt" / "model.safetensors").stat().st_size < 10_000_000
    batch = make_batch([16000])
    with torch.no_grad():
        assert torch.equal(load_model(tmp_path / "ckpt")(**batch).logits, model(**batch).logits)
