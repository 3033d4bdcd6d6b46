"""Calibrate a trained checkpoint's confidence on the validation rows it was selected on.

  python -m mgcma.calibrate --checkpoint DIR [--data-path A.csv,B.csv]

New runs are calibrated by the trainer at the end of each fold; this does the same for a model
trained before that, from the training configuration in DIR/metrics.json (the same corpora,
protocol and seed give the same validation speakers; --data-path points at your copies of its
manifests when they have moved). It writes the temperature and the "not sure" threshold into
DIR/config.json and prints the validation ECE before and after.

For an ensemble (python -m mgcma.ensemble) it fits the temperature of the answer from the words
alone, on the validation split of its words corpora: every head was selected on those rows and
none trained on them, whatever its seed (protocols.train_and_validation), where its heads' voices
may each have been drawn otherwise. It writes it into DIR/ensemble.json; the other answers keep
theirs.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from accelerate import Accelerator

from .checkpoint import load_model
from .config import CheckpointError
from .infer.members import Together, member_directories, read_together, write_together
from .infer.recognizer import EmotionRecognizer, InputError
from .infer.together import FittedTogether, calibration_rows, fit_together
from .training.loop import calibrate_on_validation, frozen_caches
from .training.protocols import run_validation
from .training.run_files import TrainingError


def calibrate_checkpoint(checkpoint: Path, data_path: str | None = None):
    if not (checkpoint / "metrics.json").is_file():
        raise TrainingError(f"{checkpoint / 'metrics.json'} is missing: calibration needs the run's training configuration")
    cfg, records, val_idx = run_validation(checkpoint, data_path)
    model = load_model(checkpoint, "cpu")
    result, _ = calibrate_on_validation(cfg, model, records, val_idx, frozen_caches(model, cfg, None), Accelerator(cpu=True))
    model.config.save(checkpoint / "config.json")
    return result


def calibrate_words_together(checkpoint: Path, data_path: str | None = None) -> FittedTogether:
    """The ensemble's words-alone temperature, fitted on its words corpora's own validation split."""
    _, records, val_idx = run_validation(checkpoint, data_path)
    shared = [i for i in val_idx if not records[i].has_audio and records[i].split == "validation"]
    if not shared:
        raise ValueError(f"{checkpoint}'s run has no corpus of words with its own validation split: nothing its "
                         "heads all held out to calibrate the words on")
    fitted = fit_together(EmotionRecognizer(checkpoint, asr="none", device="cpu"), calibration_rows(records, shared, spoken=False))
    before = read_together(checkpoint)
    write_together(checkpoint, Together(before.temperature, before.not_sure_below, dict(before.temperatures, **fitted.temperatures)),
                   dict(words=dict(rows=fitted.rows, ece={k: [round(e, 4) for e in v] for k, v in fitted.ece.items()})))
    return fitted


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mgcma.calibrate", description=__doc__.strip().splitlines()[0])
    parser.add_argument("--checkpoint", required=True, type=Path, help="model directory with its metrics.json")
    parser.add_argument("--data-path", default=None, help="the run's manifests, comma-separated, where they have moved")
    args = parser.parse_args(argv)
    try:
        if member_directories(args.checkpoint):
            fitted = calibrate_words_together(args.checkpoint, args.data_path)
            print(f"{args.checkpoint} (an ensemble), on {sum(fitted.rows.values())} validation rows of words: "
                  f"{fitted.describe()}")
            return 0
        result = calibrate_checkpoint(args.checkpoint, args.data_path)
    except (TrainingError, CheckpointError, ValueError, OSError, InputError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"{args.checkpoint}: temperature {result.temperature:.3f}, 'not sure' below {result.not_sure_below:.3f}; "
          f"validation {result.ece_change} ({result.n} utterances)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
