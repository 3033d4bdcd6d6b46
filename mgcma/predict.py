"""The emotion of a clip, or of every turn of a long recording, from the command line.

  python -m mgcma.predict --audio clip.wav [--text "..."] [--checkpoint DIR] [--asr SPEC] --json
  python -m mgcma.predict --backend onnx --checkpoint ONNX_DIR --audio clip.wav     (mgcma/infer/onnx_recognizer.py)

The recogniser itself is mgcma/infer/recognizer.py; long recordings are mgcma/infer/recording.py.
"""
from __future__ import annotations

import argparse
import json
import sys

from .audio import AudioError
from .config import DEFAULT_CHECKPOINT, CheckpointError, add_precision_argument
from .encoders.voice_print import VoicePrintError
from .infer.asr import ASRError
from .infer.recognizer import EmotionRecognizer, InputError
from .infer.recording import command_result, print_result, write_outputs
from .infer.segments import SegmentConfig
from .onnx_backend import main as onnx_main


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mgcma.predict", description=__doc__.strip().splitlines()[0])
    parser.add_argument("--audio", required=True, help="speech file (WAV, FLAC, OGG, MP3; any rate)")
    parser.add_argument("--text", default=None, help="the transcript; omitted: the ASR writes it")
    parser.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT), help="model directory")
    parser.add_argument("--asr", default="auto", help="auto | shared | faster-whisper[:DIR] | openai-whisper:NAME_OR_PATH | none")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    add_precision_argument(parser)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--segments", action="store_true",
                        help="a long recording: split it into utterances by voice activity and classify each")
    parser.add_argument("--max-minutes", type=float, default=60.0, help="with --segments: refuse longer recordings")
    parser.add_argument("--speakers", default=None, metavar="auto|N",
                        help="with --segments: find who speaks (N people, or auto: estimated); each turn gets its speaker")
    parser.add_argument("--normalise-speakers", action="store_true",
                        help="with --speakers: hear each voice relative to that speaker's own mean (docs/conversations.md)")
    parser.add_argument("--no-sentences", action="store_true",
                        help="with --speakers: do not cut long turns at their sentence ends")
    parser.add_argument("--vtt", default=None, help="with --segments: write WebVTT subtitles (speaker, emotion, words) here")
    parser.add_argument("--csv", default=None, help="with --segments: write a CSV of the turns here")
    parser.add_argument("--backend", default="torch", choices=("torch", "onnx"),
                        help="onnx: --checkpoint is a directory written by python -m mgcma.export (no PyTorch needed)")
    args = parser.parse_args(argv)
    if not args.segments and (args.speakers or args.vtt or args.csv or args.normalise_speakers):
        parser.error("--speakers, --normalise-speakers, --vtt and --csv describe a long recording: add --segments")
    if args.backend == "onnx":
        if args.segments or args.precision != "float32":
            print("error: --backend onnx answers one clip in float32 (no --segments, no --precision int8)", file=sys.stderr)
            return 1
        asr = "faster-whisper" if args.asr in ("auto", "shared") else args.asr
        return onnx_main(["--onnx", args.checkpoint, "--audio", args.audio, "--asr", asr]
                         + (["--text", args.text] if args.text is not None else []) + (["--json"] if args.json else []))
    try:
        recognizer = EmotionRecognizer(args.checkpoint, args.asr, args.device, precision=args.precision)
        if args.segments:
            result = command_result(recognizer, args.audio, SegmentConfig(max_seconds=60 * args.max_minutes),
                                    args.speakers, args.normalise_speakers, not args.no_sentences)
            write_outputs(result, recognizer.config.labels, args.vtt, args.csv)
            print_result(result, args.json)
            return 0
        result = recognizer.predict(args.audio, args.text)
    except (AudioError, InputError, CheckpointError, ASRError, VoicePrintError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        (first, p1), (second, p2) = result.top_two
        verdict = f"not sure: {first} {p1:.2f} or {second} {p2:.2f}" if result.not_sure else result.label
        print(f"{verdict}  ({', '.join(f'{k} {v:.2f}' for k, v in result.probabilities.items())})")
        print(f"transcript ({result.transcript_source}): {result.transcript}")
        if result.w2 is not None:
            print(f"W2(speech, text) = {result.w2:.3f}, Sim = {result.sim:.3f}")
        for note in result.warnings:
            print(f"note: {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
