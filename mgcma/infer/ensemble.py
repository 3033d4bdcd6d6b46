"""Several heads answering together over one pass of the frozen encoders.

One recipe trained with several seeds gives heads that err differently; the mean of their
calibrated probabilities is steadier than any one of them, and costs little, since the encoders
they read (Whisper, MiniLM) are frozen and shared: the recogniser runs them once and each small head
on their outputs (the cost: docs/performance.md). The checkpoint's files: mgcma/infer/members.py.
"""
from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import torch
from torch.func import functional_call, vmap

from ..checkpoint import encoder_fingerprints, load_model
from ..config import CheckpointError, ModelConfig, load_config
from ..model import MGCMA, MGCMAOutput
from .members import Together, check_shareable, mean_threshold


def load_members(directories: list[Path], first: MGCMA, first_directory: Path, device: str) -> list[MGCMA]:
    """Each directory's head over `first`'s encoder modules (loaded once, whatever their precision)."""
    heads, trained_with = [], encoder_fingerprints(first_directory)
    for directory in directories:
        check_shareable(first.config, load_config(directory), directory)
        heads.append(load_model(directory, device, shared_encoders=first))
        if encoder_fingerprints(directory) != trained_with:
            raise CheckpointError(f"{directory} was trained on other frozen encoder weights than {first_directory}'s "
                                  "(their fingerprints differ): it cannot share them")
    return heads


def share_encoders(heads: list[MGCMA]) -> list[MGCMA]:
    """Point every head at the first's encoder modules, once those have been replaced (quantised to
    int8 by mgcma/encoders/precision.py, which swaps the modules of the model it is given)."""
    for head in heads[1:]:
        for name in ("speech_encoder", "text_encoder"):
            if hasattr(heads[0], name):
                setattr(head, name, getattr(heads[0], name))
    return heads


# what decides the shape of a head's forward besides its parameters: heads equal in these and in
# their parameters' names and shapes can run as one (StackedHeads)
FORWARD_FIELDS = ("d_model", "n_heads", "gauss_dim", "modality", "use_dist", "use_token", "use_inst",
                  "logvar_min", "logvar_max", "speech_layers", "speech_layer_span")
ENCODERS = ("speech_encoder.", "text_encoder.")


def own_tensors(head: MGCMA) -> dict:
    """A head's parameters and buffers by name, without the encoders it shares with the others."""
    return {k: v for k, v in (*head.named_parameters(), *head.named_buffers()) if not k.startswith(ENCODERS)}


class StackedHeads:
    """Heads of one architecture run as one: each head's own parameters (not the shared encoders')
    stacked along a new first axis and the first head's forward vectorised over it (torch.func.vmap).
    The same outputs as calling each head (float rounding apart), in fewer and larger operations
    (the time saved: docs/performance.md)."""

    def __init__(self, heads: list[MGCMA]):
        self.first, self.temperatures = heads[0], [h.config.temperature for h in heads]
        own = [own_tensors(h) for h in heads]
        self.weights = {k: torch.stack([o[k].detach() for o in own]) for k in own[0]}   # each (H, *shape)
        # vmap runs scaled_dot_product_attention head by head and warns on every call; filtered once
        # here, not around each call: catch_warnings swaps the process's filters, unsafe in the app's threads
        warnings.filterwarnings("ignore", message="There is a performance drop because we have not yet implemented "
                                "the batching rule for aten::_scaled_dot_product")

    @staticmethod
    def fits(heads: list[MGCMA]) -> bool:
        """Two or more heads whose forwards differ in their parameters' values only."""
        def shape(h):
            return [getattr(h.config, f) for f in FORWARD_FIELDS], [(k, tuple(v.shape)) for k, v in own_tensors(h).items()]
        return len(heads) > 1 and all(shape(h) == shape(heads[0]) for h in heads[1:])

    def __call__(self, **inputs) -> list[MGCMAOutput]:
        """The keyword inputs of MGCMA.forward (encoder outputs, no labels) -> each head's output."""

        def one(weights):
            out = functional_call(self.first, weights, kwargs=inputs, strict=False)
            return {k: v for k, v in vars(out).items() if hasattr(v, "shape")}   # the tensors: vmap stacks them
        stacked = vmap(one)(self.weights)                                        # each (H, B, ...)
        return [MGCMAOutput(**{k: v[i] for k, v in stacked.items()}, temperature=t) for i, t in enumerate(self.temperatures)]


def answers_together(heads: list[MGCMA], stats_heads: list) -> bool:
    """Whether the answer is the members' mix (their calibrated probabilities) rather than one head's logits."""
    return len(heads) > 1 or bool(stats_heads)


def together_config(heads: list[MGCMA], stats_heads: list, together: Together | None = None) -> ModelConfig:
    """The first head's config, with the calibration of the answer together: `together`, fitted for
    it (members.read_together), or temperature 1 (the members' probabilities are each calibrated
    already) and the mean of the heads' own thresholds. The answers that read one side only may have
    temperatures of their own (Together.temperatures, applied by the recogniser)."""
    first = heads[0].config
    if not answers_together(heads, stats_heads):
        return first
    together = together or Together(1.0, mean_threshold([h.config for h in heads]))
    return dataclasses.replace(first, temperature=together.temperature, not_sure_below=together.not_sure_below)


def answer_together(outputs: list[MGCMAOutput]) -> MGCMAOutput:
    """The heads' outputs for one input -> the first's, its logits the log of the heads' mean
    calibrated probabilities (so that `probs`, at temperature 1, is that mean)."""
    if len(outputs) == 1:
        return outputs[0]
    mean = torch.stack([o.probs for o in outputs]).mean(0)                      # (B, C)
    return dataclasses.replace(outputs[0], logits=mean.clamp_min(torch.finfo(mean.dtype).tiny).log(), temperature=1.0)
