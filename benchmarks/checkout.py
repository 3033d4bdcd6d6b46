"""The live hop and the cold start of other checkouts (older commits), measured as
benchmarks/laptop.py measures them, for before/after figures on one machine and one day:

  git worktree add /tmp/before COMMIT
  python -m benchmarks.checkout /tmp/before . [--rounds 4] [--no-live-hop] [--out FILE.json]

The cold starts take turns, one per checkout per round, so that the machine's drift falls on all alike.

The request, the long recording and the word error rate of an older checkout come from its own
`python -m benchmarks.shared_pass`, run inside it.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import cold_start, median_start, report
from .laptop import bench_live_hop


def load_recognizer(root: Path):
    """The other checkout's EmotionRecognizer on its own bundled model (its mgcma, not this one's)."""
    for name in [m for m in sys.modules if m == "mgcma" or m.startswith("mgcma.")]:
        del sys.modules[name]
    sys.path.insert(0, str(root))
    import mgcma.predict
    if not mgcma.predict.__file__.startswith(str(root)):
        raise SystemExit(f"mgcma was imported from {mgcma.predict.__file__}, not from {root}")
    return mgcma.predict.EmotionRecognizer(root / "checkpoints" / "default", "auto", "cpu")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.checkout", description=__doc__.strip().splitlines()[0])
    parser.add_argument("checkouts", type=Path, nargs="+", help="the checkouts' roots")
    parser.add_argument("--rounds", type=int, default=3, help="cold starts of each checkout, taking turns")
    parser.add_argument("--no-live-hop", action="store_true", help="the cold starts only")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    roots = [root.resolve() for root in args.checkouts]
    starts = {str(root): [] for root in roots}
    for _ in range(args.rounds):
        for root in roots:
            starts[str(root)].append(cold_start(root))
    result = {root: dict(cold_start=median_start(each) | dict(each=each)) for root, each in starts.items()}
    if not args.no_live_hop:   # last: each checkout's mgcma replaces the one imported before
        for root in roots:
            result[str(root)]["live_hop"] = bench_live_hop(load_recognizer(root), 7)
    report(result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
