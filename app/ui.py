"""The Gradio app: record or upload speech, see the predicted emotion and why.

Thin on purpose: mgcma.predict does the inference, analysis.views draws the figures.
"""
from __future__ import annotations

import csv
import time
from pathlib import Path

import gradio as gr

from analysis.reference import FILE as REFERENCE_FILE, ReferenceMap
from analysis.views import prediction_views
from mgcma.asr import ASRError
from mgcma.audio import AudioError
from mgcma.predict import EmotionRecognizer, InputError

EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
FAILURES = (AudioError, InputError, ASRError)

INTRO = """
# Emotion from speech and words
Record or upload a short English sentence. A speech recogniser (Whisper) writes down the words,
and a model that listens to **how** it is said and reads **what** is said predicts the emotion:
neutral, happy, angry or sad. The transcript is editable: change the words and run it again to see
how much they matter.

<small>Model: MGCMA (multi-granularity cross-modal alignment, ICASSP 2025), the small bundled
version trained on a synthetic corpus of eSpeak voices. It has never heard human voices: expect it
to judge robot-like speech best.</small>
"""

EXPLAIN = """
<small>**How to read the views.** *Words vs. time*: which words each moment of speech attends to,
and which moments each word attends to. *Gaussians*: the model turns the speech and the text each
into a cloud of possibilities (a Gaussian); W2 is the distance between the two clouds (smaller: voice
and words agree). *Map*: every point is one utterance of a reference set, dark = its speech, light =
its words, coloured by emotion; the stars show where this clip's speech and words land.</small>
"""


def examples() -> list[list[str]]:
    table = EXAMPLES_DIR / "examples.csv"
    if not table.is_file():
        return []
    with open(table, newline="") as f:
        return [[str(EXAMPLES_DIR / row["file"]), row["text"]] for row in csv.DictReader(f)]


def timing_line(timings: dict) -> str:
    names = {"load": "audio", "asr": "speech recognition", "model": "model", "figures": "figures"}
    return "<small>" + " · ".join(f"{names.get(k, k)} {v:.0f} ms" for k, v in timings.items()) + "</small>"


class App:
    def __init__(self, recognizer: EmotionRecognizer):
        self.recognizer = recognizer
        ref_dir = recognizer.checkpoint
        self.reference = ReferenceMap.load(ref_dir) if (ref_dir / REFERENCE_FILE).is_file() else None

    def transcribe(self, audio_path):
        try:
            wave, _ = self.recognizer.load(audio_path)
            text = self.recognizer.transcribe(wave)
        except FAILURES as e:
            raise gr.Error(str(e)) from None
        if not text:
            gr.Warning("The speech recogniser heard no words. Type the transcript yourself.")
        return text

    def analyse(self, audio_path, text):
        try:
            pred = self.recognizer.predict(audio_path, text)
        except FAILURES as e:
            raise gr.Error(str(e)) from None
        for note in pred.warnings:
            gr.Warning(note)
        start = time.perf_counter()
        heatmap, gaussians, umap = prediction_views(pred, self.recognizer.model.frame_seconds, self.reference)
        pred.timings_ms["figures"] = 1000 * (time.perf_counter() - start)
        summary = f"**{pred.label}** ({100 * pred.probabilities[pred.label]:.0f} %)"
        if pred.w2 is not None:
            summary += f" · W2(speech, text) = {pred.w2:.2f}, Sim = {pred.sim:.2f}"
        return (pred.probabilities, pred.transcript, heatmap, gaussians, umap,
                summary + "\n\n" + timing_line(pred.timings_ms))

    def predict_api(self, audio_file, text):
        """audio file + optional text -> label, probabilities, transcript, W2."""
        path = audio_file if isinstance(audio_file, (str, type(None))) else getattr(audio_file, "name", audio_file)
        try:
            return self.recognizer.predict(path, text).to_json()
        except FAILURES as e:
            raise gr.Error(str(e)) from None

    def build(self) -> gr.Blocks:
        with gr.Blocks(title="Emotion from speech and words (MGCMA)") as demo:
            gr.Markdown(INTRO)
            with gr.Row():
                with gr.Column(scale=2):
                    audio = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Speech")
                    text = gr.Textbox(label="Transcript (filled in by Whisper; edit it if you like)", lines=2,
                                      placeholder="leave empty to let Whisper transcribe the clip")
                    with gr.Row():
                        transcribe = gr.Button("Transcribe only")
                        run = gr.Button("Recognise emotion", variant="primary", elem_id="run")
                    if examples():
                        gr.Examples(examples(), inputs=[audio, text], label="Examples (synthetic voices)",
                                    cache_examples=False)
                with gr.Column(scale=3):
                    label = gr.Label(num_top_classes=len(self.recognizer.config.labels), label="Predicted emotion",
                                     elem_id="label")
                    summary = gr.Markdown(elem_id="summary")
            heatmap = gr.Plot(label="Words vs. time: token cross-attention", elem_id="heatmap")
            with gr.Row():
                gaussians = gr.Plot(label="Speech and text Gaussians", elem_id="gaussians")
                umap = gr.Plot(label="Map of utterances", elem_id="umap")
            gr.Markdown(EXPLAIN)
            outputs = [label, text, heatmap, gaussians, umap, summary]
            run.click(self.analyse, [audio, text], outputs, api_name="analyse")
            transcribe.click(self.transcribe, [audio], [text], api_name="transcribe")
            # the named API: a file and optional text in, JSON out (gradio_client, scripts)
            api_file, api_text = gr.File(visible=False), gr.Textbox(visible=False)
            api_out = gr.JSON(visible=False)
            api_button = gr.Button(visible=False)
            api_button.click(self.predict_api, [api_file, api_text], api_out, api_name="predict")
        return demo


def create_app(checkpoint, asr: str = "faster-whisper", device: str = "auto", concurrency: int = 2) -> gr.Blocks:
    """Load the model and the ASR once, build the UI, queue requests."""
    demo = App(EmotionRecognizer(checkpoint, asr, device)).build()
    return demo.queue(default_concurrency_limit=concurrency, max_size=64)
