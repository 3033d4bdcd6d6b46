"""The app's long-recording section: a call, a meeting or a monologue cut into turns, each with its
speaker and emotion; a timeline with one lane per speaker, a table, a summary per speaker, the
turns as JSON, CSV and WebVTT to download, and any turn explained through the clip views above.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import gradio as gr
import soundfile as sf

from mgcma.analysis.timeline import timeline_plotly, verdict
from mgcma.encoders.voice_print import VoicePrint, VoicePrintError
from mgcma.infer.recording import recording_result, renderings
from mgcma.audio import SAMPLE_RATE
from mgcma.infer.segments import SegmentConfig, read_span

EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
SPEAKER_CHOICES = [("find them", "auto"), ("2", "2"), ("3", "3"), ("4", "4"), ("one voice: no turns", "off")]
HEADERS = ["#", "start s", "end s", "speaker", "emotion", "%", "words"]
STAGES = {"utterances": "listening", "speakers": "telling the voices apart", "emotions": "listening to each turn"}


def segment_name(i: int, s: dict) -> str:
    who = f"{s['speaker']}, " if s.get("speaker") else ""
    return f"{i + 1}: {s['start']:.1f}-{s['end']:.1f} s, {who}{s['label']}: {s['text'][:40]}"


def summary_markdown(speakers: list[dict]) -> str:
    lines = []
    for p in speakers:
        shares = ", ".join(f"{k} {v:.0%}" for k, v in sorted(p["emotions"].items(), key=lambda kv: -kv[1]) if v)
        lines.append(f"- **{p['speaker']}**: {p['seconds']:.0f} s in {p['turns']} turn(s): {shares}; "
                     f"not sure {p['not_sure']:.0%} of the time")
    return "\n".join(lines)


def downloads(result: dict, labels: list[str], name: str) -> list[str]:
    """The turns as JSON, CSV and WebVTT files in a folder of their own."""
    folder = Path(tempfile.mkdtemp(prefix="mgcma-"))
    paths = []
    for suffix, text in renderings(result, labels).items():
        paths.append(folder / f"{name}{suffix}")
        paths[-1].write_text(text, encoding="utf-8")
    return [str(path) for path in paths]


class LongRecording:
    def __init__(self, recognizer, segment_config: SegmentConfig, explain_clip, clip_outputs: int, word_timer,
                 failures: tuple):
        """explain_clip((rate, wave), text) yields the clip views' `clip_outputs` updates; word_timer() gives
        Whisper's word timer (or None) for cutting long turns at their sentence ends."""
        self.recognizer, self.segment_config = recognizer, segment_config
        self.explain_clip, self.clip_outputs = explain_clip, clip_outputs
        self.word_timer, self.failures = word_timer, failures
        self._voice_print = None

    @property
    def voice_print(self) -> VoicePrint:
        if self._voice_print is None:
            self._voice_print = VoicePrint.load()
        return self._voice_print

    def result(self, audio_path: str, speakers: str, progress) -> dict:
        off = speakers == "off"
        return recording_result(self.recognizer, audio_path, self.segment_config, None if off else speakers,
                                voice_print=None if off else self.voice_print, word_timer=None if off else self.word_timer(),
                                progress=lambda share, stage: progress(share, desc=STAGES[stage]))

    def analyse(self, audio_path, speakers="auto", progress=gr.Progress()):
        """A long recording -> its timeline, table, per-speaker summary, downloads and the choice of a turn to explain."""
        if not audio_path:
            raise gr.Error("no recording: upload a file")
        try:
            result = self.result(audio_path, speakers or "auto", progress)
        except (*self.failures, VoicePrintError, ValueError) as e:
            raise gr.Error(str(e)) from None
        segments = result["segments"]
        notes = result.get("notes", [])
        for note in notes:
            gr.Warning(note[0].upper() + note[1:] + ".")
        if not segments and not notes:
            gr.Warning("No speech was found in this recording.")
        rows = [[i + 1, s["start"], s["end"], s.get("speaker", ""), verdict(s, percent=False),
                 round(100 * s["probabilities"][s["label"]]), s["text"]] for i, s in enumerate(segments)]
        labels = self.recognizer.config.labels
        figure = timeline_plotly(segments, labels) if segments else None
        files = downloads(result, labels, Path(audio_path).stem) if segments else None
        return (figure, rows, summary_markdown(result.get("speakers", [])),
                gr.update(choices=[segment_name(i, s) for i, s in enumerate(segments)], value=None),
                dict(path=audio_path, segments=segments), files)

    def explain(self, choice, recording):
        """One turn of the recording through the full single-clip analysis."""
        if not choice or not recording or not recording["segments"]:   # the choices were just reset
            yield tuple(gr.update() for _ in range(self.clip_outputs))
            return
        s = recording["segments"][int(choice.split(":")[0]) - 1]
        yield from self.explain_clip((SAMPLE_RATE, read_span(recording["path"], s["start"], s["end"])), s["text"])

    def build(self, clip_outputs) -> list:
        gr.Markdown("## A long recording\nA call, a meeting, an interview, yourself talking for minutes: it is cut "
                    "into turns where the voice pauses or the speaker changes, and each turn gets its speaker and "
                    "its emotion.")
        with gr.Row():
            audio = gr.Audio(sources=["upload"], type="filepath", label="Recording (up to "
                             f"{self.segment_config.max_seconds / 60:.0f} minutes)", elem_id="long_audio")
            with gr.Column():
                speakers = gr.Radio(SPEAKER_CHOICES, value="auto", label="Speakers", elem_id="long_speakers")
                run = gr.Button("Analyse the whole recording", variant="primary", elem_id="run_long")
        examples_at = gr.Column()
        timeline = gr.Plot(label="Emotion timeline, one lane per speaker", elem_id="timeline")
        summary = gr.Markdown(elem_id="speaker_summary")
        table = gr.Dataframe(headers=HEADERS, label="Turns", elem_id="segments", wrap=True)
        files = gr.File(label="The turns as JSON, CSV and WebVTT subtitles", file_count="multiple",
                        elem_id="long_files")
        choice = gr.Dropdown(label="Explain one turn (its heatmap and Gaussians appear above)", choices=[],
                             elem_id="segment_choice")
        recording = gr.State(None)
        outputs = [timeline, table, summary, choice, recording, files]
        conversations = sorted(EXAMPLES_DIR.glob("conversation-*.flac"))
        with examples_at:
            if conversations:
                gr.Examples([[str(p), "auto"] for p in conversations], inputs=[audio, speakers], outputs=outputs,
                            fn=self.analyse, run_on_click=True, cache_examples=False, elem_id="examples_long",
                            example_labels=[f"{p.stem.replace('-', ' ')} ({sf.info(p).duration:.0f} s)"
                                            for p in conversations],
                            label="A conversation of three RAVDESS actors the model never heard (CC BY-NC-SA 4.0)")
        run.click(self.analyse, [audio, speakers], outputs, api_name="segments")
        choice.change(self.explain, [choice, recording], clip_outputs)
        return outputs
