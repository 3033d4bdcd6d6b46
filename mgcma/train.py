"""Cross-validated MGCMA training with honest WA/UA.

  python -m mgcma.train --data synthetic --preset tiny --out runs/tiny
  accelerate launch -m mgcma.train ...     (several processes or GPUs)

Every option is a field of TrainConfig (mgcma/training/config.py); the loop is mgcma/training/loop.py.
"""
from __future__ import annotations

import sys
from pathlib import Path

from .training.config import TrainConfig, parser_for
from .training.loop import train
from .training.run_files import TrainingError


def main(argv=None) -> int:
    parser = parser_for(TrainConfig, "python -m mgcma.train", __doc__.strip().splitlines()[0])
    cfg = TrainConfig(**vars(parser.parse_args(argv)))
    try:
        summary = train(cfg)
    except (TrainingError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if summary:
        print((Path(cfg.out) / "results.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
