"""Typed model configuration, its presets, JSON round-tripping, and the files every checkpoint holds.

Every detail the paper leaves open is a field here (see the README's "our choices").
"""
from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from .audio import Hygiene

IEMOCAP_LABELS = ["neutral", "happy", "angry", "sad"]
EMBEDDED_MINILM = "embedded:all-MiniLM-L6-v2"
WHISPER_TINY_EN, WHISPER_BASE = "embedded:whisper-tiny.en", "embedded:whisper-base"
PRECISIONS = ("float32", "int8")   # of the pretrained encoders at inference (mgcma/encoders/precision.py)
# the bundled models: installed, inside this package; in a checkout, checkpoints/ beside it
CHECKPOINTS = Path(__file__).resolve().parent / "checkpoints"
if not CHECKPOINTS.is_dir():
    CHECKPOINTS = Path(__file__).resolve().parents[1] / "checkpoints"
DEFAULT_CHECKPOINT = CHECKPOINTS / "default"      # real voices (RAVDESS, EmoDB, EMOVO, GoEmotions)
SYNTHETIC_CHECKPOINT = CHECKPOINTS / "synthetic"  # the eSpeak corpus, for alignment analysis
POSITIVES = ("pair", "text", "label")


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
    freeze_feature_encoder: bool = True     # wav2vec2's CNN / Whisper's convolutions; off when the speech encoder starts random
    finetune_top_layers: int = 0            # >0: of the speech encoder, train only its top k layers (and final norm)
    finetune_top_text_layers: int = 0       # >0: of the text encoder, train only its top k layers
    speech_layers: str = "last"             # "last": the encoder's output; "weighted": a learned softmax mix of every layer
    speech_layer_span: str = ""             # "A-B": the weighted mix draws on hidden states A..B only (0 = the block input); "": all
    max_text_tokens: int = 64
    # What a clip goes through before the encoder, in training and inference alike.
    trim_silence: bool = False              # cut leading/trailing non-speech (Silero VAD)
    loudness_dbfs: float | None = None      # RMS level the speech is scaled to (None: as recorded)
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
    dist_positives: str = "pair"            # "pair": speech i <-> text i; "text": every clip of an identical transcript; "label": same emotion
    inst_positives: str = "pair"            # the same choices, for the instance-level loss
    # Against the corpus (ours, not the paper's): an adversary learns which training corpus a clip's
    # pooled voice came from, and the voice learns, with this weight, to make it guess (gradient reversal).
    lambda_corpus: float = 0.0
    adversary_corpora: list[str] = field(default_factory=list)   # the training corpora with speech, set by the trainer
    tau_dist_init: float = 1.0
    tau_inst_init: float = 0.07
    logvar_min: float = -8.0
    logvar_max: float = 4.0
    # Confidence, fitted on validation after training (mgcma/calibration.py): probabilities are
    # softmax(logits / temperature); an answer whose top probability is below not_sure_below says "not sure".
    temperature: float = 1.0
    not_sure_below: float = 0.0

    def __post_init__(self):
        if self.modality not in ("both", "speech", "text"):
            raise ValueError(f"modality must be 'both', 'speech' or 'text', got {self.modality!r}")
        if self.modality != "both" and (self.use_dist or self.use_token or self.use_inst):
            raise ValueError(f"modality={self.modality!r} is a unimodal baseline: "
                             "turn off use_dist, use_token and use_inst (they need both modalities)")
        for name in ("dist_positives", "inst_positives"):
            if getattr(self, name) not in POSITIVES:
                raise ValueError(f"{name} must be one of {', '.join(POSITIVES)}, got {getattr(self, name)!r}")
        if self.speech_layers not in ("last", "weighted"):
            raise ValueError(f"speech_layers must be 'last' or 'weighted', got {self.speech_layers!r}")
        if self.speech_layer_span and (self.speech_layers != "weighted" or not re.fullmatch(r"\d+-\d+", self.speech_layer_span)):
            raise ValueError(f"speech_layer_span must be 'A-B' with speech_layers='weighted', got {self.speech_layer_span!r}")
        for side in ("speech", "text"):
            k = self.tuned_top(side)
            if k < 0 or (k and getattr(self, f"freeze_{side}_encoder")):
                raise ValueError(f"fine-tuning the {side} encoder's top layers needs it trainable "
                                 f"(freeze_{side}_encoder=False) and k >= 0")
        if len(self.labels) < 2 or len(set(self.labels)) != len(self.labels):
            raise ValueError(f"labels must be at least 2 distinct names, got {self.labels}")
        if not self.temperature > 0 or not 0 <= self.not_sure_below < 1:
            raise ValueError(f"temperature must be > 0 and not_sure_below in [0, 1); got {self.temperature}, {self.not_sure_below}")
        if self.lambda_corpus < 0 or (self.lambda_corpus and len(self.adversary_corpora) < 2):
            raise ValueError(f"lambda_corpus must be >= 0, and an adversary needs two or more corpora to tell apart; "
                             f"got {self.lambda_corpus} and {self.adversary_corpora}")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}")

    @property
    def hygiene(self):
        if not self.trim_silence and self.loudness_dbfs is None:
            return None
        return Hygiene(trim=self.trim_silence, loudness_dbfs=self.loudness_dbfs)

    def tuned_top(self, side: str) -> int:
        """How many top layers of the `side` ("speech" | "text") encoder train (0: none, or all of it)."""
        return self.finetune_top_layers if side == "speech" else self.finetune_top_text_layers

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


TEST_BERT = dict(model_type="bert", vocab_size=30522, hidden_size=32, num_hidden_layers=2,
                 num_attention_heads=2, intermediate_size=64, max_position_embeddings=128)
TEST_WHISPER = dict(model_type="whisper-encoder", n_mels=80, n_ctx=1500, d_model=32, n_heads=2, n_layers=2)


def preset(name: str, **overrides) -> ModelConfig:
    """`paper`: wav2vec2-base + bert-base-uncased. `whisper-tiny` / `whisper-base`: Whisper's
    audio encoder (embedded, frozen, every layer mixed) + all-MiniLM-L6-v2, the real-voice default.
    `tiny`: a small wav2vec2 trained from scratch (the synthetic-corpus model).
    `test` / `test-whisper`: small random encoders (MiniLM's tokenizer) for unit tests, seconds on a CPU."""
    if name in ("whisper-tiny", "whisper-base"):
        cfg = dict(speech_encoder=WHISPER_TINY_EN if name == "whisper-tiny" else WHISPER_BASE,
                   freeze_speech_encoder=True, speech_layers="weighted", text_encoder=EMBEDDED_MINILM,
                   freeze_text_encoder=True, d_model=128, n_heads=4, gauss_dim=32, dropout=0.2,
                   dist_positives="text", inst_positives="text", trim_silence=True, loudness_dbfs=-23.0)
    elif name == "test-whisper":
        cfg = dict(speech_encoder=None, speech_encoder_config=dict(TEST_WHISPER), text_encoder=None,
                   text_encoder_config=dict(TEST_BERT), tokenizer=EMBEDDED_MINILM, freeze_feature_encoder=False,
                   d_model=32, n_heads=2, gauss_dim=8, dropout=0.0)
    elif name == "paper":
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
        cfg = dict(speech_encoder=None, speech_encoder_config=speech, text_encoder=None,
                   text_encoder_config=dict(TEST_BERT), tokenizer=EMBEDDED_MINILM,
                   freeze_feature_encoder=False, d_model=32, n_heads=2, gauss_dim=8, dropout=0.0)
    else:
        raise ValueError(f"unknown preset {name!r}; choose from: {', '.join(PRESETS)}")
    cfg.update(overrides)
    return ModelConfig(**cfg)


PRESETS = ("paper", "whisper-tiny", "whisper-base", "tiny", "test", "test-whisper")


def add_precision_argument(parser) -> None:
    """--precision for the commands that run the bundled encoders."""
    parser.add_argument("--precision", default="float32", choices=PRECISIONS,
                        help="of the pretrained encoders: float32, or int8 on the CPU (faster encoders, 1-3 UA points "
                             "lower on unheard corpora: docs/performance.md)")


# ---------------------------------------------------------------------------- a checkpoint's files
CONFIG_FILE, WEIGHTS_FILE, TOKENIZER_DIR = "config.json", "model.safetensors", "tokenizer"


class CheckpointError(ValueError):
    """A checkpoint directory that cannot be loaded; the message says what is wrong."""


def load_config(directory: str | Path) -> ModelConfig:
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"checkpoint directory {directory} does not exist")
    path = directory / CONFIG_FILE
    if not path.is_file():
        raise CheckpointError(f"{directory} has no {CONFIG_FILE}: not an MGCMA checkpoint")
    try:
        return ModelConfig.load(path)
    except (ValueError, TypeError) as e:
        raise CheckpointError(f"bad {path}: {e}") from None
