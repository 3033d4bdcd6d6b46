import pytest
import torch

from mgcma.config import EMBEDDED_MINILM, preset
from mgcma.encoders.build import build_encoder, resolve_source
from mgcma.model import MGCMA


def make_model(seed=0, **overrides):
    torch.manual_seed(seed)
    return MGCMA(preset("test", **overrides))


def test_forward_returns_everything_with_the_documented_shapes(make_batch):
    model = make_model().eval()
    batch = make_batch([16000, 24000, 8000])
    out = model(**batch)
    B, h = 3, model.config.n_heads
    Ts, Tt = out.speech_mask.shape[1], batch["input_ids"].shape[1]
    assert out.logits.shape == (B, 4)
    assert set(out.losses) == {"ce", "dist", "inst", "kl"} and out.loss.ndim == 0
    assert out.mu_speech.shape == out.sigma_text.shape == (B, model.config.gauss_dim)
    assert out.w2.shape == out.sim.shape == (B, B)
    assert out.speech_to_text_attn.shape == (B, h, Ts, Tt)
    assert out.text_to_speech_attn.shape == (B, h, Tt, Ts)
    assert out.speech_pooled.shape == out.text_fused.shape == (B, model.config.d_model)
    # the frame mask follows the raw-audio lengths (20 ms frames)
    assert out.speech_mask.sum(1).tolist() == [49, 74, 24]
    # attention never lands on padding, and each row is a distribution
    s2t = out.speech_to_text_attn
    assert torch.all(s2t.masked_select(~out.text_mask[:, None, None, :].expand_as(s2t)) == 0)
    assert torch.allclose(s2t.sum(-1), torch.ones_like(s2t.sum(-1)), atol=1e-5)
    assert torch.all(out.sigma_speech > 0)
    assert torch.allclose(out.probs.sum(-1), torch.ones(B))


def test_padding_does_not_change_a_samples_outputs(make_batch):
    model = make_model().eval()
    text = "a short clip"
    alone = make_batch([12000], texts=[text], seed=1)
    padded = make_batch([12000, 30000], texts=[text, "a much longer sentence that forces the text to be padded too"], seed=1)
    padded["audio"][0] = 0
    padded["audio"][0, :12000] = alone["audio"][0]
    with torch.no_grad():
        a, b = model(**alone), model(**padded)
    for name in ("logits", "speech_pooled", "text_pooled", "speech_fused", "text_fused",
                 "mu_speech", "sigma_speech", "mu_text", "sigma_text"):
        assert torch.allclose(getattr(a, name)[0], getattr(b, name)[0], atol=1e-5), name
    assert torch.allclose(a.w2[0, 0], b.w2[0, 0], atol=1e-5)
    Ts, Tt = a.speech_mask.shape[1], a.text_mask.shape[1]
    assert torch.allclose(a.speech_to_text_attn[0], b.speech_to_text_attn[0, :, :Ts, :Tt], atol=1e-5)


def module_params(model):
    return {"dist": list(model.speech_dist.parameters()) + list(model.text_dist.parameters()) + [model.log_tau_dist],
            "token": list(model.token_align.parameters()),
            "inst": list(model.instance_align.parameters()),
            "classifier": list(model.classifier.parameters())}


def test_one_step_moves_all_three_alignment_modules_and_the_classifier(make_batch):
    model = make_model().train()
    before = {k: [p.detach().clone() for p in ps] for k, ps in module_params(model).items()}
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(**make_batch([16000, 20000, 12000, 8000])).loss.backward()
    opt.step()
    for name, params in module_params(model).items():
        moved = sum(not torch.equal(p, q) for p, q in zip(params, before[name]))
        assert moved == len(params), f"{name}: only {moved}/{len(params)} tensors moved"


@pytest.mark.parametrize("switch,attr,loss", [("use_dist", "speech_dist", "dist"),
                                              ("use_token", "token_align", None),
                                              ("use_inst", "instance_align", "inst")])
def test_a_switched_off_module_has_no_parameters_and_no_loss(make_batch, switch, attr, loss):
    model = make_model(**{switch: False}).train()
    assert not hasattr(model, attr)
    assert not any(name.startswith(attr) for name, _ in model.named_parameters())
    out = model(**make_batch([16000, 12000]))
    if loss:
        assert loss not in out.losses
    out.loss.backward()
    if switch == "use_token":
        assert out.speech_to_text_attn is None and torch.equal(out.speech_fused, out.speech_pooled)


def test_all_modules_off_is_plain_fusion(make_batch):
    model = make_model(use_dist=False, use_token=False, use_inst=False)
    out = model(**make_batch([16000, 12000]))
    assert set(out.losses) == {"ce"} and torch.equal(out.loss, out.losses["ce"])


@pytest.mark.parametrize("lengths", [[16000], [16000, 9000, 12000]])
def test_losses_are_finite_for_batch_of_one_and_more(make_batch, lengths):
    model = make_model().train()
    out = model(**make_batch(lengths))
    assert all(torch.isfinite(v) for v in out.losses.values())
    out.loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    if len(lengths) == 1:
        assert out.losses["dist"].item() == 0 and out.losses["inst"].item() == 0


@pytest.mark.parametrize("modality", ["speech", "text"])
def test_unimodal_baselines_build_one_encoder(make_batch, modality):
    model = make_model(modality=modality, use_dist=False, use_token=False, use_inst=False)
    other = "text" if modality == "speech" else "speech"
    assert hasattr(model, f"{modality}_encoder") and not hasattr(model, f"{other}_encoder")
    out = model(**make_batch([16000, 8000]))
    assert out.logits.shape == (2, 4) and set(out.losses) == {"ce"}


def test_unimodal_config_refuses_alignment_modules():
    with pytest.raises(ValueError, match="unimodal"):
        preset("test", modality="speech")


def test_label_positives_for_the_distribution_loss(make_batch):
    model = make_model(dist_positives="label")
    batch = make_batch([16000, 12000, 8000, 10000])
    batch["labels"] = torch.tensor([1, 1, 2, 2])
    assert torch.isfinite(model(**batch).losses["dist"])


def test_tiny_preset_loads_the_real_minilm_offline_and_encodes_text(tokenizer, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = MGCMA(preset("tiny")).eval()
    assert model.text_encoder.config.hidden_size == 384 and model.text_encoder.config.num_hidden_layers == 6
    enc = tokenizer(["I am so happy today", "I am delighted", "the train leaves at noon"],
                    padding=True, return_tensors="pt")
    hidden = model.encode_text(enc.input_ids, enc.attention_mask.bool())
    pooled = (hidden * enc.attention_mask[..., None]).sum(1) / enc.attention_mask.sum(1, keepdim=True)
    cos = torch.nn.functional.cosine_similarity
    # a real pre-trained encoder: the two happy sentences are closer than happy vs. timetable
    assert cos(pooled[0], pooled[1], dim=0) > cos(pooled[0], pooled[2], dim=0)
    assert not any(p.requires_grad for p in model.text_encoder.parameters())


def test_resolve_source_finds_the_embedded_minilm():
    path = resolve_source(EMBEDDED_MINILM)
    assert (__import__("pathlib").Path(path) / "model.safetensors").is_file()
    assert resolve_source("bert-base-uncased") == "bert-base-uncased"


def test_missing_pretrained_source_says_what_to_do(tmp_path):
    with pytest.raises(OSError, match="local directory"):
        build_encoder(str(tmp_path / "nowhere"), {}, pretrained=True)


def test_cached_encoder_features_give_the_same_outputs(make_batch):
    """The trainer's feature cache (frozen encoders run once) must not change the model's answer."""
    model = make_model().eval()
    batch = make_batch([16000, 9000])
    with torch.no_grad():
        raw = model(**batch)
        speech, speech_mask = model.encode_speech(batch["audio"], batch["audio_mask"])
        text = model.encode_text(batch["input_ids"], batch["text_mask"])
        cached = model(speech_features=speech, speech_mask=speech_mask, text_features=text,
                       text_mask=batch["text_mask"], labels=batch["labels"])
    assert torch.equal(raw.logits, cached.logits) and torch.equal(raw.w2, cached.w2)


def test_rows_with_one_modality_use_masks_and_pair_losses_skip_them(make_batch):
    torch.manual_seed(0)
    model = MGCMA(preset("test-whisper")).eval()
    batch = make_batch([16000, 12000, 9000, 14000])
    batch["audio_mask"][1] = False   # text only
    batch["text_mask"][2] = False    # speech only
    out = model(**batch)
    assert out.speech_present.tolist() == [True, False, True, True]
    assert out.text_present.tolist() == [True, True, False, True]
    assert torch.isfinite(out.loss) and torch.isfinite(out.logits).all()
    assert torch.all(out.speech_to_text_attn[2] == 0) and torch.all(out.text_to_speech_attn[1] == 0)
    # a row's answer depends only on the modality it has: other content on the missing side changes nothing
    other = dict(batch, audio=batch["audio"].clone(), input_ids=batch["input_ids"].clone())
    other["audio"][1] = torch.randn_like(other["audio"][1])
    other["input_ids"][2, 1] = 2000
    with torch.no_grad():
        assert torch.allclose(model(**other).logits[1:3], out.logits[1:3], atol=1e-6)
    # the pair losses equal those of the two complete rows alone
    pair = {k: v[[0, 3]] for k, v in batch.items()}
    alone = model(**pair)
    assert torch.allclose(out.losses["inst"], alone.losses["inst"], atol=1e-5)
    assert torch.allclose(out.losses["dist"], alone.losses["dist"], atol=1e-5)


def test_text_positives_make_repeated_sentences_no_negatives(make_batch):
    model = MGCMA(preset("test-whisper", inst_positives="text", dist_positives="text")).eval()
    batch = make_batch([16000, 12000, 9000], texts=["kids are talking", "kids are talking", "dogs are sitting"])
    keys = torch.tensor([7, 7, 9])
    with torch.no_grad():
        by_text = model(**batch, text_keys=keys)
        by_pair = model(**batch)
    # the two clips of one sentence share one target: the loss can go below the pair loss's floor
    assert by_text.losses["inst"] < by_pair.losses["inst"] and by_text.losses["dist"] < by_pair.losses["dist"]
    same = model(**batch, text_keys=torch.tensor([1, 2, 3]))   # all distinct = pair positives
    assert torch.allclose(same.losses["inst"], by_pair.losses["inst"]) and torch.allclose(same.losses["dist"], by_pair.losses["dist"])


@pytest.mark.parametrize("need_weights", [True, False])
def test_token_attention_computes_what_multihead_attention_does(need_weights):
    """AttentionBlock.attend replaces nn.MultiheadAttention's call on the module's own weights;
    a row without any real key is given one, as the block does."""
    from mgcma.model import AttentionBlock
    torch.manual_seed(0)
    block = AttentionBlock(32, 4, 0.0).eval()
    q, kv = torch.randn(3, 5, 32), torch.randn(3, 7, 32)
    mask = torch.ones(3, 7, dtype=torch.bool)
    mask[1, 4:], mask[2, 1:] = False, False
    ours, our_weights = block.attend(q, kv, mask, need_weights)
    theirs, their_weights = block.attn(q, kv, kv, key_padding_mask=~mask, need_weights=need_weights,
                                       average_attn_weights=False)
    assert torch.allclose(ours, theirs, atol=1e-5)
    if need_weights:
        assert torch.allclose(our_weights, their_weights, atol=1e-6)
        assert our_weights[1, :, :, 4:].abs().max() == 0


def test_a_corpus_adversary_learns_the_corpus_of_the_rows_with_speech_and_the_voice_learns_against_it(make_batch):
    model = make_model(lambda_corpus=0.5, adversary_corpora=["a", "b"]).train()
    batch = make_batch([16000, 12000, 8000, 9000])
    batch["audio_mask"][3] = False                                  # a row without speech
    corpus = torch.tensor([0, 1, -1, 1])                           # the third from none of the training corpora
    torch.manual_seed(1)
    out = model(**batch, corpus=corpus)
    heard = model.corpus_adversary(out.speech_pooled[:2])
    assert torch.allclose(out.losses["corpus"], torch.nn.functional.cross_entropy(heard, corpus[:2]))
    assert torch.allclose(out.loss, out.losses["ce"] + 0.5 * out.losses["dist"] + 0.5 * out.losses["inst"]
                          + 1e-3 * out.losses["kl"] + out.losses["corpus"])
    adversary_grad = torch.autograd.grad(out.losses["corpus"], model.corpus_adversary[0].weight, retain_graph=True)[0]
    voice_grad = torch.autograd.grad(out.losses["corpus"], out.speech_pooled, retain_graph=True)[0]
    plain_grad = torch.autograd.grad(torch.nn.functional.cross_entropy(heard, corpus[:2]), out.speech_pooled)[0]
    assert adversary_grad.abs().sum() > 0                           # the adversary descends its loss ...
    assert torch.allclose(voice_grad[:2], -0.5 * plain_grad[:2], atol=1e-6)   # ... the voice ascends it, by its weight
    assert voice_grad[2:].abs().sum() == 0
    assert "corpus" not in model(**batch).losses                   # no corpus given (validation, inference): no adversary


def test_an_adversary_needs_two_corpora_to_tell_apart():
    with pytest.raises(ValueError, match="two or more corpora"):
        make_model(lambda_corpus=0.5, adversary_corpora=["a"])
    assert not hasattr(make_model(), "corpus_adversary")
