"""BERT's encoder in plain PyTorch, for all-MiniLM-L6-v2 and bert-base: the text encoder without transformers.

Importing transformers' BertModel costs the app 2.5-3.5 s of its start on a 2-core CPU; this file is
the same network with the same parameter names (`embeddings.word_embeddings.weight`,
`encoder.layer.0.attention.self.query.weight`, ...), so BertModel's weights and our checkpoints
load as they are. It covers the BERT that the presets use (absolute positions, an encoder only);
`is_plain_bert()` says whether a config is one, and anything else goes to transformers.

Shapes: B batch, T tokens, D width, H heads.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

MODEL_TYPE = "bert"
ACTIVATIONS = {"gelu": F.gelu, "relu": F.relu,
               "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
               "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh")}


@dataclass
class BertConfig:
    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    pad_token_id: int = 0
    model_type: str = MODEL_TYPE

    @classmethod
    def from_fields(cls, fields: dict) -> "BertConfig":
        """A Hugging Face BERT config's fields (extra ones ignored) -> ours."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in fields.items() if k in names})

    def to_diff_dict(self) -> dict:
        return dataclasses.asdict(self)


def is_plain_bert(fields: dict) -> bool:
    """Whether a Hugging Face config is a BERT this file runs exactly as transformers does."""
    return (fields.get("model_type") == MODEL_TYPE and fields.get("hidden_act", "gelu") in ACTIVATIONS
            and fields.get("position_embedding_type", "absolute") == "absolute"
            and not fields.get("is_decoder") and not fields.get("add_cross_attention"))


class Embeddings(nn.Module):
    def __init__(self, c: BertConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(c.vocab_size, c.hidden_size, padding_idx=c.pad_token_id)
        self.position_embeddings = nn.Embedding(c.max_position_embeddings, c.hidden_size)
        self.token_type_embeddings = nn.Embedding(c.type_vocab_size, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.dropout = nn.Dropout(c.hidden_dropout_prob)

    def forward(self, input_ids):
        """(B, T) token ids -> (B, T, D); every token of segment 0, as MGCMA reads one text."""
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = self.word_embeddings(input_ids) + self.position_embeddings(positions) + self.token_type_embeddings.weight[0]
        return self.dropout(self.LayerNorm(x))


class AddNorm(nn.Module):
    """BERT's "output": dense, dropout, the residual added, LayerNorm (after attention and after the MLP)."""

    def __init__(self, d_in: int, c: BertConfig):
        super().__init__()
        self.dense = nn.Linear(d_in, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.dropout = nn.Dropout(c.hidden_dropout_prob)

    def forward(self, x, residual):
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


class Attention(nn.Module):
    def __init__(self, c: BertConfig):
        super().__init__()
        d = c.hidden_size
        self.self = nn.ModuleDict(dict(query=nn.Linear(d, d), key=nn.Linear(d, d), value=nn.Linear(d, d)))
        self.output = AddNorm(d, c)
        self.n_heads, self.dropout = c.num_attention_heads, c.attention_probs_dropout_prob

    def forward(self, x, bias):
        """x: (B, T, D); bias: (B, 1, 1, T) added to the scores (a large negative number at padding)."""
        B, T, D = x.shape
        q, k, v = (self.self[n](x).view(B, T, self.n_heads, -1).transpose(1, 2)   # (B, H, T, D/H)
                   for n in ("query", "key", "value"))
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=self.dropout if self.training else 0.0)
        return self.output(a.transpose(1, 2).reshape(B, T, D), x)


class Layer(nn.Module):
    def __init__(self, c: BertConfig):
        super().__init__()
        self.attention = Attention(c)
        self.intermediate = nn.ModuleDict(dict(dense=nn.Linear(c.hidden_size, c.intermediate_size)))
        self.output = AddNorm(c.intermediate_size, c)
        self.act = ACTIVATIONS[c.hidden_act]

    def forward(self, x, bias):
        x = self.attention(x, bias)
        return self.output(self.act(self.intermediate["dense"](x)), x)


@dataclass
class BertOutput:
    last_hidden_state: torch.Tensor   # (B, T, D)


class BertTextEncoder(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.embeddings = Embeddings(config)
        self.encoder = nn.Module()
        self.encoder.layer = nn.ModuleList(Layer(config) for _ in range(config.num_hidden_layers))
        # unused by MGCMA; kept so that BertModel's weights and earlier checkpoints load without a gap
        self.pooler = nn.ModuleDict(dict(dense=nn.Linear(config.hidden_size, config.hidden_size)))

    def forward(self, input_ids, attention_mask) -> BertOutput:
        """input_ids, attention_mask: (B, T), mask 1 = a real token."""
        return BertOutput(self.run_layers(self.embeddings(input_ids), attention_mask, self.encoder.layer))

    @staticmethod
    def run_layers(hidden, attention_mask, layers):
        """(B, T, D) hidden states through `layers`. A row with no real token attends to all of
        them alike (the large negative bias is finite), so it stays finite and its gradient too."""
        bias = (1.0 - attention_mask[:, None, None, :].to(hidden.dtype)) * torch.finfo(hidden.dtype).min
        for layer in layers:
            hidden = layer(hidden, bias)
        return hidden


def load_bert(directory: str | Path) -> BertTextEncoder:
    """A BERT directory (config.json + model.safetensors or pytorch_model.bin, as transformers saves
    it or the hub holds it) -> the encoder with its weights."""
    directory = Path(directory)
    # its own random stream: the weights are overwritten, and drawing their init from the global one
    # would change the heads' initialisation under a given --seed (it did once: docs/results.md)
    with torch.random.fork_rng(devices=[]):   # built on the CPU: CUDA's generators stay untouched
        encoder = BertTextEncoder(BertConfig.from_fields(json.loads((directory / "config.json").read_text())))
    if (directory / "model.safetensors").is_file():
        from safetensors.torch import load_file
        state = load_file(directory / "model.safetensors")
    else:
        state = torch.load(directory / "pytorch_model.bin", map_location="cpu", weights_only=True)
    encoder.load_state_dict(hf_bert_state(state, encoder.state_dict().keys()), strict=False)
    return encoder


def hf_bert_state(state: dict, wanted) -> dict:
    """BertModel's or BertForPreTraining's tensors -> ours: no "bert." prefix, no pretraining heads,
    the old LayerNorm names (gamma, beta) renamed; a missing pooler (a pooler-less save) left as initialised."""
    out = {}
    for k, t in state.items():
        k = k.removeprefix("bert.").replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias")
        if k in wanted:
            out[k] = t
    missing = [k for k in wanted if k not in out and not k.startswith("pooler.")]
    if missing:
        raise ValueError(f"not a BERT checkpoint: it lacks {', '.join(missing[:4])}")
    return out
