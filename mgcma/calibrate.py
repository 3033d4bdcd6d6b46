"""Calibrate a trained checkpoint's confidence on the validation rows it was selected on.

  python -m mgcma.calibrate --checkpoint DIR [--data-path A.csv,B.csv]

New runs are calibrated by the trainer at the end of each fold; this does the same for a model
trained before that, from the training configuration in DIR/metrics.json (the same corpora,
protocol and seed give the same validation speakers; --data-path points at your copies of its
manifests when they have moved). It writes the temperature and the "not sure" threshold into
DIR/config.json and prints the validation ECE before and after.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from accelerate import Accelerator

from .checkpoint import load_model
from .config import CheckpointError
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mgcma.calibrate", description=__doc__.strip().splitlines()[0])
    parser.add_argument("--checkpoint", required=True, type=Path, help="model directory with its metrics.json")
    parser.add_argument("--data-path", default=None, help="the run's manifests, comma-separated, where they have moved")
    args = parser.parse_args(argv)
    try:
        result = calibrate_checkpoint(args.checkpoint, args.data_path)
    except (TrainingError, CheckpointError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"{args.checkpoint}: temperature {result.temperature:.3f}, 'not sure' below {result.not_sure_below:.3f}; "
          f"validation {result.ece_change} ({result.n} utterances)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
