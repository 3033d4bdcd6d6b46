"""Export a checkpoint to ONNX, for inference without PyTorch (the graphs: mgcma/infer/onnx_export.py).

  python -m mgcma.export --checkpoint DIR --onnx OUT_DIR [--check CLIP ...]

OUT_DIR holds speech.onnx, text.onnx, head.onnx, config.json, tokenizer.json, Whisper's mel
filters, speech_stats.npz where the checkpoint has it, and an ensemble's other heads. `--check`
compares the ONNX answers with PyTorch's on the clips given.
"""
from __future__ import annotations

import argparse
import sys

from .config import CheckpointError
from .infer.onnx_export import compare_with_torch, export


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mgcma.export", description=__doc__.strip().splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="model directory")
    parser.add_argument("--onnx", required=True, help="output directory for the ONNX graphs")
    parser.add_argument("--check", nargs="*", default=[], help="clips to compare with PyTorch after the export")
    args = parser.parse_args(argv)
    try:
        out = export(args.checkpoint, args.onnx)
    except CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {', '.join(sorted(p.name for p in out.iterdir()))} to {out}")
    if args.check:
        diff = compare_with_torch(args.checkpoint, out, args.check)
        print(f"largest probability difference from PyTorch (float32) over {len(args.check)} clip(s), "
              f"with and without words: {diff:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
