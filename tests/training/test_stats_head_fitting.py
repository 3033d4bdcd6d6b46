"""Fitting a statistics head (mgcma/training/stats_head.py): taking out the directions that tell its
training corpora apart within a class."""
import numpy as np
import pytest

from mgcma.training.stats_head import TrainingSet, removal_candidates, train_stats_head

LABELS = ["neutral", "happy", "angry", "sad"]


def corpora_with_habits(shifts=(0, 1, 2), n_per_corpus: int = 80, seed: int = 0) -> TrainingSet:
    """One layer of 8 features: the first 4 tell the class alike in every corpus; the last 4 tell
    it more loudly, but each corpus in its own way (class y lights feature 4 + (y + shift) % 4)."""
    rng = np.random.default_rng(seed)
    labels = np.tile(np.arange(4), len(shifts) * n_per_corpus // 4)
    shift = np.repeat(shifts, n_per_corpus)
    groups = np.array([f"c{k}" for k in shift])
    own = np.eye(4)[(labels + shift) % 4] * 3.0
    stats = np.concatenate([np.eye(4)[labels] * 2.0, own], -1)[:, None, None]      # (N, V=1, L=1, F=8)
    return TrainingSet(stats + rng.normal(size=stats.shape), labels, groups)


def test_removing_what_tells_the_corpora_apart_is_chosen_when_it_helps_an_unheard_corpus():
    data = corpora_with_habits()
    reports = []
    head = train_stats_head(data, LABELS, "enc", layers=[0], report=reports.append, removals=(0, 2, 3))
    (_, ua_kept), _, (_, ua_removed) = head.config.removal_selection
    assert ua_removed > ua_kept + 0.05 and head.config.removed_directions == 3
    assert len(reports) == len(head.config.selection) + 2
    unheard = corpora_with_habits(shifts=(3,), seed=1)   # a corpus with a habit none of them had
    answers = head.probabilities(unheard.stats[:, 0, 0]).argmax(1)
    plain = train_stats_head(data, LABELS, "enc", layers=[0], report=reports.append)
    assert plain.config.removed_directions == 0 and plain.config.removal_selection == []
    assert (answers == unheard.labels).mean() > (plain.probabilities(unheard.stats[:, 0, 0]).argmax(1) == unheard.labels).mean() + 0.1


def test_a_head_barely_moves_when_a_clip_is_said_as_another_corpus_says_it():
    data = corpora_with_habits()
    head = train_stats_head(data, LABELS, "enc", layers=[0], report=lambda _: None, removals=(3,))
    plain = train_stats_head(data, LABELS, "enc", layers=[0], report=lambda _: None)
    neutral_of_c0 = data.stats[(data.labels == 0) & (data.groups == "c0"), 0, 0]
    habits = np.eye(8)[4:]                           # where each corpus's neutral lights up: c0 4, c1 5, c2 6

    def moved(h, to: int):                           # the loud habit feature of c0 moved to corpus `to`'s
        said_there = neutral_of_c0 + 3.0 * (habits[to] - habits[0])
        return np.abs(h.probabilities(said_there) - h.probabilities(neutral_of_c0)).max(1).mean()
    assert np.mean([moved(head, k) for k in (1, 2)]) < np.mean([moved(plain, k) for k in (1, 2)]) / 3


def test_never_more_directions_than_the_corpora_span():
    data = corpora_with_habits(shifts=(0, 1))
    assert data.stats.shape[-1] == 8
    head = train_stats_head(data, LABELS, "enc", layers=[0], report=lambda _: None, removals=(8,))
    # two corpora, four classes: at most four directions tell them apart; the shared class signal survives
    assert head.probabilities(data.stats[:, 0, 0]).argmax(1).tolist() != [0] * len(data.labels)
    assert np.abs(head.coef[:, :4]).sum() > 0


def test_removal_candidates_are_counts():
    assert removal_candidates("0,2,4") == [0, 2, 4] and removal_candidates("0") == [0]
    for spec in ("-1", "a", "1,,2"):
        with pytest.raises(ValueError, match="--remove-corpus-directions"):
            removal_candidates(spec)
