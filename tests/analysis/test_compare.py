import json

import pytest

from mgcma.analysis.__main__ import main
from mgcma.analysis.compare import compare

LABELS = ["neutral", "happy", "angry", "sad"]


def metrics(wrong_for=(), skip=()):
    """An evaluate --out file's answers: 6 speakers x 8 clips, right except for the speakers in wrong_for."""
    answers = []
    for s in range(6):
        for k in range(8):
            label = LABELS[k % 4]
            predicted = LABELS[(k + 1) % 4] if s in wrong_for and k < 4 else label
            if (s, k) not in skip:
                answers.append(dict(id=f"s{s}-{k}", speaker=f"s{s}", label=label, predicted=predicted))
    return dict(labels=LABELS, answers=answers)


def test_a_model_worse_on_one_speaker_is_lower_on_most_redrawn_speaker_sets():
    same = compare(metrics(), metrics())
    assert same["difference"] == 0 and same["share_second_lower"] == 0 and same["only_first_right"] == 0
    worse = compare(metrics(), metrics(wrong_for=(0,)), seed=1)
    assert worse["difference"] == pytest.approx(-4 / 48) and worse["only_first_right"] == 4
    assert worse["over_resampled_speakers"]["low"] < worse["difference"] < worse["over_resampled_speakers"]["high"] <= 0
    assert 0.5 < worse["share_second_lower"] < 1      # the sets that drew no clip of that speaker see no difference
    assert compare(metrics(), metrics(skip={(0, 0)}))["n"] == 47   # only the clips both answered


def test_files_that_cannot_be_compared_say_why(tmp_path, capsys):
    with pytest.raises(ValueError, match="no answers"):
        compare(dict(labels=LABELS), metrics())
    with pytest.raises(ValueError, match="different labels"):
        compare(metrics(), dict(metrics(), labels=LABELS[::-1]))
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(metrics()))
    b.write_text(json.dumps(metrics(wrong_for=(2, 3))))
    assert main(["compare", "--metrics", str(a), str(b), "--name", "today", "candidate", "--out", str(tmp_path)]) == 0
    assert "candidate minus today: -16.67 points" in capsys.readouterr().out
    assert json.loads((tmp_path / "compare-today-candidate.json").read_text())["only_first_right"] == 8
    b.write_text(json.dumps(dict(labels=LABELS)))
    assert main(["compare", "--metrics", str(a), str(b)]) == 1 and "no answers" in capsys.readouterr().err
