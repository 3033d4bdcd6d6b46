"""Several heads answering together over one pass of the frozen encoders.

One recipe trained with several seeds gives heads that err differently; the mean of their
calibrated probabilities is steadier than any one of them, and costs little, since the encoders
they read (Whisper, MiniLM) are frozen and shared: the recogniser runs them once and each head
(4 MB, a few ms) on their outputs. An ensemble checkpoint is its first head's checkpoint, whole
(so that every tool that reads one model still can: the attention and Gaussian views are that
head's), with the others in `members/` and `ensemble.json` naming them:

  python -m mgcma.ensemble --members RUN_A/fold-0/best RUN_B/fold-0/best ... --out DIR

Its "not sure" threshold is the mean of the heads' own, each fitted on its own validation speakers
(each seed draws its own unless trained with one `--val-seed`, so no speakers may be left that none
of them trained on).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from .config import ModelConfig
from .stats_head import is_stats_head

if TYPE_CHECKING:   # PyTorch is imported where it is used: the ONNX backend reads ensembles without it
    from .model import MGCMA, MGCMAOutput

ENSEMBLE_FILE, MEMBERS_DIR = "ensemble.json", "members"
# what every head must share with the first: the inputs it reads and the answers it gives
SHARED_FIELDS = ("labels", "modality", "speech_encoder", "text_encoder", "freeze_speech_encoder",
                 "freeze_text_encoder", "finetune_top_layers", "finetune_top_text_layers", "speech_layers",
                 "speech_layer_span", "max_text_tokens", "trim_silence", "loudness_dbfs")


def member_directories(checkpoint: str | Path) -> list[Path]:
    """The other heads of an ensemble checkpoint (none for a single model)."""
    path = Path(checkpoint) / ENSEMBLE_FILE
    if not path.is_file():
        return []
    try:
        return [Path(checkpoint) / m for m in json.loads(path.read_text())["members"]]
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"bad {path}: {e}") from None


def split_members(directories: list[Path]) -> tuple[list[Path], list[Path]]:
    """-> (the MGCMA heads' directories, the statistics heads' (mgcma/stats_head.py))."""
    return [d for d in directories if not is_stats_head(d)], [d for d in directories if is_stats_head(d)]


def check_shareable(first: ModelConfig, other: ModelConfig, where: Path) -> None:
    from .checkpoint import CheckpointError
    differ = [f for f in SHARED_FIELDS if getattr(first, f) != getattr(other, f)]
    if differ:
        raise CheckpointError(f"{where} cannot answer with the first head: its {', '.join(differ)} differ "
                              f"({', '.join(f'{getattr(other, f)!r} vs {getattr(first, f)!r}' for f in differ)})")
    if not (first.freeze_speech_encoder and first.freeze_text_encoder) or first.finetune_top_layers or \
            first.finetune_top_text_layers:
        raise CheckpointError("heads answer together over shared frozen encoders; these models fine-tuned theirs")


def load_members(directories: list[Path], first: MGCMA, first_directory: Path, device: str) -> list[MGCMA]:
    """Each directory's head over `first`'s encoder modules (loaded once, whatever their precision)."""
    from .checkpoint import CheckpointError, encoder_fingerprints, load_config, load_model
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
        import torch
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
        from torch.func import functional_call, vmap

        from .model import MGCMAOutput

        def one(weights):
            out = functional_call(self.first, weights, kwargs=inputs, strict=False)
            return {k: v for k, v in vars(out).items() if hasattr(v, "shape")}   # the tensors: vmap stacks them
        stacked = vmap(one)(self.weights)                                        # each (H, B, ...)
        return [MGCMAOutput(**{k: v[i] for k, v in stacked.items()}, temperature=t) for i, t in enumerate(self.temperatures)]


def mean_threshold(configs: list[ModelConfig]) -> float:
    """The heads' own "not sure" thresholds, averaged: the ensemble's, until one is fitted for it."""
    return float(sum(c.not_sure_below for c in configs) / len(configs))


def together_config(heads: list[MGCMA], not_sure_below: float | None = None) -> ModelConfig:
    """The first head's config, with the calibration of the answer together: temperature 1 (the
    heads' probabilities are each calibrated already) and the "not sure" threshold given, or the
    mean of the heads' own."""
    first = heads[0].config
    if len(heads) == 1:
        return first
    if not_sure_below is None:
        not_sure_below = mean_threshold([h.config for h in heads])
    return dataclasses.replace(first, temperature=1.0, not_sure_below=float(not_sure_below))


def answer_together(outputs: list[MGCMAOutput]) -> MGCMAOutput:
    """The heads' outputs for one input -> the first's, its logits the log of the heads' mean
    calibrated probabilities (so that `probs`, at temperature 1, is that mean)."""
    import torch
    if len(outputs) == 1:
        return outputs[0]
    mean = torch.stack([o.probs for o in outputs]).mean(0)                      # (B, C)
    return dataclasses.replace(outputs[0], logits=mean.clamp_min(torch.finfo(mean.dtype).tiny).log(), temperature=1.0)


def read_threshold(checkpoint: str | Path) -> float | None:
    path = Path(checkpoint) / ENSEMBLE_FILE
    return json.loads(path.read_text()).get("not_sure_below") if path.is_file() else None


def pack(members: list[Path], out: Path) -> Path:
    """The first member's checkpoint, whole, at `out`; the others' heads in out/members/<k>/
    (a statistics head, mgcma/stats_head.py, as its own files)."""
    from .checkpoint import CONFIG_FILE, TOKENIZER_DIR, WEIGHTS_FILE, load_config
    from .stats_head import CONFIG_FILE as STATS_CONFIG, WEIGHTS_FILE as STATS_WEIGHTS, load_stats_heads
    if is_stats_head(members[0]):
        raise ValueError(f"{members[0]} is a statistics head; the first member must be a model")
    models, voices = split_members(members)
    configs = [load_config(m) for m in models]
    for m, config in zip(models[1:], configs[1:]):
        check_shareable(configs[0], config, m)
    load_stats_heads(voices, configs[0])
    out.mkdir(parents=True, exist_ok=True)
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        shutil.copy(members[0] / name, out / name)
    if (members[0] / TOKENIZER_DIR).is_dir():
        shutil.copytree(members[0] / TOKENIZER_DIR, out / TOKENIZER_DIR, dirs_exist_ok=True)
    shutil.rmtree(out / MEMBERS_DIR, ignore_errors=True)
    names = []
    for k, member in enumerate(members[1:], start=1):
        (out / MEMBERS_DIR / str(k)).mkdir(parents=True)
        for name in (STATS_CONFIG, STATS_WEIGHTS) if is_stats_head(member) else (CONFIG_FILE, WEIGHTS_FILE):
            shutil.copy(member / name, out / MEMBERS_DIR / str(k) / name)
        names.append(f"{MEMBERS_DIR}/{k}")
    (out / ENSEMBLE_FILE).write_text(json.dumps(dict(
        members=names, not_sure_below=mean_threshold(configs), packed_from=[str(m) for m in members],
        answer="the mean of the heads' calibrated probabilities"
        + ("; a statistics head takes its weight of every answer that hears the voice" if voices else "")), indent=2) + "\n")
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mgcma.ensemble", description=__doc__.strip().splitlines()[0])
    parser.add_argument("--members", nargs="+", required=True, help="checkpoint directories of one recipe's seeds; a statistics head (python -m mgcma.stats_head) may join them")
    parser.add_argument("--out", required=True, help="the ensemble checkpoint directory to write")
    args = parser.parse_args(argv)
    if len(args.members) < 2:
        print("error: an ensemble needs two members or more", file=sys.stderr)
        return 1
    try:
        out = pack([Path(m) for m in args.members], Path(args.out))
    except (ValueError, OSError) as e:   # CheckpointError is a ValueError
        print(f"error: {e}", file=sys.stderr)
        return 1
    models, voices = split_members([Path(m) for m in args.members])
    print(f"wrote {out}: {len(models)} heads{f' and {len(voices)} statistics head' if voices else ''}, "
          f"'not sure' below {read_threshold(out):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
