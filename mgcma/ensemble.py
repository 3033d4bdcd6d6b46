"""Pack heads that answer together into one checkpoint (an ensemble: mgcma/infer/ensemble.py).

  python -m mgcma.ensemble --members RUN_A/fold-0/best RUN_B/fold-0/best ... --out DIR

The first member's checkpoint is copied whole (every tool that reads one model still can: the
attention and Gaussian views are that head's), the others go to DIR/members/, and ensemble.json
names them. Its "not sure" threshold is the mean of the heads' own, each fitted on its own
validation speakers (each seed draws its own unless trained with one `--val-seed`, so no speakers
may be left that none of them trained on). A statistics head (python -m mgcma.stats_head) may join.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .infer.members import pack, read_threshold, split_members


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
