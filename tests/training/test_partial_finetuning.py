"""Cached partial fine-tuning (mgcma/training/partial_finetuning.py): the frozen bottom of an encoder cached, its
top k layers run per step, with the same outputs and gradients as the whole encoder."""
import pytest
import torch

from mgcma.training import partial_finetuning as partial
from mgcma.checkpoint import load_model, save_model, stored_state
from mgcma.config import EMBEDDED_MINILM, preset
from mgcma.model import MGCMA
from mgcma.training.steps import FeatureCache, model_inputs
from mgcma.training.loop import frozen_caches, train
from mgcma.training.config import TrainConfig

LENGTHS = [16000, 9000, 12000]


def partly_tuned(**overrides):
    torch.manual_seed(0)
    config = dict(finetune_top_layers=1, finetune_top_text_layers=1, freeze_feature_encoder=True)
    return MGCMA(preset("test-whisper", **{**config, **overrides})).eval()


def as_cached(batch, tokenizer):
    """The batch as the trainer's collator gives it: keys for the caches, the texts."""
    texts = tokenizer.batch_decode(batch["input_ids"], skip_special_tokens=True)
    return {**batch, "speech_keys": [f"clip{i}" for i in range(len(texts))], "texts": texts}


def loss_and_grads(model, batch, caches):
    model.zero_grad()
    out = model(**model_inputs(model, batch, caches))
    out.loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad and p.grad is not None}
    return out, grads


@pytest.mark.parametrize("layers", ["last", "weighted"])
def test_cached_bottoms_give_the_same_outputs_and_gradients(make_batch, tokenizer, layers):
    model = partly_tuned(speech_layers=layers)
    batch = as_cached(make_batch(LENGTHS), tokenizer)
    batch["audio_mask"][1] = False                 # a row without speech
    batch["text_mask"][2] = False                  # and one without words
    whole, whole_grads = loss_and_grads(model, batch, {})
    caches = {"speech_bottom": FeatureCache(torch.float32), "text_bottom": FeatureCache(torch.float32)}
    for visit in range(2):                         # the second visit reads the caches
        cached, grads = loss_and_grads(model, batch, caches)
        torch.testing.assert_close(cached.logits, whole.logits, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(cached.loss, whole.loss, atol=1e-5, rtol=1e-4)
        assert grads.keys() == whole_grads.keys()
        for name in grads:
            torch.testing.assert_close(grads[name], whole_grads[name], atol=1e-5, rtol=1e-3, msg=name)
    # the top layers and the heads learn; nothing below the split does
    assert any(n.startswith("speech_encoder.blocks.1.") for n in grads)
    assert any(n.startswith("text_encoder.encoder.layer.1.") for n in grads)
    assert not any(n.startswith(("speech_encoder.blocks.0.", "text_encoder.encoder.layer.0.", "text_encoder.embeddings"))
                   for n in grads)
    assert len(caches["speech_bottom"].store) == 3 and len(caches["text_bottom"].store) == 3


@pytest.mark.parametrize("layers", ["last", "weighted"])
def test_a_batch_without_any_speech_gives_what_the_whole_encoder_gives(make_batch, tokenizer, layers):
    """Words-only rows make whole batches without audio in a corpus mixture (GoEmotions beside RAVDESS)."""
    model = partly_tuned(speech_layers=layers)
    batch = as_cached(make_batch(LENGTHS), tokenizer)
    batch["audio_mask"][:] = False
    whole, _ = loss_and_grads(model, batch, {})
    caches = {"speech_bottom": FeatureCache(torch.float32), "text_bottom": FeatureCache(torch.float32)}
    cached, _ = loss_and_grads(model, batch, caches)
    torch.testing.assert_close(cached.logits, whole.logits, atol=1e-5, rtol=1e-4)


def test_the_bottom_is_computed_once_per_clip_and_again_when_the_frozen_part_changes(make_batch, tokenizer, monkeypatch):
    model = partly_tuned()
    batch = as_cached(make_batch(LENGTHS), tokenizer)
    calls = []
    bottom = partial.speech_bottom
    monkeypatch.setattr(partial, "speech_bottom", lambda *a: calls.append(1) or bottom(*a))
    caches = {"speech_bottom": FeatureCache(torch.float32), "text_bottom": FeatureCache(torch.float32)}
    with torch.no_grad():
        first = model(**model_inputs(model, batch, caches)).logits
        model(**model_inputs(model, batch, caches))
        assert len(calls) == 1
        # training the top (a trainable weight written to) keeps the cache
        model.speech_encoder.blocks[1].mlp[0].weight.mul_(1.1)
        model(**model_inputs(model, batch, caches))
        assert len(calls) == 1
        # a frozen weight written to drops it: the bottom is computed again, and the answer is the whole encoder's
        for weight in (model.speech_encoder.blocks[0].mlp[0].weight, model.text_encoder.encoder.layer[0].output.dense.weight):
            weight.add_(torch.randn(weight.shape, generator=torch.Generator().manual_seed(1)))
        changed = model(**model_inputs(model, batch, caches)).logits
        assert len(calls) == 2
        torch.testing.assert_close(changed, model(**model_inputs(model, batch, {})).logits, atol=1e-5, rtol=1e-4)
        assert not torch.allclose(changed, first, atol=1e-3)


def test_the_frozen_bottom_runs_without_dropout_in_training():
    model = partly_tuned(dropout=0.1, text_encoder_config={**preset("test").text_encoder_config,
                                                           "hidden_dropout_prob": 0.5})
    model.train()
    assert not model.text_encoder.embeddings.training and not model.text_encoder.encoder.layer[0].training
    assert model.text_encoder.encoder.layer[1].training and model.classifier.training


def test_a_checkpoint_stores_only_the_tuned_top_of_a_pretrained_text_encoder(tmp_path, tokenizer, make_batch):
    model = partly_tuned(text_encoder=EMBEDDED_MINILM, text_encoder_config={})
    stored = [k for k in stored_state(model) if k.startswith("text_encoder.")]
    assert stored and all(k.startswith("text_encoder.encoder.layer.5.") for k in stored)
    with torch.no_grad():
        model.text_encoder.encoder.layer[5].output.dense.bias.add_(0.1)   # as if trained
    save_model(model, tmp_path / "ckpt", tokenizer)
    batch = make_batch([16000, 11000])
    with torch.no_grad():
        torch.testing.assert_close(load_model(tmp_path / "ckpt")(**batch).logits, model(**batch).logits)


def test_training_caches_the_bottoms_of_both_encoders(tiny_corpus, tmp_path):
    cfg = TrainConfig(data="manifest", data_path=str(tiny_corpus), preset="test-whisper", epochs=1, batch_size=8,
                      num_workers=0, folds="0", finetune_top_layers=1, finetune_top_text_layers=1, out=str(tmp_path))
    shared = {}
    summary = train(cfg, shared)
    assert set(shared) == {"speech_bottom", "text_bottom"} and len(shared["speech_bottom"].store) > 20
    assert summary["folds"][0]["UA"] >= 0
    model = load_model(tmp_path / "fold-0" / "best")
    assert model.config.finetune_top_text_layers == 1 and set(frozen_caches(model, cfg, None)) == {"speech_bottom",
                                                                                                   "text_bottom"}
