"""Inference from an ONNX export (mgcma/infer/onnx_export.py) with onnxruntime, NumPy and the tokenizer: no PyTorch.

The request is the PyTorch path's (mgcma/infer/recognizer.py): the clip is read, resampled and cleaned up
by mgcma/audio.py, Whisper's log-mel front end is computed here in NumPy, each encoder runs once
and the head once per answer. Transcripts come from faster-whisper's tiny.en (CTranslate2, no
PyTorch either); the shared encoder pass of mgcma/infer/shared_asr.py is PyTorch's only.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from ..audio import HOP_LENGTH as HOP, N_FFT, SAMPLE_RATE, AudioLimits, clean_speech, read_clip
from ..calibration import calibrated, top_two
from ..config import ModelConfig
from .asr import load_asr
from .members import Together, member_directories, read_together, split_members, what_it_hears
from .stats_head import load_stats_heads, mix_into, voice_probabilities

MEL_FILTERS = "mel_filters.npy"


def log_mel(wave: np.ndarray, filters: np.ndarray) -> np.ndarray:
    """openai-whisper's log_mel_spectrogram in numpy: (N,) 16 kHz -> (M, N // 160), unpadded."""
    padded = np.pad(wave.astype(np.float32), N_FFT // 2, mode="reflect")       # torch.stft's center=True
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)   # periodic Hann
    n_frames = 1 + (len(padded) - N_FFT) // HOP
    index = np.arange(N_FFT)[None, :] + HOP * np.arange(n_frames)[:, None]      # (frames, N_FFT)
    power = np.abs(np.fft.rfft(padded[index] * window, axis=-1)).T[:, :-1] ** 2  # (N_FFT/2 + 1, frames - 1)
    log_spec = np.log10(np.maximum(filters @ power, 1e-10))
    log_spec = np.maximum(log_spec, log_spec.max() - 8.0)
    return ((log_spec + 4.0) / 4.0).astype(np.float32)


class OnnxRecognizer:
    """`predict(audio, text)` -> the same answer as EmotionRecognizer.predict, as a dict (its to_json)."""

    def __init__(self, directory: str | Path, asr: str = "faster-whisper", threads: int = 0,
                 limits: AudioLimits = AudioLimits(max_seconds=20.0)):
        self.directory = Path(directory)
        if not (self.directory / "head.onnx").is_file():
            raise FileNotFoundError(f"{self.directory} holds no ONNX export: write one with "
                                    f"python -m mgcma.export --checkpoint CHECKPOINT --onnx {self.directory}")
        self.config = ModelConfig.load(self.directory / "config.json")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        def session(path: Path):
            return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.sessions = {name: session(self.directory / f"{name}.onnx") for name in ("speech", "text")}
        members = member_directories(self.directory)   # an ensemble's other heads (mgcma/infer/ensemble.py)
        others, voices = split_members(members)
        self.heads = [(session(self.directory / "head.onnx"), self.config)] + [
            (session(d / "head.onnx"), ModelConfig.load(d / "config.json")) for d in others]
        self.stats_heads = load_stats_heads(voices, self.config)
        # the calibration of the answer together (mgcma/infer/members.py); a single head's is its own
        self.together = read_together(self.directory) if members else Together(1.0, self.config.not_sure_below)
        self.not_sure_below = self.together.not_sure_below
        self.tokenizer = Tokenizer.from_file(str(self.directory / "tokenizer.json"))
        self.tokenizer.no_padding()   # the saved tokenizer may pad to a fixed length; the graph takes any
        self.tokenizer.enable_truncation(self.config.max_text_tokens)
        self.filters = np.load(self.directory / MEL_FILTERS)
        self.limits = limits
        self.asr = None
        if asr != "none":
            self.asr = load_asr(asr, "cpu")

    def load(self, audio) -> np.ndarray:
        """A path, a (sample_rate, array) pair, or a 16 kHz array -> the clip as the model hears it."""
        wave = read_clip(audio, self.limits)
        return clean_speech(wave, self.config.hygiene) if self.config.hygiene is not None else wave

    def encode_speech(self, wave: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mel = log_mel(wave, self.filters)[None]                                      # (1, M, L)
        features, mask, _ = self.sessions["speech"].run(None, {"mel": mel, "mel_lengths": np.array([mel.shape[-1]])})
        return features, mask

    def encode_text(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        if not text:   # no words: MiniLM is skipped, the answers never read masked-out features
            width = self.sessions["text"].get_outputs()[0].shape[-1]
            return np.zeros((1, 1, width), np.float32), np.zeros((1, 1), bool)
        enc = self.tokenizer.encode(text)
        ids = np.array([enc.ids], dtype=np.int64)
        ones = np.ones_like(ids)
        features, = self.sessions["text"].run(None, {"input_ids": ids, "attention_mask": ones})
        return features, ones.astype(bool)

    def head(self, speech, speech_mask, text, text_mask, voice: np.ndarray | None = None, hears: str = "both") -> dict:
        """-> the mean of the heads' calibrated probabilities (C,), with the statistics heads' answer
        `voice` (1, C) taking its share where given, tempered as the answer together that `hears`
        this (members.what_it_hears) is; and the first head's W2."""
        shift = np.zeros((1, speech.shape[-1]), np.float32)
        inputs = dict(speech_features=speech, speech_mask=speech_mask, text_features=text, text_mask=text_mask,
                      speech_shift=shift)
        probs, w2 = [], None
        for session, config in self.heads:
            logits, distance, _, _ = session.run(None, inputs)
            probs.append(calibrated(logits, config.temperature)[0])
            w2 = float(distance[0, 0]) if w2 is None else w2
        probs = np.mean(probs, axis=0)
        if voice is not None:   # mgcma/infer/stats_head.py
            probs = mix_into(probs[None], voice, self.stats_heads[0].config.weight)[0]
        temperature = self.together.temperature_of(hears)
        if temperature != 1.0:
            probs = calibrated(np.log(np.maximum(probs, np.finfo(probs.dtype).tiny))[None], temperature)[0]
        return dict(probs=probs, w2=w2)

    def predict(self, audio, text: str | None = None) -> dict:
        timings, start = {}, time.perf_counter()
        wave = self.load(audio)
        source = "user"
        if not (text and text.strip()) and self.asr is not None:
            text, source = self.asr(wave), "asr"
            timings["asr"] = 1000 * (time.perf_counter() - start)
        text = (text or "").strip()
        start = time.perf_counter()
        speech, speech_mask = self.encode_speech(wave)
        words, words_mask = self.encode_text(text)
        voice = voice_probabilities(self.stats_heads, speech, speech_mask) if self.stats_heads else None   # once
        main = what_it_hears("both", has_voice=True, has_words=bool(text) and self.config.uses_text)
        answers = {"both": self.head(speech, speech_mask, words, words_mask, voice, main)}
        if text:
            answers["speech"] = self.head(speech, speech_mask, words, np.zeros_like(words_mask), voice, "speech")
            answers["text"] = self.head(speech, np.zeros_like(speech_mask), words, words_mask, hears="text")
        timings["model"] = 1000 * (time.perf_counter() - start)
        labels = self.config.labels
        probabilities = {m: dict(zip(labels, a["probs"].tolist())) for m, a in answers.items()}
        probs = probabilities["both"]
        (label, top), second = top_two(probs)
        return dict(label=label, probabilities=probs, not_sure=top < self.not_sure_below,
                    top_two=[[label, top], list(second)], transcript=text,
                    transcript_source=source if text else "none", w2=answers["both"]["w2"] if text else None,
                    audio_seconds=len(wave) / SAMPLE_RATE, answers=probabilities if len(answers) > 1 else {},
                    timings_ms=timings)
