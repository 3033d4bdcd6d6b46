"""ONNX Runtime's dynamic int8 on an ONNX export: UA against the float32 export on prepared manifests,
and the speech encoder's time side by side (the second int8 candidate of docs/performance.md).

  python -m mgcma.export --checkpoint checkpoints/default --onnx default-onnx
  python -m benchmarks.onnx_int8 --onnx default-onnx --manifest data/ravdess4.csv:test data/emodb.csv data/emovo.csv
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np

from mgcma.infer.onnx_recognizer import OnnxRecognizer
from mgcma.metrics import classification_metrics

from .common import manifest_records, report, speech_clip
from .shared_pass import interleaved


def quantised_copy(directory: Path) -> Path:
    """DIR-int8: the export with its two encoders in dynamic int8 (weights per channel)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    target = directory.parent / f"{directory.name}-int8"
    shutil.copytree(directory, target, dirs_exist_ok=True)
    for name in ("speech", "text"):
        quantize_dynamic(directory / f"{name}.onnx", target / f"{name}.onnx", weight_type=QuantType.QInt8, per_channel=True)
    return target


def ua(recognizer: OnnxRecognizer, manifest: str) -> float:
    """UA over a manifest's rows (MANIFEST:SPLIT for one split), with their words where they have them."""
    records = manifest_records(manifest)
    labels = recognizer.config.labels
    preds = [labels.index(recognizer.predict(r.path, r.text)["label"]) for r in records]
    return classification_metrics(np.array([labels.index(r.label) for r in records]), np.array(preds), labels)["UA"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.onnx_int8", description=__doc__.strip().splitlines()[0])
    parser.add_argument("--onnx", type=Path, required=True, help="a directory written by python -m mgcma.export")
    parser.add_argument("--manifest", nargs="+", default=[], help="prepared manifests, MANIFEST[:SPLIT]")
    args = parser.parse_args(argv)
    recognizers = {"float32": OnnxRecognizer(args.onnx, asr="none"),
                   "int8": OnnxRecognizer(quantised_copy(args.onnx), asr="none")}
    wave = recognizers["float32"].load((16000, speech_clip(5.0)))
    times = interleaved({k: (lambda r=r: r.encode_speech(wave)) for k, r in recognizers.items()}, 9)
    result = dict(speech_encoder_ms_5s={k: v["median"] for k, v in times.items()},
                  ua={m: {k: 100 * ua(r, m) for k, r in recognizers.items()} for m in args.manifest})
    report(result, None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
