"""MGCMA: a speech encoder (wav2vec 2.0 or Whisper's) + a BERT text encoder joined by
distribution-, token- and instance-level alignment, and a fusion classifier.

A batch may hold rows with one modality only (no audio, or no text): the missing side has an
all-False mask, its vectors are zeroed in the fusion, and the alignment losses use only the
rows that have both.

Shapes: B batch, N raw audio samples, Ts speech frames, Tt text tokens, d model width,
g Gaussian width, h attention heads, C classes, L encoder layers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import ModelConfig
from .encoders.build import (build_speech_encoder, build_text_encoder, encoder_layers, frame_seconds, freeze_below_top,
                             hidden_state_range, n_hidden_states, run_speech_encoder)
from .losses import GradientReversal, gaussian_kl_to_standard, info_nce, w2_distance, w2_similarity


def layer_span(config, n_states: int) -> slice:
    """The hidden states a weighted mix draws on (config.speech_layer_span "A-B", inclusive)."""
    if not config.speech_layer_span:
        return slice(0, n_states)
    states = hidden_state_range(config.speech_layer_span, n_states, "speech_layer_span")
    return slice(states.start, states.stop)


def scatter_rows(part: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """The rows computed for `present` (B,) bool -> all B rows, zeros where a row was absent."""
    full = part.new_zeros(len(present), *part.shape[1:])
    full[present] = part
    return full


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
        # a row whose context is missing (one-modality record) attends nowhere: its output is
        # the residual alone; one unmasked key keeps the softmax finite
        has_context = context_mask.any(-1)                                   # (B,)
        safe_mask = context_mask.clone()
        safe_mask[~has_context, 0] = True
        out, weights = self.attend(q, kv, safe_mask, need_weights)
        keep = has_context.to(out.dtype)
        x = x + self.drop(out * keep[:, None, None])
        if weights is not None:
            weights = weights * keep[:, None, None, None]
        x = x + self.drop(self.ff(self.norm_ff(x)))
        return x, weights

    def attend(self, q, kv, mask, need_weights):
        """nn.MultiheadAttention's computation on its own weights, (B, Tq, d) over (B, Tk, d) ->
        (B, Tq, d) and (B, h, Tq, Tk) or None. Calling the module imports sympy for a shape check
        on its first call: 0.45 s of the app's first answer."""
        B, Tq, d = q.shape
        h, p = self.attn.num_heads, self.attn.dropout if self.training else 0.0
        (w_q, w_k, w_v), (b_q, b_k, b_v) = self.attn.in_proj_weight.chunk(3), self.attn.in_proj_bias.chunk(3)
        split = lambda t: t.view(B, -1, h, d // h).transpose(1, 2)   # noqa: E731  (B, T, d) -> (B, h, T, d/h)
        q, k, v = split(F.linear(q, w_q, b_q)), split(F.linear(kv, w_k, b_k)), split(F.linear(kv, w_v, b_v))
        if need_weights:
            scores = (q @ k.transpose(-1, -2)) / math.sqrt(d // h)                       # (B, h, Tq, Tk)
            weights = scores.masked_fill(~mask[:, None, None, :], float("-inf")).softmax(-1)
            out = F.dropout(weights, p) @ v
        else:
            weights, out = None, F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None, None, :], dropout_p=p)
        return self.attn.out_proj(out.transpose(1, 2).reshape(B, Tq, d)), weights


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

    def project(self, speech_pooled, text_pooled):
        """-> L2-normalised (B, d) speech and text projections."""
        return (F.normalize(self.speech_proj(speech_pooled).float(), dim=-1),
                F.normalize(self.text_proj(text_pooled).float(), dim=-1))

    def forward(self, speech_pooled, text_pooled, positives=None, one_target=False):
        """positives: (B,) keys, equal keys are positive pairs (None: each clip with its own text)."""
        s, t = self.project(speech_pooled, text_pooled)
        scale = self.log_inv_tau.clamp(max=math.log(100.0)).exp()  # CLIP's cap on 1/tau
        return info_nce(scale * s @ t.t(), positives, one_target), s, t


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
    speech_present: torch.Tensor | None = None  # (B,) bool: the row has audio
    text_present: torch.Tensor | None = None    # (B,) bool: the row has text
    temperature: float = 1.0                   # the model's calibration: probs = softmax(logits / T)

    @property
    def probs(self):
        """Calibrated probabilities (B, C)."""
        return (self.logits.float() / self.temperature).softmax(-1)


class MGCMA(nn.Module):
    def __init__(self, config: ModelConfig, pretrained: bool = True, load_frozen: bool = True,
                 shared_encoders: "MGCMA | None" = None):
        """`pretrained`: load encoder weights from their sources (False: random init, as when
        a checkpoint's weights follow). Frozen encoders with a source are always loaded from it
        unless `load_frozen` is False, since checkpoints do not store them. `shared_encoders`: a
        model whose (frozen) encoder modules this one uses as they are: heads of an ensemble
        (mgcma/infer/ensemble.py) over one encoder pass."""
        super().__init__()
        self.config = c = config
        if c.uses_speech:
            from_source = c.freeze_speech_encoder or c.finetune_top_layers  # the checkpoint lacks (some of) its weights
            load = (pretrained or (from_source and load_frozen)) and c.speech_encoder is not None
            self.speech_encoder = shared_encoders.speech_encoder if shared_encoders else build_speech_encoder(c, load)
            if c.freeze_feature_encoder:
                self.speech_encoder.freeze_feature_encoder()
            if c.finetune_top_layers:
                freeze_below_top(self.speech_encoder, c.finetune_top_layers)
            if c.speech_layers == "weighted":
                self.speech_layers_used = layer_span(c, n_hidden_states(self.speech_encoder))
                used = self.speech_layers_used
                self.speech_layer_logits = nn.Parameter(torch.zeros(used.stop - used.start))
            self.speech_proj = Projection(self.speech_encoder.config.hidden_size, c.d_model)
        if c.uses_text:
            from_source = c.freeze_text_encoder or c.finetune_top_text_layers
            load = (pretrained or (from_source and load_frozen)) and c.text_encoder is not None
            self.text_encoder = shared_encoders.text_encoder if shared_encoders else build_text_encoder(c, load)
            if c.finetune_top_text_layers:
                freeze_below_top(self.text_encoder, c.finetune_top_text_layers)
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
        if c.lambda_corpus and c.uses_speech:   # training only: nothing at inference reads it
            self.corpus_adversary = nn.Sequential(nn.Linear(c.d_model, c.d_model), nn.GELU(),
                                                  nn.Linear(c.d_model, len(c.adversary_corpora)))
        n_vectors = c.uses_speech + c.uses_text
        fusion_dim = n_vectors * c.d_model + (2 * c.gauss_dim if c.use_dist else 0)
        self.classifier = nn.Sequential(nn.Linear(fusion_dim, c.d_model), nn.GELU(),
                                        nn.Dropout(c.dropout), nn.Linear(c.d_model, len(c.labels)))

    def train(self, mode: bool = True):
        super().train(mode)
        c = self.config
        for name in ("speech", "text"):
            encoder, top = getattr(self, f"{name}_encoder", None), c.tuned_top(name)
            if encoder is None or not (top or getattr(c, f"freeze_{name}_encoder")):
                continue
            encoder.eval()   # frozen parts stay deterministic (no dropout, no masking): their outputs can be cached
            if top:
                layers = list(encoder_layers(encoder))
                for layer in layers[len(layers) - top:]:
                    layer.train(mode)
        return self

    # -- encoders ---------------------------------------------------------------------------
    def encode_speech(self, audio, audio_mask):
        """audio: (B, N) float at 16 kHz, audio_mask: (B, N) bool -> (B, Ts, D_enc) frames, or
        (B, Ts, L, D_enc) every hidden state when speech_layers is "weighted"; and (B, Ts) bool.
        Rows without audio (an all-False mask) are not encoded: their frames are masked zeros."""
        present = audio_mask.any(-1)
        weighted = self.config.speech_layers == "weighted"
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.config.freeze_speech_encoder):
            if present.any():
                hidden, mask = run_speech_encoder(self.speech_encoder, audio[present], audio_mask[present], weighted)
            else:
                d = self.speech_encoder.config.hidden_size
                shape = (0, 1, n_hidden_states(self.speech_encoder), d) if weighted else (0, 1, d)
                hidden, mask = audio.new_zeros(shape), audio_mask.new_zeros(0, 1)
        if present.all():   # the usual batch: nothing to scatter
            return hidden, mask
        return scatter_rows(hidden, present), scatter_rows(mask, present)

    def mix_layers(self, features):
        """(B, Ts, L, D) every hidden state -> (B, Ts, D) by the learned softmax weights. Each
        state is layer-normalised first: their scales differ by orders of magnitude (SUPERB does the same)."""
        if features.dim() == 3:
            return features
        if len(features) > 1 and features.stride(0) == 0:   # one clip expanded to a row per answer: mix it once
            return self.mix_layers(features[:1]).expand(len(features), -1, -1)
        w = self.speech_layer_logits.softmax(0).to(features.dtype)
        width = (self.speech_encoder.config.hidden_size,)   # a constant, so that the ONNX export needs no shape op
        used = features[:, :, self.speech_layers_used]                      # (B, Ts, L', D)
        return torch.einsum("btld,l->btd", F.layer_norm(used, width), w)

    def mixed_shift(self, layer_shift):
        """A shift of each layer-normalised hidden state (B, L, D), as normalise.layer_frames
        measures it -> the shift it makes of the mixed frames (B, D); the mix is linear in them.
        (B, D), from a model without a layer mix, is already that."""
        if layer_shift is None or layer_shift.dim() == 2:
            return layer_shift
        w = self.speech_layer_logits.softmax(0).to(layer_shift.dtype)
        return torch.einsum("bld,l->bd", layer_shift[:, self.speech_layers_used], w)

    def encode_text(self, input_ids, text_mask):
        """input_ids, text_mask: (B, Tt) -> (B, Tt, D_enc)."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.config.freeze_text_encoder):
            return self.text_encoder(input_ids=input_ids, attention_mask=text_mask.long()).last_hidden_state

    # -- forward ----------------------------------------------------------------------------
    def forward(self, audio=None, audio_mask=None, input_ids=None, text_mask=None, labels=None,
                speech_features=None, speech_mask=None, text_features=None, text_keys=None, speech_shift=None,
                corpus=None):
        """Raw inputs (audio, input_ids) or cached encoder outputs (speech_features with
        speech_mask, text_features with text_mask), as when the encoders are frozen.
        A row with an all-False speech or text mask lacks that modality.
        text_keys: (B,) equal for identical transcripts (the "text" positives of the pair losses).
        speech_shift: (B, D_enc) added to every mixed encoder frame (mgcma/normalise.py: the
        training mean minus the mean of the speaker's or session's own speech).
        corpus: (B,) index into config.adversary_corpora (-1: none of them), for the adversary's loss."""
        c, out = self.config, {}
        if c.uses_speech:
            if speech_features is None:
                speech_features, speech_mask = self.encode_speech(audio, audio_mask.bool())
            mixed = self.mix_layers(speech_features)                         # (B, Ts, D_enc)
            if speech_shift is not None:
                mixed = mixed + speech_shift.to(mixed.dtype)[:, None, :]
            speech = self.speech_proj(mixed)                                 # (B, Ts, d)
            out["speech_mask"] = speech_mask = speech_mask.bool()
            out["speech_present"] = speech_mask.any(-1)
            out["speech_pooled"] = out["speech_fused"] = masked_mean(speech, speech_mask)
        if c.uses_text:
            text_mask = text_mask.bool()
            if text_features is None:
                text_features = self.encode_text(input_ids, text_mask)
            text = self.text_proj(text_features)                           # (B, Tt, d)
            out["text_mask"] = text_mask
            out["text_present"] = text_mask.any(-1)
            out["text_pooled"] = out["text_fused"] = masked_mean(text, text_mask)
        if c.use_token:
            s_al, t_al, out["speech_to_text_attn"], out["text_to_speech_attn"] = \
                self.token_align(speech, speech_mask, text, text_mask)
            out["speech_fused"] = masked_mean(s_al, speech_mask)
            out["text_fused"] = masked_mean(t_al, text_mask)
        if c.use_dist:
            out["mu_speech"], out["sigma_speech"] = self.speech_dist(out["speech_pooled"])
            out["mu_text"], out["sigma_text"] = self.text_dist(out["text_pooled"])
            out["w2"] = w2_distance(out["mu_speech"], out["sigma_speech"], out["mu_text"], out["sigma_text"])
            out["sim"] = w2_similarity(out["w2"], self.log_tau_dist.exp())
        logits = self.classifier(self.fusion(out))
        losses = {}
        if labels is not None:
            losses = self.compute_losses(out, logits, labels, text_keys)
            if corpus is not None and hasattr(self, "corpus_adversary"):
                losses["corpus"] = self.corpus_loss(out, corpus)
        total = None
        if losses:
            total = (losses["ce"] + c.lambda_dist * losses.get("dist", 0.0)
                     + c.lambda_inst * losses.get("inst", 0.0) + c.lambda_kl * losses.get("kl", 0.0)
                     + losses.get("corpus", 0.0))   # its weight is in the reversal: the adversary learns at full rate
        return MGCMAOutput(logits=logits, loss=total, losses=losses, temperature=c.temperature, **out)

    def fusion(self, out: dict) -> torch.Tensor:
        """concat(speech, text, mu_speech, mu_text) -> (B, fusion_dim); a missing modality's
        vectors are zeros, so one classifier answers from either modality alone or both."""
        parts = []
        for name in ("speech", "text"):
            if f"{name}_fused" not in out:
                continue
            keep = out[f"{name}_present"].to(out[f"{name}_fused"].dtype)[:, None]
            parts.append((name, out[f"{name}_fused"] * keep, keep))
        vectors = [v for _, v, _ in parts]
        if self.config.use_dist:
            vectors += [out[f"mu_{name}"] * keep.to(out[f"mu_{name}"].dtype) for name, _, keep in parts]
        return torch.cat([v.to(vectors[0].dtype) for v in vectors], dim=-1)

    def positive_keys(self, kind: str, labels, text_keys):
        """(B,) keys whose equality marks positive pairs, or None for each clip with its own text."""
        if kind == "label":
            return labels
        if kind == "text" and text_keys is not None:
            return text_keys
        return None

    def compute_losses(self, out, logits, labels, text_keys=None):
        """Cross-entropy on every row; the pair losses on rows that have both modalities."""
        c = self.config
        losses = {"ce": F.cross_entropy(logits.float(), labels)}
        if c.modality != "both":
            return losses
        both = out["speech_present"] & out["text_present"]
        if c.use_dist:
            keys = self.positive_keys(c.dist_positives, labels, text_keys)
            losses["dist"] = info_nce(out["sim"][both][:, both], None if keys is None else keys[both],
                                      one_target=c.dist_positives == "text")
            kl = [gaussian_kl_to_standard(out[f"mu_{n}"][out[f"{n}_present"]], out[f"sigma_{n}"][out[f"{n}_present"]])
                  for n in ("speech", "text") if out[f"{n}_present"].any()]
            losses["kl"] = 0.5 * sum(kl) if kl else logits.new_zeros(())
        if c.use_inst:
            keys = self.positive_keys(c.inst_positives, labels, text_keys)
            losses["inst"], _, _ = self.instance_align(out["speech_pooled"][both], out["text_pooled"][both],
                                                       None if keys is None else keys[both], c.inst_positives == "text")
        return losses

    @staticmethod
    def adversary_rows(speech_present: torch.Tensor, corpus: torch.Tensor) -> torch.Tensor:
        """(B,) bool: the rows the corpus adversary hears, those with speech of a training corpus."""
        return speech_present & (corpus >= 0)

    def corpus_loss(self, out: dict, corpus: torch.Tensor) -> torch.Tensor:
        """The adversary's cross-entropy over its rows (adversary_rows); its gradient reaches the
        voice reversed, times lambda_corpus."""
        rows = self.adversary_rows(out["speech_present"], corpus)
        if not rows.any():
            return out["speech_pooled"].new_zeros(()).float()
        hidden = GradientReversal.apply(out["speech_pooled"][rows], self.config.lambda_corpus)   # (B', d)
        return F.cross_entropy(self.corpus_adversary(hidden).float(), corpus[rows])

    @property
    def frame_seconds(self) -> float:
        """Seconds between speech frames (Whisper: 20 ms; wav2vec2: the product of its CNN strides)."""
        return frame_seconds(self.speech_encoder)
