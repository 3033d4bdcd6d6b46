"""Our BERT (mgcma/encoders/bert.py) against transformers' BertModel, and what it saves the app."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import BertConfig as HFBertConfig, BertForPreTraining, BertModel

from mgcma.encoders.bert import BertConfig, BertTextEncoder, is_plain_bert, load_bert
from mgcma.config import EMBEDDED_MINILM, preset
from mgcma.encoders.build import resolve_source
from mgcma.model import MGCMA

ROOT = Path(__file__).resolve().parents[2]
TEXTS = ["Kids are talking by the door.", "I can't BELIEVE it!!! Café, déjà vu [SEP] and so on " * 6, "ok", ""]


def hidden_states(encoder, enc, mask):
    with torch.no_grad():
        return encoder(input_ids=enc["input_ids"], attention_mask=mask).last_hidden_state


def test_minilm_gives_transformers_hidden_states(tokenizer):
    path = resolve_source(EMBEDDED_MINILM)
    ours, theirs = load_bert(path).eval(), BertModel.from_pretrained(path).eval()
    enc = tokenizer(TEXTS, padding=True, truncation=True, max_length=64, return_tensors="pt")
    mask = enc["attention_mask"]
    real = mask.bool()
    assert torch.allclose(hidden_states(ours, enc, mask)[real], hidden_states(theirs, enc, mask)[real], atol=1e-4)


def test_a_row_without_tokens_stays_finite_and_so_do_gradients(tokenizer):
    """MGCMA masks out a row that has no text entirely; its masked states must not be NaN, or the
    gradient of the whole batch is."""
    torch.manual_seed(0)
    encoder = BertTextEncoder(BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64))
    enc = tokenizer(TEXTS[:2], padding=True, return_tensors="pt")
    mask = enc["attention_mask"].clone()
    mask[1] = 0
    out = encoder(input_ids=enc["input_ids"], attention_mask=mask).last_hidden_state
    (out * mask[..., None]).sum().backward()
    assert torch.isfinite(out).all()
    assert all(torch.isfinite(p.grad).all() for p in encoder.parameters() if p.grad is not None)


@pytest.mark.parametrize("model_class", [BertModel, BertForPreTraining])
def test_loads_what_transformers_saves(tmp_path, model_class, tokenizer):
    """A BertModel's save, and a pretraining save (bert-base-uncased's form: "bert." prefix, MLM heads)."""
    torch.manual_seed(0)
    config = HFBertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                          num_attention_heads=2, intermediate_size=64)
    saved = model_class(config).eval()
    saved.save_pretrained(tmp_path)
    reference = saved if model_class is BertModel else saved.bert
    enc = tokenizer(TEXTS[:3], padding=True, return_tensors="pt")
    mask = enc["attention_mask"]
    assert torch.allclose(hidden_states(load_bert(tmp_path).eval(), enc, mask)[mask.bool()],
                          hidden_states(reference, enc, mask)[mask.bool()], atol=1e-5)


def test_loading_leaves_the_seeded_stream_to_the_heads():
    """A pretrained encoder's weights are read, not drawn: the heads built after it start as the
    seed alone says, however the encoder is built (a training run's outcome hangs on that draw)."""
    torch.manual_seed(0)
    expected = torch.rand(4)
    torch.manual_seed(0)
    load_bert(resolve_source(EMBEDDED_MINILM))
    assert torch.equal(torch.rand(4), expected)


def test_other_text_encoders_still_come_from_transformers():
    fields = dict(model_type="bert", vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                  intermediate_size=64, max_position_embeddings=128)
    assert is_plain_bert(fields)
    relative = dict(fields, position_embedding_type="relative_key")
    assert not is_plain_bert(relative)
    assert isinstance(MGCMA(preset("test", text_encoder_config=fields)).text_encoder, BertTextEncoder)
    model = MGCMA(preset("test", text_encoder_config=relative))
    assert isinstance(model.text_encoder, BertModel)
    assert model.text_encoder.config.position_embedding_type == "relative_key"


def test_the_bundled_model_answers_without_importing_transformers():
    """transformers costs the app 2.5-3.5 s of its start; the default model's path needs none of it."""
    code = ("import sys; from mgcma.infer.recognizer import EmotionRecognizer; "
            "r = EmotionRecognizer('checkpoints/default', 'none'); "
            "p = r.predict('app/examples/ravdess-happy-actor21.flac', 'Kids are talking by the door.'); "
            "assert 'transformers' not in sys.modules, 'transformers was imported'; print(p.label)")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip().splitlines()[-1] == "happy"
