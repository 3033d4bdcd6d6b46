"""Inference precision of the pretrained encoders: float32, or int8 on the CPU.

"int8" is PyTorch's dynamic quantisation of the encoders' Linear layers but the MLPs'
down-projections (weights int8 per output channel, activations quantised per batch as they come):
Whisper's and MiniLM's matrix products then run mostly in int8. MGCMA's own modules (projections,
alignment, classifier) are small and stay float32. Training never sees int8; it is an inference
choice, like the ASR's int8 decoder.

On the bundled default it is not the default: what it saves and what it costs in accuracy are
measured in docs/performance.md (`int8_ua_delta` in `python -m benchmarks`).
"""
from __future__ import annotations

import warnings

import torch
import torch.nn as nn

from ..config import PRECISIONS



def check_precision(precision: str, device: str) -> None:
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}: {' or '.join(PRECISIONS)}")
    if precision == "int8" and device != "cpu":
        raise ValueError("--precision int8 runs on the CPU only (PyTorch's dynamic quantisation); "
                         "use float32 on a GPU")


def quantised_layers(encoder: nn.Module) -> set[str]:
    """The Linear layers worth int8: all but the MLPs' down-projections (4d -> d), whose inputs
    (after the GELU) have outliers that per-batch activation scales cannot hold: quantising those too
    drifts the last layer away from float32 for little time saved (docs/performance.md#int8)."""
    return {name for name, m in encoder.named_modules() if isinstance(m, nn.Linear) and m.in_features <= m.out_features}


def quantise_encoders(model: nn.Module) -> nn.Module:
    """The model with its speech and text encoders' Linear layers (quantised_layers) in dynamic
    int8, in place. For inference only: quantised layers have no gradients."""
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic
    with warnings.catch_warnings():   # PyTorch marks torch.ao.quantization deprecated in favour of torchao
        warnings.simplefilter("ignore")
        for name in ("speech_encoder", "text_encoder"):
            if hasattr(model, name):
                encoder = getattr(model, name)
                spec = dict.fromkeys(quantised_layers(encoder), per_channel_dynamic_qconfig)
                setattr(model, name, quantize_dynamic(encoder, spec))
    return model


def set_precision(model: nn.Module, precision: str, device: str) -> nn.Module:
    check_precision(precision, device)
    return quantise_encoders(model) if precision == "int8" else model


def frame_cosine(reference: torch.Tensor, other: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean cosine similarity of two encoders' frames over the real ones: (B, T, [L,] D) twice and
    (B, T) -> one value per layer (L,) or a scalar."""
    cos = torch.nn.functional.cosine_similarity(reference.float(), other.float(), dim=-1)   # (B, T[, L])
    keep = mask.to(cos.dtype)
    if cos.dim() == 3:
        keep = keep[..., None]
    return (cos * keep).sum((0, 1)) / keep.sum((0, 1))
