"""Two models' answers to the same clips, compared on test sets redrawn from the same speakers: is
one's UA higher than the other's by more than which speakers were tested could explain?

  python -m mgcma.analysis compare --metrics A.json B.json    (each written by python -m mgcma.evaluate --out)
"""
from __future__ import annotations

import numpy as np

from mgcma.metrics import classification_metrics, percentiles, resampled_speaker_uas


def paired_answers(first: dict, second: dict) -> tuple[list[str], list[str], list[str], list[str], list[str]]:
    """(labels, speakers, true labels, first's answers, second's answers) over the clips both answered."""
    if "answers" not in first or "answers" not in second:
        raise ValueError("a metrics file has no answers: write both with python -m mgcma.evaluate --out")
    if first["labels"] != second["labels"]:
        raise ValueError(f"the models answer in different labels: {first['labels']} and {second['labels']}")
    theirs = {a["id"]: a for a in second["answers"]}
    both = [(a, theirs[a["id"]]) for a in first["answers"] if a["id"] in theirs]
    if not both:
        raise ValueError("the two files share no clip: score both on the same manifest and split")
    return (first["labels"], [a["speaker"] for a, _ in both], [a["label"] for a, _ in both],
            [a["predicted"] for a, _ in both], [b["predicted"] for _, b in both])


def compare(first: dict, second: dict, draws: int = 1000, seed: int = 0) -> dict:
    """The second's UA minus the first's on the clips both answered: as measured, and over redrawn
    speaker sets ({low, median, high}, the share of sets where the second is lower); the clips only one
    gets right."""
    labels, speakers, truth, a, b = paired_answers(first, second)
    index = {name: k for k, name in enumerate(labels)}
    y, pa, pb = ([index[x] for x in column] for column in (truth, a, b))
    uas = resampled_speaker_uas(y, [pa, pb], speakers, len(labels), draws, seed)
    if uas is None:
        raise ValueError("the clips come from one speaker: nothing to redraw")
    ua_a, ua_b = (classification_metrics(np.array(y), np.array(p), labels)["UA"] for p in (pa, pb))
    right_a, right_b = np.array(pa) == np.array(y), np.array(pb) == np.array(y)
    return dict(n=len(y), speakers=len(set(speakers)), UA=[ua_a, ua_b], difference=ua_b - ua_a,
                over_resampled_speakers=percentiles(uas[:, 1] - uas[:, 0]),
                share_second_lower=float(np.mean(uas[:, 1] < uas[:, 0])),
                only_first_right=int((right_a & ~right_b).sum()), only_second_right=int((right_b & ~right_a).sum()))


def report(result: dict, names: tuple[str, str]) -> str:
    spread = result["over_resampled_speakers"]
    return (f"{result['n']} clips of {result['speakers']} speakers: UA {100 * result['UA'][0]:.2f} % ({names[0]}), "
            f"{100 * result['UA'][1]:.2f} % ({names[1]}); {names[1]} minus {names[0]}: {100 * result['difference']:+.2f} "
            f"points, {100 * spread['low']:+.1f} to {100 * spread['high']:+.1f} over redrawn speaker sets "
            f"(5th-95th percentile; {names[1]} lower in {100 * result['share_second_lower']:.0f} % of them); "
            f"right only by {names[0]}: {result['only_first_right']} clips, only by {names[1]}: {result['only_second_right']}")
