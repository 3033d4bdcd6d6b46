"""Train the ablation settings with the same data, folds and seeds, and write the table.

  python -m mgcma.ablate --data synthetic --preset tiny --out runs/ablation [--unimodal] [train options]

Settings: all modules; without distribution / token / instance alignment; none (plain
fusion); with --unimodal also the speech-only and text-only baselines.
"""
from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from .train import TrainConfig, TrainingError, parser_for, train

SETTINGS = {
    "full": {},
    "no-dist": dict(use_dist=False),
    "no-token": dict(use_token=False),
    "no-inst": dict(use_inst=False),
    "none": dict(use_dist=False, use_token=False, use_inst=False),
}
UNIMODAL = {"speech-only": dict(modality="speech"), "text-only": dict(modality="text")}
DESCRIPTIONS = {"full": "MGCMA (all three modules)", "no-dist": "without distribution alignment",
                "no-token": "without token alignment", "no-inst": "without instance alignment",
                "none": "no alignment (plain fusion)", "speech-only": "speech only", "text-only": "text only"}


def ablation_table(root: str | Path) -> str:
    """Markdown table from <root>/<setting>/summary.json, in the settings' order."""
    root = Path(root)
    rows = ["| setting | folds | WA % (mean +- std) | UA % (mean +- std) |", "| --- | --- | --- | --- |"]
    for name in list(SETTINGS) + list(UNIMODAL):
        path = root / name / "summary.json"
        if not path.is_file():
            continue
        s = json.loads(path.read_text())
        rows.append(f"| {DESCRIPTIONS[name]} | {len(s['folds'])} | {100 * s['WA_mean']:.2f} +- {100 * s['WA_std']:.2f} "
                    f"| {100 * s['UA_mean']:.2f} +- {100 * s['UA_std']:.2f} |")
    return "\n".join(rows) + "\n"


def main(argv=None) -> int:
    parser = parser_for(TrainConfig, __doc__.strip().splitlines()[0])
    parser.add_argument("--unimodal", action="store_true", help="also train the speech-only and text-only baselines")
    parser.add_argument("--settings", default="all", help="comma-separated subset of: " + ", ".join(list(SETTINGS) + list(UNIMODAL)))
    args = vars(parser.parse_args(argv))
    unimodal, chosen = args.pop("unimodal"), args.pop("settings")
    base = TrainConfig(**args)
    settings = dict(SETTINGS, **(UNIMODAL if unimodal else {}))
    if chosen != "all":
        names = chosen.split(",")
        unknown = [n for n in names if n not in {**SETTINGS, **UNIMODAL}]
        if unknown:
            print(f"error: unknown setting(s) {unknown}", file=sys.stderr)
            return 1
        settings = {n: {**SETTINGS, **UNIMODAL}[n] for n in names}
    root = Path(base.out)
    try:
        for name, change in settings.items():
            train(dataclasses.replace(base, out=str(root / name), **change))
    except (TrainingError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    table = ablation_table(root)
    (root / "ablation.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
