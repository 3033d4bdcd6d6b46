"""Prepare data once, so that training runs skip parsing and synthesis.

  python -m mgcma.prepare iemocap IEMOCAP_ROOT --out manifest.csv
  python -m mgcma.prepare ravdess DIR --out ravdess.csv [--classes 4|8] [--test-actors 19-24]
  python -m mgcma.prepare emodb|emovo|nemo DIR --out M.csv [--classes 4|all] [--test-speakers S1,S2] [--split train]
  python -m mgcma.prepare folder DIR --out M.csv --label-from parent|grandparent|stem|regex:PATTERN
                          [--speaker-from ...] [--label-map W=angry,F=happy] [--transcribe]
  python -m mgcma.prepare goemotions DIR --out goemotions.csv
  python -m mgcma.prepare dailydialog DIR --out dailydialog.csv [--drop-train-twins]
  python -m mgcma.prepare synthetic --out DIR [--size N] [--seed S]
  python -m mgcma.prepare manifest IN.csv --out OUT.csv [--asr SPEC]   (fills empty transcripts)
"""
from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

from tqdm import tqdm

from .audio import load_audio
from .data.corpora import (ACTED_CORPORA, parse_actors, parse_label_map, read_acted, read_dailydialog, read_folder,
                           read_goemotions, read_ravdess)
from .data.records import read_iemocap, read_manifest, write_manifest
from .data.synthetic import SyntheticConfig, generate
from .infer.asr import load_asr


def fill_transcripts(records, asr_spec: str, every: bool = False):
    """Transcribe the records whose text is empty, or `every` record with audio (what a recogniser
    hears in place of what was typed); progress bar. The others are kept as they are."""
    missing = [r for r in records if r.path and (every or not r.text.strip())]
    if missing:
        asr = load_asr(asr_spec)
        for r in tqdm(missing, desc="transcribing", unit="utt"):
            r.text = asr(load_audio(r.path))
    print(f"{len(missing)} of {len(records)} transcripts {'written' if every else 'filled'} by {asr_spec}")
    return records


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mgcma.prepare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="source", required=True)
    iemocap = sub.add_parser("iemocap", help="parse IEMOCAP_full_release/ into a manifest")
    iemocap.add_argument("root", type=Path, help="the IEMOCAP_full_release folder")
    iemocap.add_argument("--out", type=Path, default=Path("iemocap_manifest.csv"), help="manifest (.csv or .jsonl)")
    ravdess = sub.add_parser("ravdess", help="RAVDESS speech: the shared folder (manifest.csv) or the original WAVs")
    ravdess.add_argument("root", type=Path, help="folder with manifest.csv, or with Actor_XX/03-01-...wav files")
    ravdess.add_argument("--out", type=Path, default=Path("ravdess.csv"), help="manifest (.csv or .jsonl)")
    ravdess.add_argument("--classes", type=int, choices=[4, 8], default=4, help="4: neutral/happy/angry/sad (calm dropped)")
    ravdess.add_argument("--test-actors", default="19-24", help="actors whose rows get split=test (the rest: train)")
    for name in ACTED_CORPORA:
        acted = sub.add_parser(name, help=f"{name.upper()} speech (the folder with manifest.csv), speech-only rows")
        acted.add_argument("root", type=Path, help="folder with manifest.csv and audio/")
        acted.add_argument("--out", type=Path, default=Path(f"{name}.csv"), help="manifest (.csv or .jsonl)")
        acted.add_argument("--classes", choices=["4", "all"], default="4", help="4: neutral/happy/angry/sad")
        acted.add_argument("--test-speakers", default="", help="speakers whose rows get split=test (the rest: train)")
        acted.add_argument("--split", choices=["", "train"], default="", help="train: every other row trains (mixed "
                           "into a default with --protocol split); empty: no split, folds by speaker")
    folder = sub.add_parser("folder", help="any folder of clips whose label (and speaker) are in their paths")
    folder.add_argument("root", type=Path, help="the corpus folder (searched recursively for wav/flac/ogg/mp3)")
    folder.add_argument("--out", type=Path, required=True, help="manifest (.csv or .jsonl)")
    folder.add_argument("--label-from", default="parent", help="parent | grandparent | stem | regex:PATTERN (first group)")
    folder.add_argument("--speaker-from", default=None, help="the same choices; without it no split can be speaker-independent")
    folder.add_argument("--label-map", default="", help="rename labels: FROM=TO,... (TO empty drops those clips)")
    folder.add_argument("--transcribe", default=None, metavar="ASR", help="fill the transcripts with this ASR (e.g. faster-whisper)")
    goemotions = sub.add_parser("goemotions", help="GoEmotions text (train/validation/test.csv), text-only rows")
    goemotions.add_argument("root", type=Path, help="folder with train.csv, validation.csv, test.csv")
    goemotions.add_argument("--out", type=Path, default=Path("goemotions.csv"), help="manifest (.csv or .jsonl)")
    daily = sub.add_parser("dailydialog", help="DailyDialog turns (train/validation/test.csv), text-only rows")
    daily.add_argument("root", type=Path, help="folder with train.csv, validation.csv, test.csv")
    daily.add_argument("--out", type=Path, default=Path("dailydialog.csv"), help="manifest (.csv or .jsonl)")
    daily.add_argument("--drop-train-twins", action="store_true", help="leave out test turns that occur verbatim in train")
    daily.add_argument("--context", type=int, default=0, metavar="N",
                       help="each turn's text followed by the N turns before it in its dialogue, nearest first ([SEP] between)")
    synth = sub.add_parser("synthetic", help="synthesise the offline eSpeak NG corpus")
    synth.add_argument("--out", type=Path, default=Path("data/synthetic"), help="output folder")
    synth.add_argument("--size", type=int, default=SyntheticConfig.size, help="number of utterances")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--speakers", type=int, default=SyntheticConfig.n_speakers, help="voices (at most 16)")
    synth.add_argument("--folds", type=int, default=SyntheticConfig.n_folds, help="speaker groups for cross-validation")
    manifest = sub.add_parser("manifest", help="check a manifest and fill its empty transcripts with the ASR")
    manifest.add_argument("path", type=Path, help="manifest (.csv or .jsonl)")
    manifest.add_argument("--out", type=Path, required=True, help="the completed manifest")
    manifest.add_argument("--asr", default="faster-whisper", help="faster-whisper[:DIR] | openai-whisper:NAME_OR_PATH")
    manifest.add_argument("--retranscribe", action="store_true",
                          help="replace every clip's transcript with the ASR's (the words as a recogniser hears them)")
    args = parser.parse_args(argv)
    start = time.time()
    try:
        if args.source == "iemocap":
            records = read_iemocap(args.root)
            path = write_manifest(records, args.out)
        elif args.source == "ravdess":
            records = read_ravdess(args.root, args.classes, parse_actors(args.test_actors))
            path = write_manifest(records, args.out)
        elif args.source in ACTED_CORPORA:
            records = read_acted(args.root, args.source, args.classes, set(filter(None, args.test_speakers.split(","))),
                                 args.split)
            path = write_manifest(records, args.out)
        elif args.source == "folder":
            records = read_folder(args.root, args.label_from, args.speaker_from, parse_label_map(args.label_map),
                                  report=lambda msg: print(msg, file=sys.stderr))
            if args.transcribe:
                records = fill_transcripts(records, args.transcribe)
            path = write_manifest(records, args.out)
        elif args.source == "dailydialog":
            records = read_dailydialog(args.root, args.drop_train_twins, args.context,
                                       report=lambda msg: print(msg, file=sys.stderr))
            path = write_manifest(records, args.out)
        elif args.source == "goemotions":
            records = read_goemotions(args.root)
            path = write_manifest(records, args.out)
        elif args.source == "manifest":
            records = fill_transcripts(read_manifest(args.path), args.asr, args.retranscribe)
            path = write_manifest(records, args.out)
        else:
            cfg = SyntheticConfig(size=args.size, seed=args.seed, n_speakers=args.speakers, n_folds=args.folds)
            path = generate(args.out, cfg)
            records = read_manifest(path)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    counts = Counter(r.label for r in records)
    print(f"wrote {path}: {len(records)} utterances, {len({r.speaker for r in records})} speakers, "
          f"classes {dict(sorted(counts.items()))} ({time.time() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
