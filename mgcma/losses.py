"""The 2-Wasserstein distance between diagonal Gaussians and the contrastive losses."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def w2_squared(mu_a, sigma_a, mu_b, sigma_b):
    """Exact squared 2-Wasserstein distance between diagonal Gaussians, for every pair.

    For N(mu_a, diag(sigma_a^2)) and N(mu_b, diag(sigma_b^2)) the covariances commute, so
    W2^2 = ||mu_a - mu_b||^2 + ||sigma_a - sigma_b||^2.
    mu_a, sigma_a: (A, g); mu_b, sigma_b: (B, g) -> (A, B)
    """
    mu_a, sigma_a, mu_b, sigma_b = (x.float() for x in (mu_a, sigma_a, mu_b, sigma_b))
    d_mu = (mu_a[:, None, :] - mu_b[None, :, :]).pow(2).sum(-1)
    d_sigma = (sigma_a[:, None, :] - sigma_b[None, :, :]).pow(2).sum(-1)
    return d_mu + d_sigma


def w2_distance(mu_a, sigma_a, mu_b, sigma_b):
    """W2 for every pair, (A, B). Exactly 0 for identical Gaussians, with a finite gradient there."""
    sq = w2_squared(mu_a, sigma_a, mu_b, sigma_b)
    positive = sq > 0
    safe = torch.where(positive, sq, torch.ones_like(sq))  # sqrt'(0) is infinite
    return torch.where(positive, safe.sqrt(), torch.zeros_like(sq))


def w2_similarity(w2, tau):
    """Sim = -W2 / tau: larger for closer distributions."""
    return -w2 / tau


def info_nce(sim, labels=None, one_target: bool = False):
    """Symmetric InfoNCE over a (B, B) similarity matrix whose rows are speech, columns text.

    Positives are the diagonal (speech i with its own text i), or, given `labels`, every
    pair with equal labels. `one_target` False: the supervised-contrastive mean of the
    positives' log-probabilities (same emotion = many targets). True: the positives are one
    target, -log of their summed probability (identical transcripts are one text, so a repeated
    sentence is neither a negative nor a floor the loss cannot pass). A batch of one has no
    negatives: the loss is 0 rather than NaN.
    """
    n = sim.shape[0]
    if n < 2:
        return sim.new_zeros(()) * sim.sum()
    if labels is None:
        target = torch.arange(n, device=sim.device)
        return 0.5 * (F.cross_entropy(sim, target) + F.cross_entropy(sim.t(), target))
    positive = labels[:, None] == labels[None, :]
    def one_side(s):
        log_prob = s.log_softmax(dim=-1)
        if one_target:
            return -log_prob.masked_fill(~positive, float("-inf")).logsumexp(-1).mean()
        return -(log_prob * positive).sum(-1).div(positive.sum(-1)).mean()
    return 0.5 * (one_side(sim) + one_side(sim.t()))


def gaussian_kl_to_standard(mu, sigma):
    """Mean over the batch of KL(N(mu, sigma^2) || N(0, I)); mu, sigma: (B, g)."""
    var = sigma.float().pow(2)
    kl = 0.5 * (var + mu.float().pow(2) - 1.0 - var.log()).sum(-1)
    return kl.mean()


class GradientReversal(torch.autograd.Function):
    """Identity forward; the gradient backward times -weight (Ganin & Lempitsky 2015): what follows
    learns to tell something apart, what comes before learns to hide it."""

    @staticmethod
    def forward(ctx, x, weight: float):
        ctx.weight = weight
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -ctx.weight * grad, None
