"""One Whisper encoder pass for both the transcript and the emotion.

When MGCMA's speech encoder is Whisper's (read from CTranslate2 files), the transcript need not
pay for a second encoder: MGCMA's own pass over the clip (unpadded, every layer) serves the emotion
model, and its last layer goes to the CTranslate2 decoder of the same Whisper.

Whisper's decoder was trained on 30-s windows, mostly speech followed by silence; given the clip's
frames alone it repeats itself or stops early. So the frames of 20 s of silence follow the clip's,
taken from one encoding of 30 s of silence made once (positions T..T+S, so their positional
embeddings are right). The decoder first runs greedy; where that transcript is longer than
8 tokens a second of speech (a loop), or unsure or repetitive by faster-whisper's own tests (a
mean log-probability per token below -1, or a gzip compression ratio above 2.4), it decodes again
with a beam of 5, and if still unsure the clip is transcribed the standard way: padded to 30 s,
encoded by CTranslate2 and decoded, at the cost of ASR alone. A phrase the decoder repeats at the
very end is kept once (drop_repeats).
benchmarks/shared_pass.py measures the cost, how often that happens and the word error rate
against faster-whisper on the same Whisper.
"""
from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .asr import torch_threads_kept
from ..checkpoint import atomic_write, weights_checksum
from ..audio import SAMPLE_RATE
from ..config import WHISPER_BASE, WHISPER_TINY_EN
from ..encoders.whisper import CLIP_SAMPLES, cache_dir, embedded_whisper_dir, log_mel


@dataclass
class SharedASRConfig:
    silence_seconds: float = 20.0   # of cached silence after the clip (capped at 30 s in all)
    max_tokens: int = 224
    tokens_per_second: float = 8.0  # a greedy transcript longer than this (plus 10) is a loop: no one speaks that fast
    language: str = "en"
    max_compression: float = 2.4    # above it the transcript is a loop: transcribe the standard way
    min_log_prob: float = -1.0      # below it (mean per token) the decoder is unsure: the same (faster-whisper's thresholds)
    decoder_threads: int = 1        # CPU threads of the decoder: its small steps lose more to threading than they gain


def compression_ratio(text: str) -> float:
    """Whisper's loop detector: a repeated phrase compresses far better than language does."""
    data = text.encode("utf-8")
    return len(data) / max(1, len(zlib.compress(data)))


def drop_repeats(text: str, min_words: int = 3) -> str:
    """The transcript without a phrase of at least `min_words` words that repeats itself at the end
    ("Dogs are sitting by the door. Dogs are sitting by the door."): the decoder's habit when a
    trimmed clip's speech runs up to its last frame. Too short to compress well, so
    compression_ratio misses it."""
    words = text.split()
    changed = True
    while changed:
        changed = False
        key = [w.lower().strip(".,!?;:\"'") for w in words]
        for n in range(min_words, len(words) // 2 + 1):
            if key[-2 * n:-n] == key[-n:]:
                words, changed = words[:-n], True
                break
    return " ".join(words)


def decoder_directory(speech_encoder: str | None) -> Path | None:
    """The CTranslate2 Whisper directory holding the decoder of the model's speech encoder, or
    None when the encoder came from elsewhere (an openai-whisper .pt, a transformers folder)."""
    if speech_encoder in (WHISPER_TINY_EN, WHISPER_BASE):
        return embedded_whisper_dir(speech_encoder)
    if speech_encoder and (Path(speech_encoder) / "model.bin").is_file():
        return Path(speech_encoder)
    return None


def encode_silence(encoder) -> torch.Tensor:
    """The encoder's last layer over Whisper's whole window of silence: (1, 1500, d)."""
    device = encoder.conv1.weight.device
    with torch.inference_mode():
        return encoder.forward_audio(torch.zeros(1, CLIP_SAMPLES, device=device),
                                     torch.ones(1, CLIP_SAMPLES, dtype=torch.bool, device=device)).last_hidden_state


def encoder_key(encoder) -> str:
    """What an encoding depends on: the weights, the kinds of layer they run in (float32 or
    quantised), the device and PyTorch's version."""
    kinds = sorted({f"{type(m).__module__}.{type(m).__qualname__}" for m in encoder.modules()})
    parts = [weights_checksum(encoder.parameters()), *kinds, encoder.conv1.weight.device.type, torch.__version__]
    return hashlib.sha1(" ".join(parts).encode()).hexdigest()[:16]


def whisper_mel(wave: np.ndarray, n_mels: int) -> torch.Tensor:
    """Whisper's standard input: the clip padded to 30 s, as log-mel (1, n_mels, 3000)."""
    clip = np.asarray(wave, dtype=np.float32)[:CLIP_SAMPLES]
    return log_mel(torch.from_numpy(np.pad(clip, (0, CLIP_SAMPLES - len(clip)))), n_mels)[None]


class SharedWhisperASR:
    """`listen(wave)` -> MGCMA's speech features, their mask, and the transcript, from one encoder pass."""

    def __init__(self, model, directory: str | Path, device: str = "cpu", config: SharedASRConfig = SharedASRConfig()):
        import ctranslate2
        import tokenizers
        from faster_whisper.tokenizer import Tokenizer
        self.model, self.encoder, self.config = model, model.speech_encoder, config
        self.name = f"Whisper decoder ({directory}) over MGCMA's encoder pass"
        on_gpu = device.startswith("cuda")
        with torch_threads_kept():
            self.decoder = ctranslate2.models.Whisper(str(directory), device="cuda" if on_gpu else "cpu",
                                                      compute_type="float16" if on_gpu else "int8",
                                                      intra_threads=0 if on_gpu else config.decoder_threads)
        hf = tokenizers.Tokenizer.from_file(str(Path(directory) / "tokenizer.json"))
        multilingual = self.decoder.is_multilingual
        self.tokenizer = Tokenizer(hf, multilingual, task="transcribe" if multilingual else None,
                                   language=config.language if multilingual else None)
        self.prompt = list(self.tokenizer.sot_sequence) + [self.tokenizer.no_timestamps]
        self._silence = None
        self.fallbacks = 0   # clips transcribed the standard way (for the benchmark)

    def silence(self) -> torch.Tensor:
        """The encoder's last layer over 30 s of silence (1, 1500, d), made once per encoder and
        kept on disk (a second of the app's start with Whisper base)."""
        if self._silence is None:
            path = cache_dir() / f"silence-{encoder_key(self.encoder)}.safetensors"
            try:
                self._silence = load_file(path)["silence"].to(self.encoder.conv1.weight.device)
            except (OSError, SafetensorError, KeyError):   # not made yet, or a broken file: made again
                self._silence = encode_silence(self.encoder)
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    atomic_write(path, lambda tmp: save_file({"silence": self._silence.cpu().contiguous()}, tmp))
                except OSError:   # a read-only home: the next start encodes it again
                    pass
        return self._silence

    def listen(self, wave: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, str]:
        """16 kHz clip (N,) -> MGCMA's speech features (1, T, L, D) or (1, T, D), mask (1, T), transcript."""
        return self.listen_many([wave])[0]

    def listen_many(self, waves: list[np.ndarray]) -> list[tuple[torch.Tensor, torch.Tensor, str]]:
        """`listen` for several clips, their transcripts decoded together: each decoder step reads
        the decoder's weights once for the whole batch (the time saved: docs/performance.md). Each
        clip is still encoded alone (unpadded, exact); the shorter clips of a batch are followed by
        more silence."""
        if not waves:
            return []
        device = self.encoder.conv1.weight.device
        encoded = []
        for wave in waves:
            audio = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32)).to(device)[None]
            encoded.append(self.model.encode_speech(audio, torch.ones_like(audio, dtype=torch.bool)))
        frames = self.decoder_input([features for features, _ in encoded])
        limits = [int(10 + self.config.tokens_per_second * len(wave) / SAMPLE_RATE) for wave in waves]   # tokens
        # greedy; a loop stops soon (CTranslate2 stopped Whisper's loops at half of max_length here: hence 2x)
        results = self.decode(frames, 1, 2 * max(limits) + len(self.prompt))
        again = [i for i, ((text, log_prob, n), limit) in enumerate(zip(results, limits))
                 if n >= limit or self.unsure(text, log_prob)]
        if again:   # a loop, or unsure: a beam (a cap would change the beam's choice)
            for i, result in zip(again, self.decode(frames[again], 5, self.config.max_tokens)):
                results[i] = result
                if self.unsure(result[0], result[1]):   # still unsure: CTranslate2 encodes the padded clip itself
                    self.fallbacks += 1
                    results[i] = self.decode(whisper_mel(waves[i], self.encoder.config.n_mels), 5, self.config.max_tokens)[0]
        return [(features, mask, text) for (features, mask), (text, _, _) in zip(encoded, results)]

    def decoder_input(self, features: list[torch.Tensor]) -> torch.Tensor:
        """Each clip's MGCMA speech features (1, T_i, L, D) or (1, T_i, D) -> what the decoder reads
        (B, T + S, d), T the longest clip's frames: each clip's last layer, then the cached silence's
        frames at the positions that follow it (so a shorter clip is followed by more silence)."""
        lasts = [f[:, :, -1] if f.dim() == 4 else f for f in features]   # (1, T_i, d): the final norm's output
        silence = self.silence()
        T = max(last.shape[1] for last in lasts)
        end = T + max(0, min(int(self.config.silence_seconds * 50), silence.shape[1] - T))   # 50 frames a second
        return torch.cat([torch.cat([last, silence[:, last.shape[1]:end].to(last.dtype)], dim=1) for last in lasts])

    def unsure(self, text: str, log_prob: float) -> bool:
        return compression_ratio(text) > self.config.max_compression or log_prob < self.config.min_log_prob

    def decode(self, frames: torch.Tensor, beam_size: int, max_length: int) -> list[tuple[str, float, int]]:
        """(B, S, d) encoder output, or (B, n_mels, 3000) padded log-mels -> for each row: its text,
        mean log-probability per token, and number of tokens."""
        import ctranslate2
        array = np.ascontiguousarray(frames.float().cpu().numpy())
        features = ctranslate2.StorageView.from_array(array)
        if self.decoder.device == "cuda":
            features = features.to_device(ctranslate2.Device.cuda)
        results = self.decoder.generate(features, [self.prompt] * len(array), beam_size=beam_size,
                                        max_length=max_length, return_scores=True)
        out = []
        for result in results:
            tokens = [t for t in result.sequences_ids[0] if t < self.tokenizer.eot]
            out.append((drop_repeats(self.tokenizer.decode(tokens).strip()), float(result.scores[0]), len(tokens)))
        return out

    def __call__(self, wave: np.ndarray) -> str:
        """The transcript alone (the ASR interface)."""
        return self.listen(wave)[2]
