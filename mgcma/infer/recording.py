"""A long recording from the command line (`python -m mgcma.predict --audio REC --segments`): its
utterances, or with `--speakers` its speaker turns, printed and written as JSON, CSV or WebVTT."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import soundfile as sf
from tqdm import tqdm

from .conversation import SpeakerConfig, conversation
from ..encoders.voice_print import VoicePrint
from .segments import SegmentConfig, classify_segments
from .subtitles import to_csv, to_vtt
from .word_timer import WordTimer


def speaker_count(spec: str | None) -> int | None:
    """--speakers auto|N -> None (estimated) or N."""
    if spec in (None, "auto"):
        return None
    if not spec.isdigit() or int(spec) < 1:
        raise ValueError(f"--speakers must be auto or a number of speakers (1 or more); got {spec!r}")
    return int(spec)


def recording_result(recognizer, path: str, cfg: SegmentConfig, speakers: str | None = None,
                     normalise: bool = False, sentences: bool = True) -> dict:
    """{"segments": [...]} and, with `speakers`, {"speakers": per-speaker summary, "notes": [...]}."""
    total = sf.info(str(path)).duration
    with tqdm(total=100, desc="recording", unit="%", file=sys.stderr, bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} %") as bar:
        def progress(done: float, *_):
            bar.update(100 * min(done / max(total, 1e-9), 1.0) - bar.n)
        if speakers is None:
            return {"segments": classify_segments(recognizer, path, cfg, progress)}
        speaker_cfg = SpeakerConfig(speakers=speaker_count(speakers), normalise=normalise)
        timer = WordTimer() if sentences and recognizer.config.uses_text else None
        def stage_progress(stage: str, done: float, _):   # telling the voices apart takes about a tenth of the time
            progress(0.1 * done if stage == "speakers" else 0.1 * total + 0.9 * done)
        return conversation(recognizer, VoicePrint.load(), path, speaker_cfg, cfg, timer, stage_progress)


def write_outputs(result: dict, labels: list[str], vtt: str | None, csv_path: str | None) -> None:
    if vtt:
        Path(vtt).write_text(to_vtt(result["segments"]), encoding="utf-8")
    if csv_path:
        Path(csv_path).write_text(to_csv(result["segments"], labels), encoding="utf-8")


def print_result(result: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result, indent=2))
        return
    for s in result["segments"]:
        who = f"{s['speaker']:<10}  " if "speaker" in s else ""
        print(f"{s['start']:8.2f}-{s['end']:8.2f} s  {who}{s['label']:<8}  {s['text']}")
    for p in result.get("speakers", []):
        shares = ", ".join(f"{k} {v:.0%}" for k, v in p["emotions"].items() if v)
        print(f"{p['speaker']}: {p['seconds']:.1f} s in {p['turns']} turns; {shares}; "
              f"mean confidence {p['mean_confidence']:.2f}, not sure {p['not_sure']:.0%} of the time")
    for note in result.get("notes", []):
        print(f"note: {note}")
