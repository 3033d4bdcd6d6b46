"""Train the ablation settings with the same data, folds and seeds, and write the table.

  python -m mgcma.ablate --data synthetic --preset whisper-tiny --freeze-encoders --seeds 0,1,2 \
                         --unimodal --out runs/ablation [train options]

Settings: all modules; without distribution / token / instance alignment; none (plain
fusion); with --unimodal also the speech-only and text-only baselines; by name (--settings)
also full-label, the pair losses with positives by emotion label. With frozen encoders
their outputs are computed once and shared by every setting, seed and fold. The table gives
mean +- std over every seed x fold and each setting's paired UA difference to the full model
and to plain fusion (Wilcoxon signed-rank over the same seeds and folds). --resume continues a killed ablation;
--earlier adds the runs recorded in an earlier ablation.json whose folders are gone.
"""
from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from .training.ablation import SETTINGS, UNIMODAL, VARIANTS, ablation_summary, ablation_table, chosen_settings
from .training.config import TrainConfig, parser_for
from .training.loop import train
from .training.run_files import TrainingError


def main(argv=None) -> int:
    parser = parser_for(TrainConfig, "python -m mgcma.ablate", __doc__.strip().splitlines()[0])
    parser.add_argument("--unimodal", action="store_true", help="also train the speech-only and text-only baselines")
    parser.add_argument("--settings", default="all", help="comma-separated subset of: " + ", ".join(list(SETTINGS) + list(UNIMODAL) + list(VARIANTS)))
    parser.add_argument("--seeds", default="", help="comma-separated seeds, each run in <out>/<setting>/seed-S/ (default: --seed alone)")
    parser.add_argument("--earlier", default=None, help="an earlier ablation.json: its runs count in the table where "
                        "<out> lacks that setting, seed and fold (train only the other seeds)")
    args = vars(parser.parse_args(argv))
    unimodal, spec, seeds, earlier = args.pop("unimodal"), args.pop("settings"), args.pop("seeds"), args.pop("earlier")
    base = TrainConfig(**args)
    root = Path(base.out)
    try:
        settings = chosen_settings(spec, unimodal)
        seed_list = [int(s) for s in seeds.split(",")] if seeds else None
        caches: dict = {}    # the frozen encoders' outputs, computed once for every setting and seed
        for seed in seed_list or [base.seed]:
            for name, change in settings.items():
                out = root / name / f"seed-{seed}" if seed_list else root / name
                train(dataclasses.replace(base, out=str(out), seed=seed, **change), caches)
    except (TrainingError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    summary = ablation_summary(root, earlier=earlier)
    table = ablation_table(summary)
    (root / "ablation.md").write_text(table)
    (root / "ablation.json").write_text(json.dumps(summary, indent=2))
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
