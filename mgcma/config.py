"""Typed model configuration, its presets, and JSON round-tripping.

Every detail the paper leaves open is a field here (see the README's "our choices").
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

IEMOCAP_LABELS = ["neutral", "happy", "angry", "sad"]
EMBEDDED_MINILM = "embedded:all-MiniLM-L6-v2"


@dataclass
class ModelConfig:
    labels: list[str] = field(default_factory=lambda: list(IEMOCAP_LABELS))
    # Encoders. `*_encoder` is a pretrained source (hub name, local directory or
    # "embedded:all-MiniLM-L6-v2"); None means random initialisation from `*_encoder_config`.
    # `*_encoder_config` holds Hugging Face config fields; a saved checkpoint records the full
    # config so that the architecture can be rebuilt offline.
    speech_encoder: str | None = None
    speech_encoder_config: dict = field(default_factory=dict)
    text_encoder: str | None = EMBEDDED_MINILM
    text_encoder_config: dict = field(default_factory=dict)
    tokenizer: str | None = None            # defaults to text_encoder's source
    freeze_speech_encoder: bool = False
    freeze_text_encoder: bool = False
    freeze_feature_encoder: bool = True     # wav2vec2's CNN; off when the speech encoder starts random
    max_text_tokens: int = 64
    # Widths.
    d_model: int = 256
    n_heads: int = 4
    gauss_dim: int = 64
    dropout: float = 0.1
    # Modules and losses (all ours: weights and temperatures are not published).
    modality: str = "both"                  # "both" | "speech" | "text" (unimodal baselines)
    use_dist: bool = True
    use_token: bool = True
    use_inst: bool = True
    lambda_dist: float = 0.5
    lambda_inst: float = 0.5
    lambda_kl: float = 1e-3                 # KL(N(mu, sigma^2) || N(0, I)) against variance collapse
    dist_positives: str = "pair"            # "pair": speech i <-> text i; "label": same emotion
    tau_dist_init: float = 1.0
    tau_inst_init: float = 0.07
    logvar_min: float = -8.0
    logvar_max: float = 4.0

    def __post_init__(self):
        if self.modality not in ("both", "speech", "text"):
            raise ValueError(f"modality must be 'both', 'speech' or 'text', got {self.modality!r}")
        if self.modality != "both" and (self.use_dist or self.use_token or self.use_inst):
            raise ValueError(f"modality={self.modality!r} is a unimodal baseline: "
                             "turn off use_dist, use_token and use_inst (they need both modalities)")
        if self.dist_positives not in ("pair", "label"):
            raise ValueError(f"dist_positives must be 'pair' or 'label', got {self.dist_positives!r}")
        if len(self.labels) < 2 or len(set(self.labels)) != len(self.labels):
            raise ValueError(f"labels must be at least 2 distinct names, got {self.labels}")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}")

    @property
    def uses_speech(self) -> bool:
        return self.modality in ("both", "speech")

    @property
    def uses_text(self) -> bool:
        return self.modality in ("both", "text")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown model config field(s): {', '.join(unknown)}")
        return cls(**d)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "ModelConfig":
        try:
            d = json.loads(Path(path).read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{path} is not valid JSON: {e}") from None
        if not isinstance(d, dict):
            raise ValueError(f"{path} must hold a JSON object, got {type(d).__name__}")
        return cls.from_dict(d)


# A small wav2vec2 that trains from scratch on a CPU: 7 conv layers (stride 320, 20 ms
# frames like wav2vec2-base) with layer norm so padding never leaks into a clip's features.
TINY_WAV2VEC2 = dict(
    model_type="wav2vec2", hidden_size=128, num_hidden_layers=2, num_attention_heads=4,
    intermediate_size=256, conv_dim=[64, 64, 64, 64, 64, 64, 64],
    conv_kernel=[10, 3, 3, 3, 3, 2, 2], conv_stride=[5, 2, 2, 2, 2, 2, 2],
    feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True,
    num_conv_pos_embeddings=32, num_conv_pos_embedding_groups=8,
    mask_time_prob=0.05, hidden_dropout=0.1, attention_dropout=0.1, feat_proj_dropout=0.0,
    layerdrop=0.0, vocab_size=32,
)


def preset(name: str, **overrides) -> ModelConfig:
    """`paper`: wav2vec2-base + bert-base-uncased. `tiny`: the embedded default.
    `test`: small random encoders (MiniLM's tokenizer) for unit tests, seconds on a CPU."""
    if name == "paper":
        cfg = dict(speech_encoder="facebook/wav2vec2-base", text_encoder="bert-base-uncased",
                   d_model=256, n_heads=4, gauss_dim=64)
    elif name == "tiny":
        cfg = dict(speech_encoder=None, speech_encoder_config=dict(TINY_WAV2VEC2),
                   text_encoder=EMBEDDED_MINILM, freeze_text_encoder=True,
                   freeze_feature_encoder=False, d_model=128, n_heads=4, gauss_dim=32)
    elif name == "test":
        speech = dict(TINY_WAV2VEC2, hidden_size=32, intermediate_size=64, num_attention_heads=2,
                      conv_dim=[16] * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
                      mask_time_prob=0.0, hidden_dropout=0.0, attention_dropout=0.0)
        text = dict(model_type="bert", vocab_size=30522, hidden_size=32, num_hidden_layers=2,
                    num_attention_heads=2, intermediate_size=64, max_position_embeddings=128)
        cfg = dict(speech_encoder=None, speech_encoder_config=speech, text_encoder=None,
                   text_encoder_config=text, tokenizer=EMBEDDED_MINILM,
                   freeze_feature_encoder=False, d_model=32, n_heads=2, gauss_dim=8, dropout=0.0)
    else:
        raise ValueError(f"unknown preset {name!r}; choose from: paper, tiny, test")
    cfg.update(overrides)
    return ModelConfig(**cfg)


PRESETS = ("paper", "tiny", "test")
