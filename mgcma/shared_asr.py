"""One Whisper encoder pass for both the transcript and the emotion.

When MGCMA's speech encoder is Whisper's (read from CTranslate2 files), the transcript need not
pay for a second encoder: our encoder runs once over the clip plus a few seconds of silence
(`WhisperAudioEncoder.forward_with_silence`), its every-layer clip frames go to MGCMA, and its
last layer goes to the CTranslate2 decoder of the same Whisper. The clip's frames are exactly
those of the clip alone, so the emotion model sees what it was trained on.

Whisper pads every input to 30 s; here only `silence_seconds` are added (10 s by default), which
costs less. With too little silence Whisper's decoder can fall into a loop ("... the door. Kids are
talking by the door. Kids ..."); as faster-whisper does, a transcript that compresses too well
(gzip ratio > 2.4) is decoded again, here from a pass with the full 30 s of context.
benchmarks/shared_pass.py measures the cost and the word error rate against faster-whisper.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .whisper_encoder import WHISPER_BASE, WHISPER_TINY_EN, WhisperAudioEncoder, embedded_whisper_dir

MAX_SECONDS = 30.0


@dataclass
class SharedASRConfig:
    silence_seconds: float = 10.0   # appended to each clip for the decoder (capped at 30 s in all)
    beam_size: int = 5
    max_tokens: int = 224
    language: str = "en"
    max_compression: float = 2.4    # above it the transcript is a loop: decode again from 30 s of context


def compression_ratio(text: str) -> float:
    """Whisper's loop detector: a repeated phrase compresses far better than language does."""
    data = text.encode("utf-8")
    return len(data) / max(1, len(zlib.compress(data)))


def decoder_directory(speech_encoder: str | None) -> Path | None:
    """The CTranslate2 Whisper directory holding the decoder of the model's speech encoder, or
    None when the encoder came from elsewhere (an openai-whisper .pt, a transformers folder)."""
    if speech_encoder in (WHISPER_TINY_EN, WHISPER_BASE):
        return embedded_whisper_dir(speech_encoder)
    if speech_encoder and (Path(speech_encoder) / "model.bin").is_file():
        return Path(speech_encoder)
    return None


class SharedWhisperASR:
    """`listen(wave)` -> MGCMA's speech features, their mask, and the transcript, from one encoder pass."""

    def __init__(self, encoder: WhisperAudioEncoder, directory: str | Path, weighted: bool,
                 device: str = "cpu", config: SharedASRConfig = SharedASRConfig()):
        import ctranslate2
        import tokenizers
        from faster_whisper.tokenizer import Tokenizer
        self.encoder, self.weighted, self.config = encoder, weighted, config
        self.name = f"Whisper decoder ({directory}) over MGCMA's encoder pass"
        on_gpu = device.startswith("cuda")
        self.decoder = ctranslate2.models.Whisper(str(directory), device="cuda" if on_gpu else "cpu",
                                                  compute_type="float16" if on_gpu else "int8")
        hf = tokenizers.Tokenizer.from_file(str(Path(directory) / "tokenizer.json"))
        multilingual = self.decoder.is_multilingual
        self.tokenizer = Tokenizer(hf, multilingual, task="transcribe" if multilingual else None,
                                   language=config.language if multilingual else None)
        self.prompt = list(self.tokenizer.sot_sequence) + [self.tokenizer.no_timestamps]

    def listen(self, wave: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, str]:
        """16 kHz clip (N,) -> features (1, T, L, D) every hidden state (or (1, T, D) the last),
        mask (1, T), transcript."""
        device = self.encoder.conv1.weight.device
        audio = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32)).to(device)
        room = max(0.0, MAX_SECONDS - len(wave) / 16000)
        out = self.encoder.forward_with_silence(audio, min(self.config.silence_seconds, room), self.weighted)
        T = int(out.mask.sum())
        if self.weighted:
            features = torch.stack([*out.hidden_states, out.last_hidden_state], dim=2)[:, :T]   # (1, T, L, D)
        else:
            features = out.last_hidden_state[:, :T]
        text = self.decode(out.last_hidden_state)
        if compression_ratio(text) > self.config.max_compression and room > self.config.silence_seconds:
            text = self.decode(self.encoder.forward_with_silence(audio, room).last_hidden_state)
        return features, out.mask[:, :T], text

    def decode(self, frames: torch.Tensor) -> str:
        """(1, S, d) encoder output -> text."""
        import ctranslate2
        array = np.ascontiguousarray(frames.float().cpu().numpy())
        features = ctranslate2.StorageView.from_array(array)
        if self.decoder.device == "cuda":
            features = features.to_device(ctranslate2.Device.cuda)
        result = self.decoder.generate(features, [self.prompt], beam_size=self.config.beam_size,
                                       max_length=self.config.max_tokens)
        tokens = [t for t in result[0].sequences_ids[0] if t < self.tokenizer.eot]
        return self.tokenizer.decode(tokens).strip()

    def __call__(self, wave: np.ndarray) -> str:
        """The transcript alone (the ASR interface)."""
        return self.listen(wave)[2]
