"""python -m mgcma.analysis figure3 | alignment | heatmap | word-attention | gaussians | ablation | calibration | compare | reference  (--help on each)

Writes PNG (matplotlib, for papers) and HTML (plotly, interactive) into --out.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from mgcma.checkpoint import load_model, load_tokenizer  # noqa: E402
from mgcma.data.records import leave_one_group_out, read_manifest  # noqa: E402
from mgcma.config import DEFAULT_CHECKPOINT  # noqa: E402
from mgcma.infer.recognizer import EmotionRecognizer  # noqa: E402

from .alignment import all_spaces, table as alignment_table  # noqa: E402
from .ablation import (ablation_figure, ablation_summary, ablation_table, confusion_figure, held_out_summary,  # noqa: E402
                       held_out_table, versus_table)
from .calibration import calibration_figure  # noqa: E402
from .compare import compare, report  # noqa: E402
from .embed import embed_records  # noqa: E402
from .figure3 import figure3, figure3_plotly  # noqa: E402

SPACE_NAMES = {"fused": "fused (classifier input)", "mu": "Gaussian means", "instance": "instance projections",
               "projected": "projected", "encoder": "encoder outputs"}
from .gaussians import gaussian_figure, gaussian_plotly, w2_pairs_figure  # noqa: E402
from .heatmap import heatmap_figure, heatmap_plotly, span_caption  # noqa: E402
from .word_times import WordTimer, clip_word_attention, word_attention_over  # noqa: E402
from .reference import FILE as REFERENCE_FILE, ReferenceMap  # noqa: E402


def save(out: Path, name: str, mpl=None, plotly=None) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    if mpl is not None:
        mpl.savefig(out / f"{name}.png", dpi=130, bbox_inches="tight")
        plt.close(mpl)
        written.append(out / f"{name}.png")
    if plotly is not None:
        plotly.write_html(out / f"{name}.html", include_plotlyjs=True)
        written.append(out / f"{name}.html")
    for path in written:
        print(f"wrote {path}")
    return written


def split_records(data: str, fold: int, limit: int | None, seed: int = 0, split: str | None = None):
    """The test side of fold `fold` (speakers the model never saw), or the rows of `split`;
    at most `limit` utterances."""
    records = read_manifest(data)
    if split:
        chosen = [r for r in records if r.split == split]
    else:
        _, _, test_idx = leave_one_group_out(records)[fold]
        chosen = [records[i] for i in test_idx]
    if limit and len(chosen) > limit:
        rng = np.random.default_rng(seed)
        chosen = [chosen[i] for i in sorted(rng.choice(len(chosen), limit, replace=False))]
    return chosen


def cmd_figure3(args):
    names = args.name or [Path(c).parent.parent.name if Path(c).name == "best" else Path(c).name for c in args.checkpoint]
    if len(names) != len(args.checkpoint):
        raise SystemExit("error: give one --name per --checkpoint")
    records = split_records(args.data, args.fold, args.max, split=args.split)
    spaces = args.space.split(",")
    panels, panel_spaces = {}, {}
    for name, ckpt in zip(names, args.checkpoint):
        model = load_model(ckpt)
        emb = embed_records(model, load_tokenizer(model.config, ckpt), records)
        for space in spaces:
            panel = name if len(spaces) == 1 else f"{name}: {SPACE_NAMES.get(space, space)}"
            has = space == "fused" or space in (emb.spaces or {})
            panels[panel], panel_spaces[panel] = (emb if has else None), space
    start = time.perf_counter()
    fig, metrics, coords = figure3(panels, seed=args.seed, space=panel_spaces, columns=len(spaces))
    print(f"UMAP of {len(records)} utterances x {len(panels)} panel(s): {time.perf_counter() - start:.1f} s")
    save(args.out, "figure3", fig, figure3_plotly({k: v for k, v in panels.items() if v is not None}, coords))
    table = alignment_table(metrics).replace("| space |", "| setting |")
    (args.out / "figure3_metrics.md").write_text(table)
    (args.out / "figure3_metrics.json").write_text(json.dumps(dict(space=args.space, panels=metrics), indent=2))
    print(f"space: {args.space}\n{table}")


def predict_one(args):
    recognizer = EmotionRecognizer(args.checkpoint, asr="auto" if not args.text else "none")
    return recognizer, recognizer.predict(args.audio, args.text)


def cmd_heatmap(args):
    recognizer = EmotionRecognizer(args.checkpoint, asr="auto" if not args.text else "none")
    pred, words, s2w, w2s, times, spans, shares = clip_word_attention(recognizer, WordTimer(), args.audio, args.text)
    fig = heatmap_figure(words, s2w, w2s, times, per_head=args.per_head, spans=spans, share=shares["mean"])
    fig.suptitle(f'"{pred.transcript}": predicted {pred.label} ({100 * pred.probabilities[pred.label]:.0f} %)', y=1.02)
    save(args.out, "heatmap", fig, heatmap_plotly(words, s2w, w2s, times, spans, shares["mean"]))
    print(span_caption(shares["mean"]))


def cmd_word_attention(args):
    recognizer = EmotionRecognizer(args.checkpoint, asr="none")
    records = split_records(args.data, args.fold, args.max, seed=args.seed, split=args.split)
    result = dict(checkpoint=str(args.checkpoint), data=args.data, **word_attention_over(recognizer, WordTimer(), records))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "word_attention.json").write_text(json.dumps(result, indent=2) + "\n")
    m = result["mean_of_heads"]
    print(f"{result['clips']} clips: {100 * m['in_span']:.1f} % of a word's attention inside its own span, "
          f"chance {100 * m['chance']:.1f} % ({m['ratio']:.2f}x); per head: "
          + ", ".join(f"{100 * h['in_span']:.1f} % ({h['ratio']:.2f}x)" for h in result["heads"]))
    print(f"wrote {args.out / 'word_attention.json'}")


def cmd_gaussians(args):
    recognizer, pred = predict_one(args)
    out = pred.output
    params = [t[0].numpy() for t in (out.mu_speech, out.sigma_speech, out.mu_text, out.sigma_text)]
    reference = None
    if args.data:   # the reference set: --data's held-out clips
        from mgcma.losses import w2_distance
        import torch
        emb = embed_records(recognizer.model, recognizer.tokenizer, split_records(args.data, args.fold, args.max, split=args.split))
        w2 = w2_distance(*(torch.from_numpy(x) for x in (emb.mu_speech, emb.sigma_speech, emb.mu_text, emb.sigma_text))).numpy()
        save(args.out, "w2_pairs", w2_pairs_figure(w2))
        reference = (np.diag(w2), w2[~np.eye(len(w2), dtype=bool)])
    elif (Path(args.checkpoint) / REFERENCE_FILE).is_file():   # else the checkpoint's own reference map
        ref = ReferenceMap.load(args.checkpoint)
        reference = (ref.w2_own, ref.w2_other) if ref.w2_own is not None else None
    save(args.out, "gaussians", gaussian_figure(*params, pred.w2, pred.sim, reference=reference),
         gaussian_plotly(*params, pred.w2, pred.sim, reference=reference))


def cmd_alignment(args):
    model = load_model(args.checkpoint)
    if model.config.modality != "both":
        raise ValueError("alignment needs a model of both modalities")
    emb = embed_records(model, load_tokenizer(model.config, args.checkpoint),
                        split_records(args.data, args.fold, args.max, split=args.split))
    spaces = all_spaces(emb)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "alignment.json").write_text(json.dumps(dict(n=len(emb.labels), checkpoint=str(args.checkpoint),
                                                             data=args.data, spaces=spaces), indent=2) + "\n")
    (args.out / "alignment.md").write_text(alignment_table(spaces))
    print(alignment_table(spaces))
    print(f"wrote {args.out / 'alignment.json'}")


def cmd_ablation(args):
    args.out.mkdir(parents=True, exist_ok=True)
    name = "ablation" if args.answer == "both" else f"ablation-{args.answer}"
    summary = ablation_summary(args.runs, earlier=args.earlier, answer=args.answer)
    if not summary:
        raise FileNotFoundError(f"no <setting>/**/fold-*/metrics.json under {args.runs}: run python -m mgcma.ablate first")
    table = ablation_table(summary)
    if args.against:   # the same settings in another ablation, pair by pair
        table += "\n" + versus_table(summary, json.loads(Path(args.against).read_text()), args.against_name)
    (args.out / f"{name}.md").write_text(table)
    (args.out / f"{name}.json").write_text(json.dumps(summary, indent=2))
    print(table)
    save(args.out, name, ablation_figure(summary, args.answer))
    if args.no_confusion:
        return
    runs = sorted({p.parent.parent for p in Path(args.runs).glob("**/fold-*/metrics.json")})
    for setting in sorted({r.relative_to(args.runs).parts[0] for r in runs}):
        first = next(r for r in runs if r.relative_to(args.runs).parts[0] == setting)   # its first seed
        save(args.out, f"confusion-{setting}", confusion_figure(first))


def cmd_held_out(args):
    summary = held_out_summary(args.run, args.class_balanced)
    against = json.loads(Path(args.against).read_text())["groups"] if args.against else None
    table = held_out_table(summary, against, args.against_name)
    args.out.mkdir(parents=True, exist_ok=True)
    record = dict(run=[str(r) for r in args.run], class_balanced=args.class_balanced, date=time.strftime("%Y-%m-%d"),
                  command=args.command_line, groups=summary)
    (args.out / f"{args.name}.json").write_text(json.dumps(record, indent=2) + "\n")
    (args.out / f"{args.name}.md").write_text(table)
    print(table)
    print(f"wrote {args.out / args.name}.json and .md")


def cmd_calibration(args):
    reports = {}
    for spec in args.metrics:
        name, _, path = spec.rpartition("=")
        metrics = json.loads(Path(path).read_text())
        if "calibration" not in metrics:
            raise ValueError(f"{path} has no calibration: write it with python -m mgcma.evaluate --out")
        reports[name or Path(path).stem] = metrics["calibration"]
    save(args.out, args.name, calibration_figure(reports))


def cmd_compare(args):
    first, second = (json.loads(Path(path).read_text()) for path in args.metrics)
    result = compare(first, second)
    names = tuple(args.name or (Path(path).stem for path in args.metrics))
    print(report(result, names))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"compare-{names[0]}-{names[1]}.json").write_text(json.dumps(dict(result, metrics=args.metrics), indent=2) + "\n")


def cmd_reference(args):
    model = load_model(args.checkpoint)
    emb = embed_records(model, load_tokenizer(model.config, args.checkpoint), split_records(args.data, args.fold, args.max, split=args.split))
    start = time.perf_counter()
    ref = ReferenceMap.build(emb, seed=args.seed)
    print(f"reference map of {len(emb.labels)} utterances: {time.perf_counter() - start:.1f} s")
    print(f"wrote {ref.save(args.out or args.checkpoint)}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mgcma.analysis", description=__doc__.strip().splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name, help_text, data=False, one_clip=False):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--out", type=Path, default=Path("figures"), help="output folder")
        if data:
            p.add_argument("--data", required=name in ("figure3", "reference", "alignment", "word-attention"), help="manifest (CSV/JSONL) of the dataset")
            p.add_argument("--fold", type=int, default=0, help="use the test side of this fold (unseen speakers)")
            p.add_argument("--max", type=int, default=None, help="at most this many utterances")
            p.add_argument("--seed", type=int, default=0)
            p.add_argument("--split", default=None, help="use the manifest rows of this split instead of a fold's test side")
        if one_clip:
            p.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT))
            p.add_argument("--audio", required=True, help="speech file")
            p.add_argument("--text", default=None, help="transcript (omitted: Whisper writes it)")
        return p

    p = add("figure3", "UMAP of speech and text representations, one panel per checkpoint", data=True)
    p.add_argument("--checkpoint", action="append", required=True, help="a model directory (repeat for panels)")
    p.add_argument("--name", action="append", help="panel title per --checkpoint")
    p.add_argument("--space", default="fused", help="the representation space(s) to draw, comma-separated: "
                   "fused, mu, instance, projected, encoder (one panel per checkpoint and space)")
    p = add("heatmap", "token cross-attention of one utterance (words x seconds, each word's spoken span outlined)", one_clip=True)
    p.add_argument("--per-head", action="store_true", help="also draw each head")
    p = add("word-attention", "share of each word's attention inside its own spoken span, over a set of clips", data=True)
    p.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT))
    add("gaussians", "speech and text Gaussians of one utterance (+ W2 of pairs over --data)", data=True, one_clip=True)
    p = add("alignment", "retrieval, pair/random distance, modality gap, silhouette in every representation space", data=True)
    p.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT))
    p = add("ablation", "ablation table, bars and confusion matrices from python -m mgcma.ablate's folder")
    p.add_argument("--runs", required=True, help="the --out folder of python -m mgcma.ablate")
    p.add_argument("--earlier", default=None, help="an earlier ablation.json whose runs count where --runs lacks them")
    p.add_argument("--no-confusion", action="store_true", help="leave out the confusion matrices")
    p.add_argument("--against", default=None, help="another ablation's ablation.json (e.g. with frozen encoders): "
                   "each setting's paired difference to it")
    p.add_argument("--against-name", default="frozen", help="what to call it in the table")
    p.add_argument("--answer", default="both", choices=["both", "speech", "text"],
                   help="score the models' answer from both modalities, or from one with the other hidden")
    p = add("held-out", "per held-out group of a run: UA, recall, the most frequent answer's share, ECE, the selection's swing")
    p.add_argument("--run", required=True, type=Path, nargs="+",
                   help="a run folder holding fold-*/metrics.json (e.g. runs/loco4/full/seed-0); several: their answers averaged")
    p.add_argument("--class-balanced", action="store_true",
                   help="each run's answers moved by a class bias fitted on its validation answers (every class of every corpus weighing the same)")
    p.add_argument("--name", default="held-out", help="file name of the record (.json) and table (.md)")
    p.add_argument("--against", default=None, help="another run's record (.json): its UA beside each group")
    p.add_argument("--against-name", default="earlier", help="what to call it in the table")
    p = add("calibration", "reliability diagrams (before/after the temperature) and accuracy-coverage curves")
    p.add_argument("--metrics", nargs="+", required=True, help="[NAME=]FILE.json written by python -m mgcma.evaluate --out")
    p.add_argument("--name", default="calibration", help="file name of the figure")
    p = add("compare", "two models' UA on the same clips, paired over redrawn speaker sets")
    p.add_argument("--metrics", nargs=2, required=True, help="A.json B.json written by python -m mgcma.evaluate --out")
    p.add_argument("--name", nargs=2, default=None, help="what to call A and B (default: the file names)")
    p.set_defaults(out=None)
    p = add("reference", "the reference map the app places utterances on (saved beside the checkpoint)", data=True)
    p.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT))
    p.set_defaults(out=None)
    args = parser.parse_args(argv)
    args.command_line = " ".join(["python -m mgcma.analysis", *map(str, sys.argv[1:] if argv is None else argv)])
    try:
        {"figure3": cmd_figure3, "alignment": cmd_alignment, "heatmap": cmd_heatmap, "gaussians": cmd_gaussians,
         "word-attention": cmd_word_attention,
         "ablation": cmd_ablation, "held-out": cmd_held_out, "calibration": cmd_calibration, "compare": cmd_compare,
         "reference": cmd_reference}[args.command](args)
    except (ValueError, FileNotFoundError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
