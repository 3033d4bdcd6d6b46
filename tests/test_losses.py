import numpy as np
import pytest
import torch
from scipy.linalg import sqrtm

from mgcma.losses import GradientReversal, gaussian_kl_to_standard, info_nce, w2_distance, w2_similarity, w2_squared


def w2_direct(mu1, cov1, mu2, cov2):
    """General Gaussian W2 (Dowson & Landau): ||m1-m2||^2 + Tr(S1 + S2 - 2 (S2^½ S1 S2^½)^½)."""
    root2 = sqrtm(cov2)
    cross = sqrtm(root2 @ cov1 @ root2)
    return float(np.sqrt(np.sum((mu1 - mu2) ** 2) + np.trace(cov1 + cov2 - 2 * cross.real)))


def test_w2_matches_direct_computation_for_hand_made_gaussians():
    mu = torch.tensor([[0.0, 0.0, 0.0], [1.0, -2.0, 0.5], [3.0, 1.0, -1.0]], dtype=torch.float64)
    sigma = torch.tensor([[1.0, 1.0, 1.0], [0.5, 2.0, 1.5], [0.1, 0.3, 3.0]], dtype=torch.float64)
    got = w2_distance(mu, sigma, mu, sigma)
    for i in range(3):
        for j in range(3):
            expected = w2_direct(mu[i].numpy(), np.diag(sigma[i].numpy() ** 2),
                                 mu[j].numpy(), np.diag(sigma[j].numpy() ** 2))
            assert got[i, j].item() == pytest.approx(expected, abs=1e-5)


def test_w2_known_values():
    # N(0, I) vs N((3, 4), I): only the means differ -> 5
    mu_a, s_a = torch.zeros(1, 2), torch.ones(1, 2)
    mu_b, s_b = torch.tensor([[3.0, 4.0]]), torch.ones(1, 2)
    assert w2_distance(mu_a, s_a, mu_b, s_b).item() == pytest.approx(5.0)
    # same means, sigmas 1 vs 3 in 4 dims -> sqrt(4 * 2^2) = 4
    assert w2_distance(torch.zeros(1, 4), torch.ones(1, 4), torch.zeros(1, 4), 3 * torch.ones(1, 4)).item() \
        == pytest.approx(4.0)
    assert w2_squared(mu_a, s_a, mu_b, s_b).item() == pytest.approx(25.0)


def test_identical_gaussians_give_exactly_zero_with_finite_gradient():
    mu = torch.randn(4, 8, requires_grad=True)
    sigma = torch.rand(4, 8).add(0.1).requires_grad_()
    w2 = w2_distance(mu, sigma, mu, sigma)
    assert torch.all(w2.diagonal() == 0)
    w2.sum().backward()
    assert torch.isfinite(mu.grad).all() and torch.isfinite(sigma.grad).all()


def test_sim_decreases_as_w2_grows():
    w2 = torch.linspace(0, 10, 50)
    sim = w2_similarity(w2, torch.tensor(0.5))
    assert torch.all(sim[1:] < sim[:-1])
    assert sim[0] == 0


def test_info_nce_prefers_matching_pairs_and_is_zero_for_one():
    good = torch.eye(4) * 10
    bad = torch.ones(4, 4) - torch.eye(4) * 10
    assert info_nce(good) < info_nce(bad)
    one = info_nce(torch.randn(1, 1, requires_grad=True))
    assert one.item() == 0 and torch.isfinite(one)
    one.backward()


def test_info_nce_label_positives_counts_same_class_pairs():
    labels = torch.tensor([0, 0, 1, 1])
    block = (labels[:, None] == labels[None, :]).float() * 10
    assert info_nce(block, labels) < info_nce(torch.eye(4) * 10, labels)
    assert torch.isfinite(info_nce(torch.randn(4, 4), labels))


def test_kl_is_zero_for_standard_normal():
    assert gaussian_kl_to_standard(torch.zeros(3, 5), torch.ones(3, 5)).item() == pytest.approx(0.0)
    assert gaussian_kl_to_standard(torch.ones(3, 5), torch.ones(3, 5)).item() == pytest.approx(2.5)


def hand_info_nce(sim: np.ndarray, labels: list[int], one_target: bool) -> float:
    """The definition written out with loops: per row (speech i) and per column (text j), the
    log-softmax; label positives either averaged (many targets) or summed in probability (one)."""
    def side(s):
        total = 0.0
        for i in range(len(s)):
            log_p = s[i] - np.log(np.exp(s[i]).sum())
            pos = [j for j in range(len(s)) if labels[j] == labels[i]]
            total += -np.log(np.exp(log_p[pos]).sum()) if one_target else -np.mean(log_p[pos])
        return total / len(s)
    return 0.5 * (side(sim) + side(sim.T))


@pytest.mark.parametrize("one_target", [False, True])
def test_label_positives_give_the_loss_as_defined_on_a_hand_built_batch(one_target):
    sim = np.array([[2.0, 1.5, -1.0, 0.0], [0.5, 3.0, 0.0, -2.0], [-1.0, 0.2, 1.0, 0.8], [0.0, -0.5, 2.5, 0.3]])
    labels = [1, 1, 2, 2]              # rows 0-1 and 2-3 share an emotion: each pair is positive both ways
    got = info_nce(torch.tensor(sim), torch.tensor(labels), one_target=one_target).item()
    assert got == pytest.approx(hand_info_nce(sim, labels, one_target), rel=1e-6)
    # with every label distinct the positives are the diagonal alone: the plain pair loss
    assert info_nce(torch.tensor(sim), torch.tensor([0, 1, 2, 3]), one_target=one_target).item() == pytest.approx(
        info_nce(torch.tensor(sim)).item(), rel=1e-6)
    # the shared labels change the loss; as one target, same-label texts only add probability
    pair = info_nce(torch.tensor(sim)).item()
    assert got != pytest.approx(pair) and (got < pair if one_target else True)


def test_gradient_reversal_passes_values_and_returns_the_gradient_reversed_and_weighted():
    x = torch.randn(3, 4, requires_grad=True)
    y = GradientReversal.apply(x, 0.3)
    assert torch.equal(y, x)
    (y * torch.arange(4.0)).sum().backward()
    assert torch.allclose(x.grad, -0.3 * torch.arange(4.0).expand(3, 4))
