"""Answer one clip from an ONNX export with onnxruntime, NumPy and the tokenizer: no PyTorch
(the recogniser: mgcma/infer/onnx_recognizer.py).

  python -m mgcma.onnx_backend --onnx DIR --audio clip.wav [--text "..."] [--asr faster-whisper|none] [--json]
  python -m mgcma.predict --backend onnx --checkpoint DIR ...      (the same, through the usual CLI)
"""
from __future__ import annotations

import argparse
import json
import sys

from .audio import AudioError
from .infer.onnx_recognizer import OnnxRecognizer


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mgcma.onnx_backend", description=__doc__.strip().splitlines()[0])
    parser.add_argument("--onnx", required=True, help="directory written by python -m mgcma.export")
    parser.add_argument("--audio", required=True, help="speech file (WAV, FLAC, OGG, MP3; any rate)")
    parser.add_argument("--text", default=None, help="the transcript; omitted: the ASR writes it")
    parser.add_argument("--asr", default="faster-whisper", help="faster-whisper[:DIR] | none")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    try:
        result = OnnxRecognizer(args.onnx, args.asr).predict(args.audio, args.text)
    except (AudioError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        (first, p1), (second, p2) = result["top_two"]
        verdict = f"not sure: {first} {p1:.2f} or {second} {p2:.2f}" if result["not_sure"] else result["label"]
        print(f"{verdict}  ({', '.join(f'{k} {v:.2f}' for k, v in result['probabilities'].items())})")
        print(f"transcript ({result['transcript_source']}): {result['transcript']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
