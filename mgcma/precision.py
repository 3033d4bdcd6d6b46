"""Inference precision of the pretrained encoders: float32, or int8 on the CPU.

"int8" is PyTorch's dynamic quantisation of the encoders' Linear layers (weights int8 per output
channel, activations quantised per batch as they come): Whisper's and MiniLM's matrix products
then run in int8. MGCMA's own modules (projections, alignment, classifier) are small and stay
float32. Training never sees int8; it is an inference choice, like the ASR's int8 decoder.

On the bundled default it is not the default: it saves 40 % of the Whisper encoder's time but
costs 1-3 UA points on corpora the model never heard (docs/performance.md, `int8_ua_delta` in
`python -m benchmarks`); float32 stays the default everywhere.
"""
from __future__ import annotations

import warnings

import torch
import torch.nn as nn

PRECISIONS = ("float32", "int8")


def check_precision(precision: str, device: str) -> None:
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}: {' or '.join(PRECISIONS)}")
    if precision == "int8" and device != "cpu":
        raise ValueError("--precision int8 runs on the CPU only (PyTorch's dynamic quantisation); "
                         "use float32 on a GPU")


def quantise_encoders(model: nn.Module) -> nn.Module:
    """The model with its speech and text encoders' Linear layers in dynamic int8, in place.
    For inference only: quantised layers have no gradients."""
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic
    with warnings.catch_warnings():   # PyTorch marks torch.ao.quantization deprecated in favour of torchao
        warnings.simplefilter("ignore")
        for name in ("speech_encoder", "text_encoder"):
            if hasattr(model, name):
                encoder = quantize_dynamic(getattr(model, name), {nn.Linear: per_channel_dynamic_qconfig})
                setattr(model, name, encoder)
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
