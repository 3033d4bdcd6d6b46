"""Pack heads that answer together into one checkpoint (an ensemble: mgcma/infer/ensemble.py).

  python -m mgcma.ensemble --members RUN_A/fold-0/best RUN_B/fold-0/best ... --out DIR [--calibrate]

The first member's checkpoint is copied whole (every tool that reads one model still can: the
attention and Gaussian views are that head's), the others go to DIR/members/, and ensemble.json
names them. A statistics head (python -m mgcma.stats_head) may join.

The mean of calibrated heads is not itself calibrated (it is less sure than it is right). With
--calibrate, the answer together gets a temperature for each kind of answer (voice and words, the
voice alone, the words alone: mgcma/infer/together.py) and a "not sure" threshold of its own, fitted
on the validation speakers the heads were selected on: that needs heads trained with one
`--val-seed` (so that none of them trained on those speakers) and a statistics head written with
`--hold-out-validation-of` one of them. Without it: temperature 1, and the mean of the heads' own
thresholds; the answer from the words alone can still be calibrated afterwards, on the validation
split of the words corpora, which every head shares whatever its seed (python -m mgcma.calibrate).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .infer.members import Together, pack, read_together, split_members, write_together
from .infer.recognizer import EmotionRecognizer, InputError
from .infer.stats_head import StatsHead
from .infer.together import FittedTogether, calibration_rows, fit_together
from .training.protocols import run_validation, spoken_voices
from .training.run_files import TrainingError


def shared_validation(models: list[Path], voices: list[Path], data_path: str | None):
    """-> (records, validation rows) the heads share, checked to be speakers no member trained on."""
    if not models:
        raise ValueError("no model among the members: a statistics head answers beside heads, not alone")
    _, records, val_idx = run_validation(models[0], data_path)
    first = {(records[i].corpus, records[i].id) for i in val_idx}
    for m in models[1:]:
        _, theirs, their_idx = run_validation(m, data_path)
        if {(theirs[i].corpus, theirs[i].id) for i in their_idx} != first:
            raise ValueError(f"{m} was selected on other validation rows than {models[0]}: to calibrate the answer "
                             "together, train every head with one --val-seed")
    spoken = spoken_voices(records, val_idx)
    for v in voices:
        trained_on = spoken - set(StatsHead.load(v).config.held_out)
        if trained_on:
            raise ValueError(f"the statistics head {v} trained on validation speakers {', '.join(sorted(trained_on))}: "
                             f"write it with --hold-out-validation-of {models[0]}")
    return records, val_idx


def calibrate_together(out: Path, run: Path, rows: list) -> FittedTogether:
    """Fit the packed ensemble's temperatures and threshold on `rows` (calibration_rows of the
    validation its heads share) and write them into its ensemble.json."""
    fitted = fit_together(EmotionRecognizer(out, asr="none", device="cpu"), rows)
    write_together(out, Together(fitted.main_temperature, fitted.not_sure_below, fitted.temperatures),
                   dict(run=str(run), rows=fitted.rows, ece={k: [round(e, 4) for e in v] for k, v in fitted.ece.items()}))
    return fitted


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mgcma.ensemble", description=__doc__.strip().splitlines()[0])
    parser.add_argument("--members", nargs="+", required=True, help="checkpoint directories of one recipe's seeds; a statistics head (python -m mgcma.stats_head) may join them")
    parser.add_argument("--out", required=True, help="the ensemble checkpoint directory to write")
    parser.add_argument("--calibrate", action="store_true", help="fit the answer together's temperature and 'not sure' "
                        "threshold on the validation speakers its heads share (heads trained with one --val-seed)")
    parser.add_argument("--data-path", default=None, help="the heads' training manifests, comma-separated, where they have moved")
    args = parser.parse_args(argv)
    if len(args.members) < 2:
        print("error: an ensemble needs two members or more", file=sys.stderr)
        return 1
    members, out = [Path(m) for m in args.members], Path(args.out)
    models, voices = split_members(members)
    try:
        # checked before anything is written: a refused calibration leaves no uncalibrated pack behind
        rows = calibration_rows(*shared_validation(models, voices, args.data_path)) if args.calibrate else None
        pack(members, out)
        result = calibrate_together(out, models[0], rows) if args.calibrate else None
    except (ValueError, OSError, TrainingError, InputError) as e:   # CheckpointError is a ValueError
        print(f"error: {e}", file=sys.stderr)
        return 1
    together = read_together(out)
    print(f"wrote {out}: {len(models)} heads{f' and {len(voices)} statistics head' if voices else ''}, "
          f"temperature {together.temperature:.3f}, 'not sure' below {together.not_sure_below:.3f}")
    if result is not None:
        print(f"calibrated on {sum(result.rows.values())} validation rows: {result.describe()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
