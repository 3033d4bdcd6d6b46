import numpy as np
import pytest

from mgcma.metrics import classification_metrics, confusion_matrix, ua_over_resampled_speakers

LABELS = ["neutral", "happy", "angry", "sad"]


def test_wa_and_ua_against_hand_computed_values():
    # neutral: 3 of 4 right; happy: 1 of 2; angry: 2 of 2; sad: 0 of 2  -> WA 6/10, UA (0.75 + 0.5 + 1 + 0) / 4
    y_true = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3]
    y_pred = [0, 0, 0, 1, 1, 0, 2, 2, 0, 2]
    m = classification_metrics(np.array(y_true), np.array(y_pred), LABELS)
    assert m["WA"] == pytest.approx(0.6) and m["UA"] == pytest.approx(0.5625)
    assert m["recall"] == pytest.approx({"neutral": 0.75, "happy": 0.5, "angry": 1.0, "sad": 0.0})
    assert m["confusion_matrix"] == [[3, 1, 0, 0], [1, 1, 0, 0], [0, 0, 2, 0], [1, 0, 1, 0]]   # rows: true
    assert m["n"] == 10 and m["labels"] == LABELS


def test_a_class_absent_from_the_test_set_is_left_out_of_ua_not_counted_as_zero():
    # no sad clip at all: UA averages the three classes that are there; predicting sad still costs WA
    y_true = [0, 0, 1, 1, 2, 2]
    y_pred = [0, 3, 1, 1, 2, 2]
    m = classification_metrics(np.array(y_true), np.array(y_pred), LABELS)
    assert m["recall"]["sad"] is None
    assert m["UA"] == pytest.approx((0.5 + 1 + 1) / 3) and m["WA"] == pytest.approx(5 / 6)


def test_wa_weights_by_support_and_ua_does_not():
    # a majority-class guesser: WA is the majority's share, UA is chance
    y_true = np.array([0] * 90 + [1] * 10)
    m = classification_metrics(y_true, np.zeros(100, dtype=int), LABELS[:2])
    assert m["WA"] == pytest.approx(0.9) and m["UA"] == pytest.approx(0.5)


def test_confusion_matrix_counts_repeated_pairs():
    assert confusion_matrix([1, 1, 1], [0, 0, 1], 2).tolist() == [[0, 0], [2, 1]]


def test_the_ua_over_redrawn_speakers_is_as_wide_as_the_speakers_differ():
    labels = np.tile([0, 1, 2, 3], 10)                       # 40 clips per speaker, classes balanced
    alike = ua_over_resampled_speakers(np.tile(labels, 6), np.tile(labels, 6), np.repeat(list("abcdef"), 40), 4)
    assert alike == dict(low=1.0, median=1.0, high=1.0, speakers=6)
    # three speakers always right, three right on half of each class: a spread around the UA of 0.75
    half = np.where(np.arange(40) < 20, labels, (labels + 1) % 4)
    preds = np.concatenate([labels] * 3 + [half] * 3)
    spread = ua_over_resampled_speakers(np.tile(labels, 6), preds, np.repeat(list("abcdef"), 40), 4)
    assert spread["low"] < 0.7 and spread["high"] > 0.8 and spread["median"] == pytest.approx(0.75, abs=0.05)
    assert ua_over_resampled_speakers(labels, labels, ["one"] * 40, 4) is None
