"""The recogniser: one utterance in, the emotion and everything needed to explain it out
(`python -m mgcma.predict` is its command).

The model and the ASR are loaded once (EmotionRecognizer) and reused for every request; an
ensemble checkpoint's heads all answer on one pass of the frozen encoders (mgcma/infer/ensemble.py). With
--asr auto (the default) a model whose speech encoder is Whisper's transcribes with the same
encoder pass (mgcma/infer/shared_asr.py); others use faster-whisper's tiny.en.
"""
from __future__ import annotations

import dataclasses
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..audio import SAMPLE_RATE, AudioError, AudioLimits, clean_speech, read_clip
from ..calibration import top_two
from ..checkpoint import load_model, load_tokenizer
from ..config import DEFAULT_CHECKPOINT
from ..data.batching import hide
from ..encoders.build import n_hidden_states
from ..encoders.precision import set_precision
from ..model import MGCMAOutput
from .asr import ASRError, load_asr
from .ensemble import StackedHeads, answer_together, answers_together, load_members, share_encoders, together_config
from .members import Together, member_directories, read_together, split_members, what_it_hears
from .shared_asr import SharedWhisperASR, decoder_directory
from .speaker_means import STATS_FILE, SpeechMean, layer_frames, load_means, shift
from .stats_head import load_stats_heads, mix_into, voice_probabilities

MAX_TEXT_CHARS = 2000


class InputError(ValueError):
    """A request that cannot be answered; the message is for the person who sent it."""


@dataclass
class Prediction:
    label: str
    probabilities: dict[str, float]
    transcript: str
    transcript_source: str               # "user" | "asr" | "none"
    w2: float | None                     # W2 between this clip's speech and text Gaussians
    sim: float | None
    audio_seconds: float
    words: list[str] = field(default_factory=list)   # text tokens, word pieces as the model saw them
    offsets: list[tuple[int, int]] = field(default_factory=list)  # each token's characters in the transcript
    output: MGCMAOutput | None = None    # the full forward output (batch of one, on the CPU)
    timings_ms: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    answers: dict[str, dict[str, float]] = field(default_factory=dict)  # "speech" / "text" / "both" -> probabilities
    wave: np.ndarray | None = field(default=None, repr=False)   # the 16 kHz clip as the model heard it (trimmed)
    not_sure: bool = False               # the top probability is below the model's threshold (chosen on validation)
    tuned_on_seconds: float | None = None  # seconds of reference speech its voice was normalised by (mgcma/normalise.py)

    @property
    def top_two(self) -> list[tuple[str, float]]:
        return top_two(self.probabilities)

    def to_json(self) -> dict:
        return dict(label=self.label, probabilities=self.probabilities, not_sure=self.not_sure,
                    top_two=[list(kv) for kv in self.top_two], transcript=self.transcript,
                    transcript_source=self.transcript_source, w2=self.w2, sim=self.sim,
                    audio_seconds=self.audio_seconds, answers=self.answers, tuned_on_seconds=self.tuned_on_seconds,
                    timings_ms=self.timings_ms, warnings=self.warnings)


def pick_device(device: str = "auto") -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("--device cuda was asked for, but no CUDA GPU is available")
    return device


class EmotionRecognizer:
    def __init__(self, checkpoint: str | Path = DEFAULT_CHECKPOINT, asr: str = "auto",
                 device: str = "auto", limits: AudioLimits = AudioLimits(max_seconds=20.0), precision: str = "float32",
                 members: list[str | Path] | None = None):
        """`precision`: of the pretrained encoders, "float32" or "int8" (CPU only; mgcma/encoders/precision.py).
        `members`: checkpoints whose heads answer with this one's (mgcma/infer/ensemble.py); None: the
        checkpoint's own, if it is an ensemble."""
        self.device = pick_device(device)
        self.precision = precision
        self.checkpoint = Path(checkpoint)
        try:
            self.model = load_model(checkpoint, self.device)
            listed, voices = split_members(member_directories(checkpoint) if members is None else [Path(m) for m in members])
            others = load_members(listed, self.model, self.checkpoint, self.device)   # before int8 swaps the encoders
            self.stats_heads = load_stats_heads(voices, self.model.config)
            self.heads = share_encoders([set_precision(self.model, self.precision, self.device), *others])
            self.stacked = StackedHeads(self.heads) if StackedHeads.fits(self.heads) else None
        except ValueError as e:
            raise InputError(str(e)) from None
        together = read_together(checkpoint) if members is None else None
        self.config = together_config(self.heads, self.stats_heads, together)
        # the answer together's calibration, by what each answer reads (members.Together)
        self.together = Together(self.config.temperature, self.config.not_sure_below,
                                 together.temperatures if together else {})
        self.tokenizer = load_tokenizer(self.config, checkpoint)
        self.asr = self.make_asr(asr) if self.config.uses_text else None
        self.limits = limits
        self.training_means = self.read_training_means() if self.config.uses_speech else None

    def read_training_means(self) -> dict[str, SpeechMean] | None:
        path = self.checkpoint / STATS_FILE
        if not path.is_file():
            return None
        means = load_means(path)
        encoder = self.model.speech_encoder   # a reference collects every hidden state where the model mixes them
        expected = (encoder.config.hidden_size,)
        if self.config.speech_layers == "weighted":
            expected = (n_hidden_states(encoder), *expected)
        if means["all"].total.shape != expected:   # the model still answers; only the tuning to a voice is off
            warnings.warn(f"{path} holds means of shape {means['all'].total.shape}, not {expected}: written by an older "
                          "version (of the mixed frames) and not used; rewrite it with python -m mgcma.normalise")
            return None
        return means

    def warm_up(self) -> None:
        """Make now what the first request would: the shared ASR's encoding of silence."""
        if isinstance(self.asr, SharedWhisperASR):
            with torch.inference_mode():
                self.asr.silence()

    def make_asr(self, spec: str):
        """"auto": one shared Whisper pass where the model can (its speech encoder is Whisper's
        with a CTranslate2 decoder beside it), else faster-whisper. "shared": that pass or an error."""
        directory = decoder_directory(self.config.speech_encoder) if self.config.uses_speech else None
        if spec == "shared" and directory is None:
            raise ASRError(f"--asr shared needs a Whisper speech encoder read from CTranslate2 files; "
                           f"this model's is {self.config.speech_encoder!r}")
        if spec in ("auto", "shared") and directory is not None:
            return SharedWhisperASR(self.model, directory, self.device)
        return load_asr("faster-whisper" if spec == "auto" else spec, self.device)

    def load(self, audio) -> tuple[np.ndarray, list[str]]:
        """A path, a (sample_rate, array) pair as Gradio gives it, or a 16 kHz array
        -> (16 kHz waveform as the model hears it, notes such as a crop warning)."""
        wave, notes = self.load_raw(audio)
        if self.config.hygiene is not None:
            wave = clean_speech(wave, self.config.hygiene)   # as in training: trimmed, level-normalised
        return wave, notes

    def load_raw(self, audio) -> tuple[np.ndarray, list[str]]:
        """As `load`, before the model's clean-up (silence trim, loudness)."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            wave = read_clip(audio, self.limits)
        return wave, [str(w.message) for w in caught]

    def transcribe(self, wave: np.ndarray) -> tuple[str, tuple | None]:
        """-> (transcript, the speech features and mask when the shared pass computed them)."""
        return self.transcribe_many([wave])[0]

    def transcribe_many(self, waves: list[np.ndarray]) -> list[tuple[str, tuple | None]]:
        """`transcribe` for several clips; the shared pass decodes them together (one decoder batch)."""
        if self.asr is None:
            raise InputError("no transcript was given and no ASR is loaded (--asr none)")
        try:
            if isinstance(self.asr, SharedWhisperASR):
                return [(text, (features, mask)) for features, mask, text in self.asr.listen_many(waves)]
            return [(self.asr(wave), None) for wave in waves]
        except Exception as e:
            raise ASRError(f"the speech recogniser failed ({e.__class__.__name__}: {e}); type the transcript instead") from None

    @torch.inference_mode()
    def add_reference(self, reference: SpeechMean, audio) -> SpeechMean:
        """Add a clip of unlabeled speech (any form `load` takes) to a reference mean."""
        wave, _ = self.load(audio)
        audio = torch.from_numpy(wave)[None].to(self.device)
        features, mask = self.model.encode_speech(audio, torch.ones_like(audio, dtype=torch.bool))
        reference.add(layer_frames(features, mask)[0], len(wave) / SAMPLE_RATE)
        return reference

    @torch.inference_mode()
    def predict(self, audio, text: str | None = None, use_asr: bool = True, reference: SpeechMean | None = None,
                calm_reference: bool = False) -> Prediction:
        """The emotion of one clip. Without text the ASR writes it (use_asr=False: the voice alone
        answers). A two-modality model also answers from the voice only and the words only.
        `reference`: unlabeled speech of the same speaker or session; the voice is heard relative
        to it (mgcma/infer/speaker_means.py); `calm_reference`: it is an enrolment of calm speech. It needs the
        checkpoint's training means (speech_stats.npz)."""
        start = time.perf_counter()
        wave, notes = self.load(audio)
        timings = {"load": 1000 * (time.perf_counter() - start)}
        heard = None
        if self.needs_words(text, use_asr, notes):
            start = time.perf_counter()
            heard = self.transcribe(wave)
            timings["asr"] = 1000 * (time.perf_counter() - start)
        return self.answer(wave, notes, timings, text, heard, reference, calm_reference)

    @torch.inference_mode()
    def predict_many(self, audios: list) -> list[Prediction | AudioError]:
        """The emotions of several clips without words (a long recording's utterances), their
        transcripts decoded together (SharedWhisperASR.listen_many). A clip that cannot be heard
        (too short, silent) gets its AudioError in its place."""
        loaded = []
        for audio in audios:
            start = time.perf_counter()
            try:
                loaded.append((*self.load(audio), {"load": 1000 * (time.perf_counter() - start)}))
            except AudioError as e:
                loaded.append(e)
        clips = [x for x in loaded if not isinstance(x, AudioError)]
        heard = [None] * len(clips)
        wanted = [self.needs_words(None, True, notes) for _, notes, _ in clips]   # alike for all; each gets its note
        if any(wanted):
            start = time.perf_counter()
            heard = self.transcribe_many([wave for wave, _, _ in clips])
            for _, _, timings in clips:
                timings["asr"] = 1000 * (time.perf_counter() - start) / len(clips)   # its share of the batch
        answers = iter(self.answer(wave, notes, timings, None, h) for (wave, notes, timings), h in zip(clips, heard))
        return [x if isinstance(x, AudioError) else next(answers) for x in loaded]

    def needs_words(self, text: str | None, use_asr: bool, notes: list[str]) -> bool:
        """Whether the ASR must write the words; a note where it would but cannot."""
        needs = self.config.uses_text and not (text and text.strip()) and use_asr
        if needs and self.asr is None and self.config.uses_speech:
            notes.append("no transcript and no speech recogniser (--asr none): the answer comes from the voice alone")
            return False
        return needs

    def answer(self, wave: np.ndarray, notes: list[str], timings: dict, text: str | None = None,
               heard: tuple | None = None, reference: SpeechMean | None = None, calm_reference: bool = False) -> Prediction:
        """`predict` for a loaded clip; `heard`: (transcript, speech features) from `transcribe`."""
        source, speech = "user", None
        if heard is not None:
            (text, speech), source = heard, "asr"
            if not text:
                notes.append("the speech recogniser heard no words; type the transcript and run again")
        given = (text or "").strip()
        text = given[:MAX_TEXT_CHARS]   # longer text could only cost memory: the model reads fewer tokens
        if not text and self.config.modality == "text":
            raise InputError("this model reads words only, and there are none: type the transcript")
        start = time.perf_counter()
        moved = shift(self.training_means, reference, calm_reference) if self.config.uses_speech else None
        answers, words, offsets = self.forward(wave, text, speech, moved)
        timings["model"] = 1000 * (time.perf_counter() - start)
        read = max((end for _, end in offsets), default=len(text))
        if given[read:].strip():
            notes.append(f"the transcript is longer than the {self.config.max_text_tokens} tokens the model reads: "
                         f"it read up to \"...{text[max(0, read - 30):read]}\" and not the last {len(given) - read} characters")
        out = answers["both"]   # the main answer: every modality the model and this input have
        labels = self.config.labels
        probabilities = {m: {k: float(p) for k, p in zip(labels, o.probs[0].tolist())} for m, o in answers.items()}
        probs = probabilities["both"]
        return Prediction(
            label=max(probs, key=probs.get), probabilities=probs,
            transcript=text, transcript_source=(source if text else "none") if self.config.uses_text else "none",
            w2=None if out.w2 is None or not text else float(out.w2[0, 0]),
            sim=None if out.sim is None or not text else float(out.sim[0, 0]),
            audio_seconds=len(wave) / SAMPLE_RATE, words=words, offsets=offsets, output=out, timings_ms=timings,
            warnings=notes, answers=probabilities if len(answers) > 1 else {}, wave=wave,
            not_sure=max(probs.values()) < self.config.not_sure_below,
            tuned_on_seconds=None if moved is None else reference.seconds)

    def forward(self, wave: np.ndarray | None, text: str, speech: tuple | None = None, speech_shift=None):
        """-> ({"both" | "speech" | "text": output}, tokens, their character offsets in text).
        The encoders run once (`speech`: features and mask the shared ASR pass already computed), and
        every head on their outputs; each answer hides the other modality with its mask.
        `speech_shift`: of each layer (speaker_means.shift), which each head mixes (MGCMA.mixed_shift)."""
        inputs, words, offsets = {}, [], []
        layer_shift = None if speech_shift is None else speech_shift.to(self.device)
        dtype = torch.bfloat16 if self.device.startswith("cuda") else None
        with torch.autocast("cuda", dtype=dtype, enabled=dtype is not None):
            if speech is not None:
                inputs["speech_features"], inputs["speech_mask"] = speech
            elif self.config.uses_speech:
                audio = torch.zeros(1, 1) if wave is None else torch.from_numpy(wave)[None]
                mask = torch.full_like(audio, wave is not None, dtype=torch.bool)
                inputs["speech_features"], inputs["speech_mask"] = self.model.encode_speech(audio.to(self.device), mask.to(self.device))
            if self.config.uses_text and text:
                enc = self.tokenizer([text], truncation=True, max_length=self.config.max_text_tokens,
                                     return_tensors="pt", return_offsets_mapping=True)
                offsets = [tuple(o) for o in enc["offset_mapping"][0].tolist()]
                words = self.tokenizer.convert_ids_to_tokens(enc["input_ids"][0])
                text_mask = enc["attention_mask"].bool().to(self.device)
                inputs["text_features"] = self.model.encode_text(enc["input_ids"].to(self.device), text_mask)
                inputs["text_mask"] = text_mask
            elif self.config.uses_text:   # no words: MiniLM has nothing to read
                width = self.model.text_encoder.config.hidden_size
                inputs["text_features"] = torch.zeros(1, 1, width, device=self.device)
                inputs["text_mask"] = torch.zeros(1, 1, dtype=torch.bool, device=self.device)
            modalities = self.available(wave, text)
            rows = {k: v.expand(len(modalities), *v.shape[1:]) for k, v in inputs.items()}   # one row per answer
            for side, alone in (("text", "speech"), ("speech", "text")):   # the voice-only row hides the words
                if alone in modalities:   # only offered when both sides are there (available)
                    hide(rows, side, torch.tensor([m == alone for m in modalities]))
            # one row (the live label, a voice alone): one vectorised forward beats five small ones;
            # with three rows each head's operations are large already, and stacking gains nothing
            if self.stacked is not None and layer_shift is None and len(modalities) == 1:
                outputs = self.stacked(**rows)
            else:
                outputs = [head(**rows, speech_shift=head.mixed_shift(layer_shift)) for head in self.heads]
            out = to_cpu(answer_together(outputs))
        if self.stats_heads and inputs["speech_mask"].any():
            out = self.with_voice_statistics(out, inputs["speech_features"], inputs["speech_mask"], modalities)
        answers = {m: row_of(out, k) for k, m in enumerate(modalities)}
        if answers_together(self.heads, self.stats_heads):   # the answer together is calibrated as one, by what it reads
            reads = {f"has_{side}": key in inputs and bool(inputs[key].any())
                     for side, key in (("voice", "speech_mask"), ("words", "text_mask"))}
            answers = {m: dataclasses.replace(o, temperature=self.together.temperature_of(what_it_hears(m, **reads)))
                       for m, o in answers.items()}
        return answers, words, offsets

    def with_voice_statistics(self, out: MGCMAOutput, features, mask, modalities: list[str]) -> MGCMAOutput:
        """Every answer that hears the voice, with the statistics heads' share (mgcma/infer/stats_head.py)."""
        voice = voice_probabilities(self.stats_heads, features.float().cpu().numpy(), mask.cpu().numpy())   # (1, C)
        hears = torch.tensor([m != "text" for m in modalities])[:, None]                                    # (rows, 1)
        mixed = torch.from_numpy(mix_into(out.probs.double().numpy(), voice, self.stats_heads[0].config.weight))
        probs = torch.where(hears, mixed.float(), out.probs)
        return dataclasses.replace(out, logits=probs.clamp_min(torch.finfo(probs.dtype).tiny).log(), temperature=1.0)

    def available(self, wave, text) -> list[str]:
        """The answers this model can give for this input, the main one first."""
        c = self.config
        if c.modality != "both":
            return ["both"]
        if wave is not None and text:
            return ["both", "speech", "text"]
        return ["both"]


def row_of(out: MGCMAOutput, k: int) -> MGCMAOutput:
    """Row k of a batched output, as a batch of one (the (B, B) pair matrices: their k-th diagonal entry)."""
    fields = {name: (v[k:k + 1, k:k + 1] if name in ("w2", "sim") else v[k:k + 1]) if torch.is_tensor(v) and v.dim() else v
              for name, v in vars(out).items()}
    return MGCMAOutput(**fields)


def to_cpu(out: MGCMAOutput) -> MGCMAOutput:
    fields = {k: (v.detach().float().cpu() if torch.is_tensor(v) and v.is_floating_point() else
                  v.detach().cpu() if torch.is_tensor(v) else v) for k, v in vars(out).items()}
    return MGCMAOutput(**fields)
