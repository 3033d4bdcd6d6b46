"""The Gradio app: record or upload speech, see the predicted emotion and why.

Thin on purpose: mgcma.predict does the inference, analysis.views draws the figures.
"""
from __future__ import annotations

import csv
import tempfile
import threading
import time

import gradio as gr
import soundfile as sf

from mgcma.analysis.reference import FILE as REFERENCE_FILE, ReferenceMap
from mgcma.analysis.views import placeholder_plotly, prediction_views
from mgcma.infer.asr import ASRError
from mgcma.audio import SAMPLE_RATE, AudioError
from mgcma.calibration import top_two
from mgcma.infer.live import LiveConfig, LiveTake, live_label
from mgcma.infer.recognizer import EmotionRecognizer, InputError
from mgcma.infer.segments import SegmentConfig
from mgcma.infer.word_timer import WordTimer

from .recording import EXAMPLES_DIR, LongRecording

FAILURES = (AudioError, InputError, ASRError)

INTRO = """
# Emotion from speech and words
Record or upload a short English sentence. A speech recogniser (Whisper) writes down the words,
and a model that listens to **how** it is said and reads **what** is said predicts the emotion:
neutral, happy, angry or sad. The transcript is editable: change the words and run it again to see
how much they matter.

It answers three times: from the **voice** alone, from the **words** alone, and from **both**, and
says when voice and words disagree ("I'm fine" said angrily). Where it is unsure, it says so.
Try the real voices below first: actors the model never heard.

<small>Model: MGCMA (multi-granularity cross-modal alignment, ICASSP 2025) on Whisper's audio encoder
and MiniLM, five heads and a reader of the voice's statistics answering together, trained on acted
speech in English (RAVDESS, 18 actors), German (EmoDB) and Italian (EMOVO) and on English Reddit
comments (GoEmotions). Acted speech is not
everyday speech: read its model card before trusting it. Non-commercial research use only (the
RAVDESS licence, CC BY-NC-SA 4.0; EmoDB and EMOVO are released for research).</small>
"""

EXPLAIN = """
<small>**How to read the views.** *Words vs. time*: which words each moment of speech attends to,
and which moments each word attends to. *Gaussians*: the model turns the speech and the text each
into a cloud of possibilities (a Gaussian); W2 is the distance between the two clouds (smaller: voice
and words agree). *Map*: every point is one utterance of a reference set, dark = its speech, light =
its words, coloured by emotion; the stars show where this clip's speech and words land.</small>
"""


GALLERIES = {"real": "Real voices: RAVDESS actors the model never trained on (CC BY-NC-SA 4.0, "
                     "see app/examples/ATTRIBUTION.md)",
             "synthetic": "Words and voice disagree: synthetic eSpeak voices made by this project"}


def example_rows(gallery: str | None = None) -> list[dict]:
    """The rows of app/examples/examples.csv in one gallery ("real" | "synthetic"), or all."""
    table = EXAMPLES_DIR / "examples.csv"
    if not table.is_file():
        return []
    with open(table, newline="") as f:
        return [row for row in csv.DictReader(f) if gallery is None or row.get("gallery", "synthetic") == gallery]


def examples(gallery: str | None = None) -> list[list[str]]:
    """[[clip, text], ...] of one gallery, or of all."""
    return [[str(EXAMPLES_DIR / row["file"]), row["text"]] for row in example_rows(gallery)]


def example_captions(gallery: str | None = None) -> list[str]:
    """What each example's button says: who speaks and how, not a file name."""
    def caption(row):
        if row.get("gallery") == "real":
            return f"{row['speaker'].replace('actor', 'actor ')}, {row['label']}"
        return f"{row['label']} voice: \u201c{row['text']}\u201d"
    return [caption(row) for row in example_rows(gallery)]


MODALITY_NAMES = {"speech": "voice only", "text": "words only", "both": "voice and words"}


def answers_markdown(answers: dict[str, dict[str, float]], not_sure_below: float = 0.0) -> str:
    """The three answers side by side, each marked "not sure" below the model's threshold, and a
    disagreement between voice and words called out when both are sure of their answer."""
    if not answers:
        return ""
    top = {m: max(p, key=p.get) for m, p in answers.items()}
    sure = {m: answers[m][top[m]] >= not_sure_below for m in answers}
    cells = [f"**{MODALITY_NAMES[m]}**: {top[m]} ({100 * answers[m][top[m]]:.0f} %{'' if sure[m] else ', not sure'})"
             for m in ("speech", "text", "both") if m in answers]
    line = " · ".join(cells)
    if "speech" in top and "text" in top and top["speech"] != top["text"] and sure["speech"] and sure["text"]:
        line += (f"\n\n⚠ **The voice and the words disagree**: the words say *{top['text']}*, "
                 f"the voice says *{top['speech']}*.")
    return line


def verdict_markdown(probabilities: dict[str, float], not_sure: bool, threshold: float | None = None) -> str:
    """The answer, or "not sure" with the top two when the top probability is below the model's
    threshold (explained where `threshold` is given)."""
    (first, p1), (second, p2) = top_two(probabilities)
    if not not_sure:
        return f"**{first}** ({100 * p1:.0f} %)"
    why = "" if threshold is None else (f" <small>(answers below {100 * threshold:.0f} % were more often wrong "
                                        "than right on validation)</small>")
    return f"**not sure**: {first} ({100 * p1:.0f} %) or {second} ({100 * p2:.0f} %){why}"


def timing_line(timings: dict) -> str:
    names = {"load": "audio", "asr": "speech recognition", "model": "model", "figures": "figures"}
    return "<small>" + " · ".join(f"{names.get(k, k)} {v:.0f} ms" for k, v in timings.items()) + "</small>"


WORDS_SOURCES = {"asr": "heard by Whisper", "typed": "typed", "example": "the example's own words"}
NO_WORDS_YET = "Empty: Whisper writes this clip's words. Type here to give your own."
CLIP_OUTPUTS = 7   # label, transcript, heatmap, gaussians, map, summary, words
LONG_OUTPUTS = 6   # timeline, table, speaker summary, turn choice, recording, downloads


def words_source(text: str, words: dict | None) -> str:
    """Where the words given with a clip came from: written into the box for this clip by Whisper or
    an example (`words` remembers which), or typed by the person."""
    return words["source"] if words and words.get("text") == text else "typed"


def words_info(words: dict | None):
    """The line under the transcript box: where its words came from (an update of the box's info
    only, sent to the page when `words` changes, so that the API's transcript stays a string)."""
    source = (words or {}).get("source")
    return gr.update(info=f"Words: {WORDS_SOURCES[source]}" if source else NO_WORDS_YET)


class App:
    def __init__(self, recognizer: EmotionRecognizer, segment_config: SegmentConfig = SegmentConfig(),
                 live_config: LiveConfig = LiveConfig()):
        self.recognizer = recognizer
        self.segment_config, self.live_config = segment_config, live_config
        ref_dir = recognizer.checkpoint
        self.reference = ReferenceMap.load(ref_dir) if (ref_dir / REFERENCE_FILE).is_file() else None
        self._word_timer = None
        self._views_warm = threading.Lock()
        self.long = LongRecording(recognizer, segment_config, self.analyse, CLIP_OUTPUTS, lambda: self.word_timer,
                                  FAILURES)

    def warm_views(self):
        """Once, when the page is first opened: one example through the views, so that the first click
        does not wait for Whisper's word timer to load and the figures' first set-up (docs/app.md)."""
        if not self._views_warm.acquire(blocking=False):
            return
        clip, text = (examples() or [[None, ""]])[0]
        if clip is not None:
            self.views(self.recognizer.predict(clip, text))

    @property
    def word_timer(self) -> WordTimer | None:
        """Loaded on first use: the first request does not wait for it (docs/performance.md)."""
        if self._word_timer is None and self.recognizer.config.modality == "both":
            self._word_timer = WordTimer()
        return self._word_timer

    def transcribe(self, audio_path):
        try:
            wave, _ = self.recognizer.load(audio_path)
            text, _ = self.recognizer.transcribe(wave)
        except FAILURES as e:
            raise gr.Error(str(e)) from None
        if not text:
            gr.Warning("The speech recogniser heard no words. Type the transcript yourself.")
        return text, dict(text=text, source="asr")

    def analyse(self, audio_path, text, words=None):
        """One clip and its words (empty: Whisper's) -> the answer as soon as the model has answered,
        then the same with its three views. Yields (label, transcript, heatmap, gaussians, map, summary,
        words), `words` remembering where the transcript came from."""
        text = (text or "").strip()
        try:
            pred = self.recognizer.predict(audio_path, text)
        except FAILURES as e:
            raise gr.Error(str(e)) from None
        for note in pred.warnings:
            gr.Warning(note)
        if pred.transcript_source == "user":
            source = words_source(text, words)
        else:
            source = "asr" if pred.transcript else None
        heard, summary = dict(text=pred.transcript, source=source), self.summary(pred)
        yield (pred.probabilities, pred.transcript, None, None, None,
               summary + "\n\n<small>drawing the views...</small>", heard)
        heatmap, gaussians, umap = self.views(pred)
        yield (pred.probabilities, pred.transcript, heatmap, gaussians, umap,
               summary + "\n\n" + timing_line(pred.timings_ms), heard)

    def analyse_example(self, audio_path, text):
        """An example clicked: its clip with its own words, run at once."""
        yield from self.analyse(audio_path, text, dict(text=(text or "").strip(), source="example"))

    def summary(self, pred) -> str:
        """The verdict, W2 and how close it is on the reference set, and the three answers."""
        summary = verdict_markdown(pred.probabilities, pred.not_sure, self.recognizer.config.not_sure_below)
        if pred.w2 is not None:
            summary += f" · W2(speech, text) = {pred.w2:.2f}, Sim = {pred.sim:.2f}"
            closeness = self.reference.w2_percentiles(pred.w2) if self.reference is not None else None
            if closeness is not None:
                summary += (f"\n\n<small>W2 {pred.w2:.2f} is smaller than {closeness[1]:.0f} % of mismatched "
                            f"voice-text pairs of the reference set, and than {closeness[0]:.0f} % of matched ones "
                            "(the higher, the more voice and words agree).</small>")
        answers = answers_markdown(pred.answers, self.recognizer.config.not_sure_below)
        return summary + ("\n\n" + answers if answers else "")

    def views(self, pred):
        """-> (heatmap, gaussians, map), the word timings outlined on the heatmap; their time in
        pred.timings_ms["figures"]."""
        start = time.perf_counter()
        timed = None
        if self.word_timer is not None and pred.transcript:   # when each word was spoken, for the heatmap
            try:
                timed = self.word_timer.align(pred.wave, pred.transcript)
            except Exception as e:   # the heatmap is still worth showing without the spans
                gr.Warning(f"Whisper could not time the words ({e.__class__.__name__}); the heatmap has no word spans.")
        figures = prediction_views(pred, self.recognizer.model.frame_seconds, self.reference, timed)
        pred.timings_ms["figures"] = 1000 * (time.perf_counter() - start)
        return figures

    def live_start(self):
        return LiveTake(self.live_config), "listening..."

    def live_chunk(self, chunk, take):
        """A chunk from the microphone; about every 2 s the label of the latest seconds."""
        if chunk is None:
            return gr.update(), take, gr.update()
        take = take if isinstance(take, LiveTake) else LiveTake(self.live_config)
        if not take.add(*chunk):
            return gr.update(), take, f"recording: {take.seconds:.0f} s" + (" (limit reached)" if take.full else "")
        pred = live_label(self.recognizer, take)
        status = f"recording: {take.seconds:.0f} s; the label hears the last {self.live_config.window_seconds:.0f} s of voice"
        if pred is None:
            return gr.update(), take, status
        if pred.not_sure:
            status += " · " + verdict_markdown(pred.probabilities, True)
        return pred.probabilities, take, status

    def live_stop(self, take):
        """The whole take through the full analysis: one clip, or the timeline when it is long."""
        if not isinstance(take, LiveTake) or take.samples == 0:
            raise gr.Error("nothing was recorded")
        wave = take.audio()
        if take.seconds <= self.recognizer.limits.max_seconds:
            for clip in self.analyse((SAMPLE_RATE, wave), ""):
                yield (*clip, *(gr.update() for _ in range(LONG_OUTPUTS)))
            return
        with tempfile.NamedTemporaryFile(suffix=".wav", delete=False) as f:
            sf.write(f.name, wave, SAMPLE_RATE)
        # one person at the microphone: the take's utterances, without speaker turns
        yield (*(gr.update() for _ in range(CLIP_OUTPUTS)), *self.long.analyse(f.name, "off"))

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
                    audio = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Speech", elem_id="speech")
                    text = gr.Textbox(label="Transcript", info=NO_WORDS_YET, lines=2, elem_id="transcript",
                                      placeholder="leave empty to let Whisper transcribe the clip")
                    with gr.Row():
                        transcribe = gr.Button("Transcribe only")
                        run = gr.Button("Recognise emotion", variant="primary", elem_id="run")
                    examples_at = gr.Column()
                with gr.Column(scale=3):
                    label = gr.Label(num_top_classes=len(self.recognizer.config.labels), label="Predicted emotion",
                                     elem_id="label")
                    summary = gr.Markdown(elem_id="summary")
            live_parts = self.build_live()
            heatmap = gr.Plot(placeholder_plotly("Recognise a clip: here each moment of its speech meets its words"),
                              label="Words vs. time: token cross-attention", elem_id="heatmap")
            with gr.Row():
                gaussians = gr.Plot(label="Speech and text Gaussians", elem_id="gaussians")
                umap = gr.Plot(label="Map of utterances", elem_id="umap")
            gr.Markdown(EXPLAIN)
            words = gr.State(None)
            outputs = [label, text, heatmap, gaussians, umap, summary, words]
            with examples_at:
                self.build_examples(audio, text, outputs)
            run.click(self.analyse, [audio, text, words], outputs, api_name="analyse")
            transcribe.click(self.transcribe, [audio], [text, words], api_name="transcribe")
            # a new clip forgets the words of the one before: emptied in the browser at once, so that no
            # click can send them with the new clip
            for new_clip in (audio.upload, audio.clear, audio.start_recording, audio.stop_recording):
                new_clip(None, None, text, js="() => ''")
                new_clip(lambda: (None, words_info(None)), None, [words, text], queue=False, show_progress="hidden",
                         api_visibility="private")
            words.change(words_info, words, text, queue=False, show_progress="hidden", api_visibility="private")
            # the named API: a file and optional text in, JSON out (gradio_client, scripts)
            api_file, api_text = gr.File(visible=False), gr.Textbox(visible=False)
            api_out = gr.JSON(visible=False)
            api_button = gr.Button(visible=False)
            api_button.click(self.predict_api, [api_file, api_text], api_out, api_name="predict")
            self.wire_live(live_parts, outputs, self.long.build(outputs))
            demo.load(self.warm_views, None, None, show_progress="hidden", api_visibility="private")
        return demo

    def build_examples(self, audio, text, outputs):
        """The example galleries: a click loads a clip with its own words and runs it."""
        for gallery, title in GALLERIES.items():
            clips = examples(gallery)
            if clips:
                gr.Examples(clips, inputs=[audio, text], outputs=outputs, fn=self.analyse_example, run_on_click=True,
                            label=title, cache_examples=False, example_labels=example_captions(gallery),
                            elem_id=f"examples_{gallery}")

    def build_live(self):
        """The live microphone's components, placed under the clip's answer; wired by wire_live."""
        gr.Markdown("### Live microphone\nSpeak: about every 2 s the label shows what the voice of the last few "
                    "seconds sounds like. Stop recording, and the whole take is analysed with its words: above, "
                    "or in the timeline of the long-recording section when it is longer than a clip.")
        with gr.Row():
            live = gr.Audio(sources=["microphone"], streaming=True, type="numpy", label="Microphone (live)",
                            elem_id="live_audio")
            with gr.Column():
                label = gr.Label(num_top_classes=len(self.recognizer.config.labels),
                                 label="Voice, latest seconds (live)", elem_id="live_label")
                status = gr.Markdown(elem_id="live_status")
        return live, label, status, gr.State(None)

    def wire_live(self, live_parts, clip_outputs, long_outputs):
        live, label, status, take = live_parts
        live.start_recording(self.live_start, None, [take, status])
        live.stream(self.live_chunk, [live, take], [label, take, status], stream_every=0.5,
                    time_limit=int(60 * self.live_config.max_minutes) + 30, concurrency_limit=None)
        live.stop_recording(self.live_stop, [take], clip_outputs + long_outputs)


QUEUE = dict(default_concurrency_limit=2, max_size=64)


def create_app(recognizer: EmotionRecognizer) -> gr.Blocks:
    """The UI over a recogniser loaded once (app/serve.py: load_warm), its requests queued."""
    return App(recognizer).build().queue(**QUEUE)
