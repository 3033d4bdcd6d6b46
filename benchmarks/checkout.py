"""The live hop and the cold start of another checkout (an older commit), measured as
benchmarks/laptop.py measures them, for before/after figures on one machine and one day:

  git worktree add /tmp/before COMMIT
  python -m benchmarks.checkout /tmp/before [--out FILE.json]

The request, the long recording and the word error rate of an older checkout come from its own
`python -m benchmarks.shared_pass`, run inside it.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import __main__ as bench
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
    parser.add_argument("checkout", type=Path, help="the other checkout's root")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    root = args.checkout.resolve()
    bench.ROOT = root                       # the cold start runs that checkout's app.py
    result = dict(checkout=str(root), live_hop=bench_live_hop(load_recognizer(root), 7),
                  cold_start=bench.bench_app_cold_start(3))
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
