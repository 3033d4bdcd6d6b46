"""A long recording, for the command line (`python -m mgcma.predict --audio REC --segments`) and the
app alike: its utterances, or with speakers its speaker turns, printed and written as JSON, CSV or WebVTT."""
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


def recording_result(recognizer, path: str, cfg: SegmentConfig, speakers: str | None = None, normalise: bool = False,
                     voice_print: VoicePrint | None = None, word_timer=None, progress=None) -> dict:
    """{"segments": [...]} and, with `speakers` (auto|N), {"speakers": per-speaker summary, "notes": [...]}.
    word_timer: Whisper's word timer to cut long turns at their sentence ends (None: not cut).
    progress(share of the work done, 0-1, stage) as it goes."""
    total = max(sf.info(str(path)).duration, 1e-9)
    report = progress or (lambda share, stage: None)
    if speakers is None:
        return {"segments": classify_segments(recognizer, path, cfg,
                                              lambda done, _: report(min(done / total, 1.0), "utterances"))}
    speaker_cfg = SpeakerConfig(speakers=speaker_count(speakers), normalise=normalise)

    def stage_share(stage: str, done: float):   # telling the voices apart takes about a tenth of the time
        report(min(0.1 * done / total if stage == "speakers" else 0.1 + 0.9 * done / total, 1.0), stage)
    return conversation(recognizer, voice_print or VoicePrint.load(), path, speaker_cfg, cfg, word_timer, stage_share)


def command_result(recognizer, path: str, cfg: SegmentConfig, speakers: str | None = None,
                   normalise: bool = False, sentences: bool = True) -> dict:
    """`recording_result` with a progress bar on stderr, as the command runs it."""
    timer = WordTimer() if speakers is not None and sentences and recognizer.config.uses_text else None
    with tqdm(total=100, desc="recording", unit="%", file=sys.stderr, bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} %") as bar:
        return recording_result(recognizer, path, cfg, speakers, normalise, word_timer=timer,
                                progress=lambda share, _: bar.update(100 * share - bar.n))


def renderings(result: dict, labels: list[str]) -> dict[str, str]:
    """The result as the text of a .json, a .csv and a .vtt file."""
    return {".json": json.dumps(result, indent=2), ".csv": to_csv(result["segments"], labels),
            ".vtt": to_vtt(result["segments"])}


def write_outputs(result: dict, labels: list[str], vtt: str | None, csv_path: str | None) -> None:
    files = renderings(result, labels)
    for path, suffix in ((vtt, ".vtt"), (csv_path, ".csv")):
        if path:
            Path(path).write_text(files[suffix], encoding="utf-8")


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
