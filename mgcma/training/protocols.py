"""Which records train, which select the model, and which test it: the corpora a run reads, and
its protocol (leave one group out, the manifests' fixed splits, or leave one corpus out), every
fold checked to be speaker-independent."""
from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

from ..config import IEMOCAP_LABELS
from ..data.records import (check_speaker_independence, leave_one_corpus_out, leave_one_group_out, read_iemocap,
                            read_manifest, validation_split)
from ..data.synthetic import SyntheticConfig, generate
from .config import TrainConfig
from .run_files import TrainingError

log = logging.getLogger("mgcma.train")


def load_records(cfg: TrainConfig):
    """-> (records, labels) for the configured source."""
    if cfg.data == "synthetic":
        path = generate(cfg.data_path or "data/synthetic", SyntheticConfig(size=cfg.synthetic_size))
        return read_manifest(path), list(IEMOCAP_LABELS)
    if cfg.data == "iemocap":
        if cfg.data_path is None:
            raise TrainingError("--data iemocap needs --data-path IEMOCAP_full_release (or its manifest)")
        path = Path(cfg.data_path)
        records = read_manifest(path) if path.is_file() else read_iemocap(path, report=log.info)
        return records, list(IEMOCAP_LABELS)
    if cfg.data != "manifest":
        raise TrainingError(f"unknown --data {cfg.data!r}: synthetic, iemocap or manifest")
    if cfg.data_path is None:
        raise TrainingError("--data manifest needs --data-path FILE.csv|FILE.jsonl[,FILE2...]")
    records = [r for path in cfg.data_path.split(",") for r in read_manifest(path.strip())]
    usable = [r for r in records if (r.has_audio or cfg.modality == "text") and (r.has_text or cfg.modality == "speech")
              or cfg.modality == "both"]
    if len(usable) < len(records):
        log.info(f"{len(records) - len(usable)} records lack the {cfg.modality} modality and are left out")
    log.info(f"{sum(not r.has_text for r in usable)} records without text, {sum(not r.has_audio for r in usable)} "
             f"without audio: each is trained on the modality it has")
    names = {r.label for r in usable}
    return usable, (list(IEMOCAP_LABELS) if names == set(IEMOCAP_LABELS) else sorted(names))


def parse_weights(spec: str) -> dict[str, float]:
    weights = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, sep, value = part.partition("=")
        try:
            weights[name] = float(value)
        except ValueError:
            raise TrainingError(f"--corpus-weights wants NAME=WEIGHT,...; got {part!r}") from None
        if not sep or weights[name] < 0:
            raise TrainingError(f"--corpus-weights wants NAME=WEIGHT with WEIGHT >= 0; got {part!r}")
    return weights


def make_folds(cfg: TrainConfig, records) -> list[tuple[str, list[int], list[int], list[int] | None]]:
    """-> [(test name, train, test, validation or None: drawn from the training speakers)].
    `split`: the manifests' train / validation / test rows, one run. `folds`: leave one group out.
    `corpora`: leave one corpus out (train and select on the others). Every fold is checked to be
    speaker-independent."""
    folds = protocol_folds(cfg, records)
    for name, train, test, val in folds:
        check_speaker_independence(records, name, train + (val or []), test)
    return folds


def protocol_folds(cfg: TrainConfig, records):
    protocol = cfg.protocol
    if protocol == "auto":
        protocol = "split" if all(r.split for r in records) else "folds"
    if protocol == "folds":
        return [(name, train, test, None) for name, train, test in leave_one_group_out(records)]
    if protocol == "corpora":
        return [(name, train, test, val) for name, rest, test in leave_one_corpus_out(records)
                for train, val in [train_and_validation(records, rest, cfg)]]
    if protocol != "split":
        raise TrainingError(f"--protocol must be auto, folds, split or corpora; got {cfg.protocol!r}")
    if not all(r.split for r in records):
        raise TrainingError("--protocol split needs a split (train/validation/test) on every manifest row")
    rows = {k: [i for i, r in enumerate(records) if r.split == k] for k in ("train", "validation", "test")}
    train, val = train_and_validation(records, rows["train"] + rows["validation"], cfg)
    return [("split", train, rows["test"], val)]


def train_and_validation(records, indices, cfg: TrainConfig) -> tuple[list[int], list[int]]:
    """A corpus with validation rows keeps them for selection; each other corpus gives whole
    speakers of its training side, drawn within the corpus so that every corpus is selected on."""
    train, val = [], []
    for corpus in sorted({records[i].corpus for i in indices}):
        rows = [i for i in indices if records[i].corpus == corpus]
        given = [i for i in rows if records[i].split == "validation"]
        if given:
            train += [i for i in rows if records[i].split != "validation"]
            val += given
        else:
            t, v = validation_of(records, rows, cfg)
            train, val = train + t, val + v
    return sorted(train), sorted(val)


def validation_of(records, train_idx: list[int], cfg: TrainConfig) -> tuple[list[int], list[int]]:
    """The run's validation speakers drawn from a training side, as its config says (fraction, seed, minimum)."""
    return validation_split(records, train_idx, cfg.val_fraction, cfg.validation_seed, cfg.val_min_speakers)


def select_folds(spec: str, n: int) -> list[int]:
    if spec == "all":
        return list(range(n))
    try:
        chosen = [int(x) for x in spec.split(",")]
    except ValueError:
        raise TrainingError(f"--folds must be 'all' or numbers like 0,2; got {spec!r}") from None
    bad = [k for k in chosen if not 0 <= k < n]
    if bad:
        raise TrainingError(f"--folds {bad} out of range: this data has folds 0..{n - 1}")
    return chosen


def run_validation(run: Path, data_path: str | None = None) -> tuple[TrainConfig, list, list[int]]:
    """A trained fold's configuration, records and validation rows, from the metrics.json it wrote
    (in `run`, or beside it: a fold's best/ checkpoint); the same corpora, protocol and seed give the
    same validation speakers. `data_path`: the run's manifests, where they have moved."""
    metrics = next((p / "metrics.json" for p in (Path(run), Path(run).parent) if (p / "metrics.json").is_file()), None)
    if metrics is None:
        raise TrainingError(f"{run} has no metrics.json (nor has its folder): its validation speakers are "
                            "read from the run's training configuration")
    saved = json.loads(metrics.read_text())
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    cfg = TrainConfig(**{k: v for k, v in saved["config"].items() if k in known})
    if data_path:
        cfg = dataclasses.replace(cfg, data_path=data_path)
    records, _ = load_records(cfg)
    _, train_idx, _, val_idx = make_folds(cfg, records)[saved["fold"]]
    if val_idx is None:   # leave-one-group-out draws them in the fold
        _, val_idx = validation_of(records, train_idx, cfg)
    return cfg, records, val_idx


def voice_key(record) -> str:
    """A speaker named with its corpus ("corpus:speaker"): two corpora may both have a speaker "01"."""
    return f"{record.corpus}:{record.speaker}"


def spoken_voices(records, rows: list[int]) -> set[str]:
    """voice_key of every speaker with audio among `rows` (a statistics head's held-out speakers)."""
    return {voice_key(records[i]) for i in rows if records[i].has_audio}
