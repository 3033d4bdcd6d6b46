import numpy as np
import pytest
from scipy.special import softmax

from mgcma.calibration import (accuracy_coverage, calibrate, calibrated, ece_by_chance, expected_calibration_error,
                               fit_class_bias, fit_temperature, not_sure_threshold, reliability)


def sampled(n=4000, classes=4, seed=0):
    """Logits whose softmax is the true probability of each label (a calibrated model)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1.5, (n, classes))
    labels = np.array([rng.choice(classes, p=p) for p in softmax(z, axis=1)])
    return z, labels


def test_calibrated_probabilities_are_the_softmax_of_the_tempered_logits():
    z, _ = sampled(n=50)
    np.testing.assert_allclose(calibrated(z, 2.0), softmax(z / 2.0, axis=1), rtol=1e-12)
    huge = calibrated(np.array([[1000.0, 0.0, -1000.0, 999.0]]))       # no overflow
    np.testing.assert_allclose(huge, softmax(np.array([[1000.0, 0.0, -1000.0, 999.0]]), axis=1))
    assert np.isfinite(huge).all() and huge.sum() == pytest.approx(1.0)


def test_temperature_recovers_how_overconfident_the_logits_are():
    z, labels = sampled()
    assert fit_temperature(3.0 * z, labels) == pytest.approx(3.0, rel=0.1)
    assert fit_temperature(0.5 * z, labels) == pytest.approx(0.5, rel=0.1)
    result = calibrate(3.0 * z, labels)
    assert result.ece_after < 0.03 < result.ece_before


def test_each_group_weighs_the_same_in_the_temperature():
    z, labels = sampled(seed=1)
    big, small = slice(0, 3600), slice(3600, 4000)
    logits = np.concatenate([1.0 * z[big], 4.0 * z[small]])     # the small group is far more overconfident
    pooled = fit_temperature(logits, labels)
    by_group = fit_temperature(logits, labels, groups=[0] * 3600 + [1] * 400)
    assert pooled < by_group                                     # equal weight pulls towards the small group


def test_the_class_bias_undoes_a_model_leaning_towards_one_class():
    z, labels = sampled(seed=2)
    leaning = z + np.array([2.0, 0.0, 0.0, 0.0])              # class 0 favoured by 2 nats
    bias = fit_class_bias(leaning, labels)
    np.testing.assert_allclose(bias - bias[1:].mean(), [-2.0, 0, 0, 0], atol=0.25)
    assert abs(fit_class_bias(z, labels)).max() < 0.25       # a model that favours none is left alone
    shares = np.bincount((leaning + bias).argmax(1), minlength=4) / len(z)
    assert shares.max() < 0.3 < np.bincount(leaning.argmax(1), minlength=4)[0] / len(z)


def test_ece_by_hand():
    # bin (0.6, 0.667]: two answers at 0.65, one right -> |0.5 - 0.65|; bin (0.933, 1]: two at 0.95, both right -> 0.05
    probs = np.array([[0.65, 0.35], [0.65, 0.35], [0.95, 0.05], [0.95, 0.05]])
    targets = np.array([0, 1, 0, 0])
    assert expected_calibration_error(probs, targets) == pytest.approx(0.5 * 0.15 + 0.5 * 0.05)
    cells = [c for c in reliability(probs, targets) if c["n"]]
    assert [(c["n"], c["accuracy"]) for c in cells] == [(2, 0.5), (2, 1.0)]


def test_not_sure_withholds_the_answers_more_likely_wrong_than_right():
    top = np.array([0.36, 0.38, 0.40, 0.60, 0.70, 0.90])
    right = np.array([False, False, True, False, True, True])
    probs = np.stack([top, (1 - top) / 2, (1 - top) / 2], 1)
    targets = np.where(right, 0, 1)
    t = not_sure_threshold(probs, targets)
    assert 0.38 < t <= 0.40          # withholding the two least sure (both wrong) gains the most
    assert not_sure_threshold(probs[4:], targets[4:]) == 0.0     # all right: answer everything
    curve = accuracy_coverage(probs, targets, thresholds=[0.0, t])
    assert curve[0]["coverage"] == 1.0 and curve[1]["coverage"] == pytest.approx(4 / 6)
    assert curve[1]["accuracy"] == pytest.approx(3 / 4)


def test_a_large_group_neither_chooses_the_threshold_nor_hides_a_small_groups_ece():
    # group 0: 1000 answers at 0.6 (550 right), 100 at 0.9 (right); group 1: 10 at 0.6 (wrong), 10 at 0.9 (right)
    top = np.array([0.6] * 1000 + [0.9] * 100 + [0.6] * 10 + [0.9] * 10)
    right = np.array([True] * 550 + [False] * 450 + [True] * 100 + [False] * 10 + [True] * 10)
    groups = np.array([0] * 1100 + [1] * 20)
    probs, targets = np.stack([top, 1 - top], 1), np.where(right, 0, 1)

    def answered(threshold):
        return int((top >= threshold).sum())
    assert answered(not_sure_threshold(probs, targets)) == 1120           # pooled, the big group wins: answer all
    assert answered(not_sure_threshold(probs, targets, groups)) == 110    # each group weighs the same: withhold 0.6
    by_group = expected_calibration_error(probs, targets, groups=groups)
    assert by_group == pytest.approx((1000 / 1100 * 0.05 + 100 / 1100 * 0.1 + 0.5 * 0.6 + 0.5 * 0.1) / 2)
    assert expected_calibration_error(probs, targets) < 0.5 * by_group
    assert calibrate(np.log(probs), targets, groups).ece_before == pytest.approx(by_group)


def test_the_ece_a_calibrated_model_shows_by_chance_tells_miscalibration_from_too_few_answers():
    for seed in range(3):
        z, labels = sampled(n=170, seed=seed)             # calibrated, as few answers as RAVDESS's test actors
        probs = calibrated(z)
        ece = expected_calibration_error(probs, labels)
        chance = ece_by_chance(probs.max(1), ece)
        assert chance["low"] <= ece <= chance["high"] and chance["share_reaching_measured"] > 0.05
        assert chance["high"] > 0.05                      # so a goal of 5 % cannot be judged on 170 answers
    z, labels = sampled(n=4000)
    sure = calibrated(3.0 * z)                            # overconfident
    ece = expected_calibration_error(sure, labels)
    chance = ece_by_chance(sure.max(1), ece)
    assert ece > chance["high"] and chance["share_reaching_measured"] == 0.0
    assert chance["high"] < ece_by_chance(sure[:170].max(1), ece)["low"]   # more answers, a narrower range
    assert ece_by_chance(np.ones(50), 0.0) == dict(low=0.0, median=0.0, high=0.0, share_reaching_measured=1.0)
