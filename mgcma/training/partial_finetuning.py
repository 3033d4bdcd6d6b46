"""Cached partial fine-tuning: an encoder split where its trainable top begins.

With only the top k layers of an encoder trained, everything below them is a fixed function of
the clip (or the text). Its output, the hidden state entering the first trainable layer, is
computed once and cached like a frozen encoder's (mgcma/training/steps.py), and each step runs only the
top k layers. For Whisper's audio encoder with a weighted mix of layers the cache also holds the
frozen hidden states below the split, which the mix reads. The frozen part runs in eval mode
(no dropout) with or without the cache, so both give the same outputs and gradients.

Supported: Whisper's audio encoder (mgcma/encoders/whisper.py) and BERT text encoders
(mgcma/encoders/bert.py: MiniLM, bert-base). Other encoders fine-tune their top layers uncached.
"""
from __future__ import annotations

import torch

from ..checkpoint import weights_checksum
from ..encoders.bert import BertTextEncoder
from ..encoders.whisper import WhisperAudioEncoder
from ..model import scatter_rows


def split_supported(model, side: str) -> bool:
    """Whether `side` of the model has a trainable top whose frozen bottom can be cached."""
    encoder = getattr(model, f"{side}_encoder", None)
    if not model.config.tuned_top(side) or encoder is None:
        return False
    return isinstance(encoder, WhisperAudioEncoder if side == "speech" else BertTextEncoder)


def frozen_stamp(model, side: str) -> tuple:
    """Identifies the frozen part: where the split is and a checksum of its weights, so that a
    cache of its outputs is dropped when it changes. Recomputed only when a weight was written
    to (PyTorch counts in-place writes per tensor)."""
    encoder = getattr(model, f"{side}_encoder")
    frozen = [p for p in encoder.parameters() if not p.requires_grad]
    versions = tuple((id(p), p._version) for p in frozen)
    memo = getattr(encoder, "_frozen_stamp", None)
    if memo is None or memo[0] != versions:
        memo = (versions, (model.config.tuned_top(side), weights_checksum(frozen)))
        encoder._frozen_stamp = memo
    return memo[1]


# --------------------------------------------------------------------------------- speech
def speech_bottom(model, audio, audio_mask):
    """(B, N) audio -> (B, Ts, S, D) the hidden states below the split (S = n_layers - k + 1:
    the first block's input, then each frozen block's output; the last is the top's input), (B, Ts) mask."""
    enc, k = model.speech_encoder, model.config.finetune_top_layers
    present = audio_mask.any(-1)
    if not present.any():   # no row has audio: one masked frame each
        return audio.new_zeros(len(audio), 1, len(enc.blocks) - k + 1, enc.config.d_model), audio_mask[:, :1] & False
    with torch.no_grad():
        x, mask = enc.embed(*enc.mel(audio[present], audio_mask[present]))
        states = [x]
        for block in enc.blocks[:len(enc.blocks) - k]:
            x = block(x, mask)
            states.append(x)
    stacked = torch.stack(states, dim=2)                                   # (B', Ts, S, D)
    return scatter_rows(stacked, present), scatter_rows(mask, present)


def speech_top(model, bottom, mask):
    """speech_bottom's states -> what encode_speech gives: (B, Ts, L, D) every hidden state
    when the model mixes layers, else (B, Ts, D) the encoder's output. Rows without audio stay zeros."""
    enc, k = model.speech_encoder, model.config.finetune_top_layers
    weighted = model.config.speech_layers == "weighted"
    present = mask.any(-1)
    states, m = [bottom[present, :, i] for i in range(bottom.shape[2])], mask[present]
    x = states[-1]
    for block in enc.blocks[len(enc.blocks) - k:]:
        x = block(x, m)
        states.append(x)
    last = enc.ln_post(x)
    out = torch.stack((*states, last), dim=2) if weighted else last          # (B', Ts, L, D) | (B', Ts, D)
    return scatter_rows(out, present)


# ----------------------------------------------------------------------------------- text
def text_bottom(model, input_ids, text_mask):
    """(B, Tt) tokens -> (B, Tt, D) the hidden state entering the first trainable layer."""
    enc, k = model.text_encoder, model.config.finetune_top_text_layers
    with torch.no_grad():
        return enc.run_layers(enc.embeddings(input_ids), text_mask, enc.encoder.layer[:len(enc.encoder.layer) - k])


def text_top(model, hidden, text_mask):
    """text_bottom's hidden state -> (B, Tt, D) the encoder's last hidden state."""
    enc, k = model.text_encoder, model.config.finetune_top_text_layers
    return enc.run_layers(hidden, text_mask, enc.encoder.layer[len(enc.encoder.layer) - k:])
