"""A model as a directory: config.json + model.safetensors (+ tokenizer/). No pickles.

Frozen encoders that come from a pretrained source are not stored: the checkpoint names
the source and a fingerprint of its weights, and loading checks the fingerprint. This keeps
the bundled default small (all-MiniLM-L6-v2 alone is 90 MB).
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .config import CONFIG_FILE, TOKENIZER_DIR, WEIGHTS_FILE, CheckpointError, ModelConfig, load_config
from .encoders.build import local_source, resolve_source
from .encoders.tokenizer import TextTokenizer
from .model import MGCMA

FORMAT = "mgcma-1"


def weights_checksum(params) -> str:
    """A number that tells whether weights are the same ones (their sum of squares)."""
    return f"{sum(p.detach().double().pow(2).sum().item() for p in params):.10e}"


def fingerprint(model: torch.nn.Module, keys: set[str]) -> str:
    """Whether the unstored parameters are the ones trained with."""
    return weights_checksum(p for k, p in model.named_parameters() if k in keys)


def unstored_encoders(model: MGCMA) -> list[str]:
    """Names of encoders that the checkpoint references by source instead of storing."""
    c = model.config
    return [name for name in ("speech", "text")
            if hasattr(model, f"{name}_encoder") and getattr(c, f"freeze_{name}_encoder")
            and getattr(c, f"{name}_encoder") is not None]


def unstored_keys(model: MGCMA) -> dict[str, set[str]]:
    """Encoder name -> the state keys a checkpoint leaves to the encoder's source: all of a
    frozen encoder's, and the frozen part of an encoder whose top layers are fine-tuned."""
    state = model.state_dict()
    keys = {name: {k for k in state if k.startswith(f"{name}_encoder.")} for name in unstored_encoders(model)}
    c = model.config
    for name in ("speech", "text"):
        if c.tuned_top(name) and getattr(c, f"{name}_encoder") is not None and hasattr(model, f"{name}_encoder"):
            encoder = getattr(model, f"{name}_encoder")
            trainable = {f"{name}_encoder.{n}" for n, p in encoder.named_parameters() if p.requires_grad}
            keys[name] = {k for k in state if k.startswith(f"{name}_encoder.") and k not in trainable}
    return keys


def stored_state(model: MGCMA) -> dict[str, torch.Tensor]:
    skipped = set().union(*unstored_keys(model).values())
    return {k: v for k, v in model.state_dict().items() if k not in skipped}


def atomic_write(path: Path, write) -> None:
    """write(tmp_path) then rename, so that a crash leaves the old file or the new one, never half."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def save_model(model: MGCMA, directory: str | Path, tokenizer=None) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = ModelConfig.from_dict(model.config.to_dict())
    for name in ("speech", "text"):  # record full architectures so loading needs no source
        if hasattr(model, f"{name}_encoder"):
            setattr(config, f"{name}_encoder_config", getattr(model, f"{name}_encoder").config.to_diff_dict())
    state = {k: v.detach().cpu().contiguous() for k, v in stored_state(model).items()}
    metadata = {"format": FORMAT}
    for name, keys in unstored_keys(model).items():
        metadata[f"{name}_encoder_fingerprint"] = fingerprint(model, keys)
    atomic_write(directory / WEIGHTS_FILE, lambda tmp: save_file(state, tmp, metadata=metadata))
    atomic_write(directory / CONFIG_FILE, lambda tmp: config.save(tmp))
    if tokenizer is not None:
        tokenizer.save_pretrained(directory / TOKENIZER_DIR)
    return directory


def load_model(directory: str | Path, device: str | torch.device = "cpu", shared_encoders: MGCMA | None = None) -> MGCMA:
    """Load a checkpoint directory; any mismatch between config and weights is named.
    `shared_encoders`: a loaded model whose frozen encoders this one's head reads (mgcma/infer/ensemble.py;
    the caller checks that they are the ones it was trained with: encoder_fingerprints)."""
    directory = Path(directory)
    config = load_config(directory)
    weights = directory / WEIGHTS_FILE
    if not weights.is_file():
        raise CheckpointError(f"{directory} has no {WEIGHTS_FILE}")
    try:
        state = load_file(weights)
        metadata = encoder_fingerprints(directory)
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{weights} is corrupt or not a safetensors file: {e}") from None
    model = MGCMA(config, pretrained=False, shared_encoders=shared_encoders)
    check_state(model, state, weights)
    if shared_encoders is not None:
        state = without_shared_encoders(state, shared_encoders, weights)
    model.load_state_dict(state, strict=False)
    for name, keys in unstored_keys(model).items() if shared_encoders is None else ():
        expected = metadata.get(name)
        got = fingerprint(model, keys)
        if expected is not None and abs(float(got) - float(expected)) > 1e-6 * abs(float(expected)):
            raise CheckpointError(
                f"the frozen {name} encoder loaded from {getattr(config, f'{name}_encoder')!r} is not "
                f"the one this checkpoint was trained with (fingerprint {got} != {expected})")
    return model.to(device).eval()


def without_shared_encoders(state: dict, shared: MGCMA, weights: Path) -> dict:
    """A head's state without the encoder tensors it shares; a copy it stores (an encoder with no
    source to name) must equal the shared one."""
    theirs = shared.state_dict()
    stored = [k for k in state if k.split(".")[0] in ("speech_encoder", "text_encoder")]
    differ = [k for k in stored if k not in theirs or not torch.equal(state[k], theirs[k].detach().cpu())]
    if differ:
        raise CheckpointError(f"{weights} stores encoder weights other than the ones it would share ({differ[0]} ...)")
    return {k: v for k, v in state.items() if k not in stored}


def encoder_fingerprints(directory: str | Path) -> dict[str, str]:
    """"speech" / "text" -> the fingerprint of the frozen encoder a checkpoint was trained with."""
    with open(Path(directory) / WEIGHTS_FILE, "rb") as f:   # header: 8-byte length, then JSON with __metadata__
        n = int.from_bytes(f.read(8), "little")
        metadata = json.loads(f.read(n)).get("__metadata__", {})
    return {k.removesuffix("_encoder_fingerprint"): v for k, v in metadata.items() if k.endswith("_encoder_fingerprint")}


def check_state(model: MGCMA, state: dict, weights: Path) -> None:
    expected = model.state_dict()
    needed = set(stored_state(model))
    problems = []
    missing = sorted(needed - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing:
        problems.append(f"missing tensors: {', '.join(missing[:5])}" + (" ..." if len(missing) > 5 else ""))
    if unexpected:
        problems.append(f"tensors the config does not have: {', '.join(unexpected[:5])}"
                        + (" ..." if len(unexpected) > 5 else ""))
    for k in sorted(needed & set(state)):
        if tuple(state[k].shape) != tuple(expected[k].shape):
            problems.append(f"{k} has shape {tuple(state[k].shape)}, config expects {tuple(expected[k].shape)}")
    if problems:
        raise CheckpointError(f"{weights} does not match its config.json: " + "; ".join(problems[:6]))


def load_tokenizer(config: ModelConfig, directory: str | Path | None = None):
    """The checkpoint's own copy if it has one, else the config's tokenizer or text encoder source."""
    if not config.uses_text:
        return None
    if directory is not None and (Path(directory) / TOKENIZER_DIR).is_dir():
        return open_tokenizer(Path(directory) / TOKENIZER_DIR)
    source = config.tokenizer or config.text_encoder
    if source is None:
        raise CheckpointError("no tokenizer: set `tokenizer` in the config or save one into the checkpoint")
    return open_tokenizer(local_source(source) or resolve_source(source))


def open_tokenizer(source: str | Path):
    """A tokenizer.json through `tokenizers` alone; anything else through transformers."""
    if (Path(source) / "tokenizer.json").is_file():
        return TextTokenizer(source)
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(str(source))
