"""A recording's timeline as files people open elsewhere: WebVTT subtitles (a voice tag per
speaker, the emotion and the words: any video player shows them) and a CSV table."""
from __future__ import annotations

import csv
import io


def timestamp(seconds: float) -> str:
    """WebVTT's hh:mm:ss.ttt."""
    ms = int(round(max(seconds, 0.0) * 1000))
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def escaped(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def cue_words(row: dict) -> str:
    verdict = f"not sure, {row['label']}?" if row.get("not_sure") else row["label"]
    return f"[{verdict} {max(row['probabilities'].values()):.0%}] {escaped(row.get('text') or '')}".rstrip()


def to_vtt(rows: list[dict]) -> str:
    """One cue per turn; `<v Speaker N>` where the rows carry speakers."""
    lines = ["WEBVTT", ""]
    for i, row in enumerate(rows, 1):
        voice = f"<v {escaped(row['speaker'])}>" if row.get("speaker") else ""
        lines += [str(i), f"{timestamp(row['start'])} --> {timestamp(row['end'])}", voice + cue_words(row), ""]
    return "\n".join(lines)


def to_csv(rows: list[dict], labels: list[str]) -> str:
    """One line per turn: times, speaker, answer, its confidence, "not sure", each class's probability, the words."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["turn", "start", "end", "speaker", "label", "confidence", "not_sure"]
                    + [f"p_{k}" for k in labels] + ["text"])
    for i, row in enumerate(rows, 1):
        writer.writerow([i, row["start"], row["end"], row.get("speaker", ""), row["label"],
                         round(max(row["probabilities"].values()), 4), int(bool(row.get("not_sure")))]
                        + [round(row["probabilities"][k], 4) for k in labels] + [row.get("text", "")])
    return out.getvalue()
