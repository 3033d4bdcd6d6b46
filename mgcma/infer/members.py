"""An ensemble checkpoint's files, read and written without PyTorch (the ONNX backend reads them too).

An ensemble checkpoint is its first head's checkpoint, whole (so that every tool that reads one
model still can), with the other heads in `members/<k>/` and `ensemble.json` naming them and
giving the calibration of their answer together: a temperature (one per kind of answer: voice and
words, the voice alone, the words alone) and a "not sure" threshold fitted on validation rows that
none of its members trained on (`python -m mgcma.ensemble --calibrate`; `python -m mgcma.calibrate`
for the words alone of a pack whose heads heard other voices), or, where there are none,
temperature 1 and the mean of the heads' own thresholds.
A statistics head (mgcma/infer/stats_head.py) is a member of its own kind.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ..config import CONFIG_FILE, TOKENIZER_DIR, WEIGHTS_FILE, CheckpointError, ModelConfig, load_config
from .stats_head import CONFIG_FILE as STATS_CONFIG, WEIGHTS_FILE as STATS_WEIGHTS, is_stats_head, load_stats_heads

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
    """-> (the MGCMA heads' directories, the statistics heads' (mgcma/infer/stats_head.py))."""
    return [d for d in directories if not is_stats_head(d)], [d for d in directories if is_stats_head(d)]


def check_shareable(first: ModelConfig, other: ModelConfig, where: Path) -> None:
    differ = [f for f in SHARED_FIELDS if getattr(first, f) != getattr(other, f)]
    if differ:
        raise CheckpointError(f"{where} cannot answer with the first head: its {', '.join(differ)} differ "
                              f"({', '.join(f'{getattr(other, f)!r} vs {getattr(first, f)!r}' for f in differ)})")
    if not (first.freeze_speech_encoder and first.freeze_text_encoder) or first.finetune_top_layers or \
            first.finetune_top_text_layers:
        raise CheckpointError("heads answer together over shared frozen encoders; these models fine-tuned theirs")


def mean_threshold(configs: list[ModelConfig]) -> float:
    """The heads' own "not sure" thresholds, averaged: the ensemble's, until one is fitted for it."""
    return float(sum(c.not_sure_below for c in configs) / len(configs))


def what_it_hears(answer: str, has_voice: bool, has_words: bool) -> str:
    """What an answer reads: "both", "speech" (the voice alone) or "text" (the words alone). The
    main answer ("both") reads whatever the input and the model have."""
    if answer != "both" or (has_voice and has_words):
        return answer
    return "speech" if has_voice else "text"


@dataclass
class Together:
    """The calibration of an ensemble's answer together. An answer that reads one side only is a
    predictor of its own, with its own temperature where one was fitted for it (`temperatures`, by
    what_it_hears); the others take `temperature`."""
    temperature: float
    not_sure_below: float
    temperatures: dict[str, float] = field(default_factory=dict)

    def temperature_of(self, hears: str) -> float:
        return self.temperatures.get(hears, self.temperature)


def read_together(checkpoint: str | Path) -> Together | None:
    """The calibration of an ensemble's answer together; None for a single model."""
    path = Path(checkpoint) / ENSEMBLE_FILE
    if not path.is_file():
        return None
    saved = json.loads(path.read_text())
    return Together(float(saved.get("temperature", 1.0)), float(saved["not_sure_below"]),
                    {k: float(t) for k, t in saved.get("temperatures", {}).items()})


def write_together(checkpoint: str | Path, together: Together, fitted_on: dict) -> None:
    """Store the calibration fitted for the answer together, and what it was fitted on."""
    path = Path(checkpoint) / ENSEMBLE_FILE
    saved = json.loads(path.read_text())
    saved.update(temperature=float(together.temperature), not_sure_below=float(together.not_sure_below),
                 calibrated_on={**saved.get("calibrated_on", {}), **fitted_on})
    saved.pop("temperatures", None)
    if together.temperatures:
        saved["temperatures"] = {k: float(t) for k, t in together.temperatures.items()}
    path.write_text(json.dumps(saved, indent=2) + "\n")


def pack(members: list[Path], out: Path) -> Path:
    """The first member's checkpoint, whole, at `out`; the others' heads in out/members/<k>/
    (a statistics head, mgcma/infer/stats_head.py, as its own files)."""
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
    # the first head's training record (in its checkpoint or its fold's folder): its validation rows
    # can then be found again (python -m mgcma.calibrate)
    record = next((d / "metrics.json" for d in (members[0], members[0].parent) if (d / "metrics.json").is_file()), None)
    if record is not None:
        shutil.copy(record, out / "metrics.json")
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
