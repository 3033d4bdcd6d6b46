"""Cross-validated MGCMA training with honest WA/UA.

  python -m mgcma.train --data synthetic --preset tiny --out runs/tiny
  accelerate launch -m mgcma.train ...     (several processes or GPUs)

Per fold: model selection on a validation split of the training speakers only; the test fold
is evaluated once, at the end, with the selected model. Each epoch ends with an atomic
checkpoint, so `--resume` after a kill reaches the same result as an uninterrupted run.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator, DistributedDataParallelKwargs
from torch.utils.data import DataLoader
from tqdm import tqdm

from .audio import AudioLimits
from .checkpoint import atomic_write, load_model, load_tokenizer, save_model, unstored_encoders
from .config import IEMOCAP_LABELS, preset
from .data import (BucketSampler, Collator, UtteranceDataset, leave_one_group_out, read_iemocap,
                   read_manifest, validation_split)
from .metrics import classification_metrics
from .model import MGCMA

log = logging.getLogger("mgcma.train")


class TrainingError(RuntimeError):
    pass


@dataclass
class TrainConfig:
    data: str = "synthetic"            # synthetic | iemocap | manifest
    data_path: str | None = None       # synthetic: cache folder; iemocap: root or its manifest; manifest: file
    synthetic_size: int = 3000         # utterances in the synthetic corpus
    preset: str = "tiny"               # paper | tiny | test (see mgcma/config.py)
    modality: str = "both"             # both | speech | text (unimodal baselines)
    use_dist: bool = True              # distribution-level alignment
    use_token: bool = True             # token-level alignment
    use_inst: bool = True              # instance-level alignment
    lambda_dist: float | None = None   # weight of the distribution loss (None: the preset's, 0.5)
    lambda_inst: float | None = None   # weight of the instance loss (None: the preset's, 0.5)
    folds: str = "all"                 # "all" or comma-separated fold numbers (0-based)
    epochs: int = 15                   # epochs per fold
    max_steps: int | None = None       # per fold; overrides epochs
    batch_size: int = 16               # utterances per step (per process)
    lr_heads: float = 1e-3             # AdamW learning rate of the projections, alignment modules and classifier
    lr_encoder: float = 5e-5           # pretrained encoders; randomly initialised ones use lr_heads
    weight_decay: float = 0.01         # AdamW weight decay
    warmup: float = 0.1                # share of the steps
    grad_clip: float = 1.0             # gradient-norm clipping (0: off)
    freeze_encoders: bool = False      # freeze both encoders (train the heads only)
    cache_features: bool = True        # frozen encoders: compute their outputs once
    max_seconds: float = 15.0          # longer clips are cropped, with a warning
    val_fraction: float = 0.15         # share of training speakers held out for model selection
    num_workers: int = 1               # DataLoader worker processes (this machine has 2 cores)
    mixed_precision: str = "auto"      # auto (bf16 on CUDA where supported, else fp16; none on CPU) | no | bf16 | fp16
    seed: int = 0                      # seeds data order, initialisation and dropout
    out: str = "runs/default"          # output folder: fold-K/, summary.json, results.md, train.log
    resume: bool = False               # continue a killed run in --out from its last epoch


# -------------------------------------------------------------------------------------- data
def load_records(cfg: TrainConfig):
    """-> (records, labels) for the configured source."""
    if cfg.data == "synthetic":
        from .synthetic import SyntheticConfig, generate
        path = generate(cfg.data_path or "data/synthetic", SyntheticConfig(size=cfg.synthetic_size))
        return read_manifest(path), list(IEMOCAP_LABELS)
    if cfg.data == "iemocap":
        if cfg.data_path is None:
            raise TrainingError("--data iemocap needs --data-path IEMOCAP_full_release (or its manifest)")
        path = Path(cfg.data_path)
        records = read_manifest(path) if path.is_file() else read_iemocap(path, report=log.info)
        return records, list(IEMOCAP_LABELS)
    if cfg.data == "manifest":
        if cfg.data_path is None:
            raise TrainingError("--data manifest needs --data-path FILE.csv|FILE.jsonl")
        records = read_manifest(cfg.data_path)
        missing = [r.id for r in records if not r.text.strip()]
        if missing and cfg.modality != "speech":
            raise TrainingError(f"{len(missing)} utterances have no transcript (e.g. {missing[0]}); "
                                "fill the text column first")
        return records, sorted({r.label for r in records})
    raise TrainingError(f"unknown --data {cfg.data!r}: synthetic, iemocap or manifest")


def model_config(cfg: TrainConfig, labels):
    unimodal = cfg.modality != "both"
    overrides = dict(labels=labels, modality=cfg.modality, use_dist=cfg.use_dist and not unimodal,
                     use_token=cfg.use_token and not unimodal, use_inst=cfg.use_inst and not unimodal)
    for name in ("lambda_dist", "lambda_inst"):
        if getattr(cfg, name) is not None:
            overrides[name] = getattr(cfg, name)
    if cfg.freeze_encoders:
        overrides.update(freeze_speech_encoder=True, freeze_text_encoder=True)
    return preset(cfg.preset, **overrides)


def make_loader(records, indices, model, tokenizer, cfg, shuffle, seed):
    subset = [records[i] for i in indices]
    dataset = UtteranceDataset(subset, model.config.labels, AudioLimits(max_seconds=cfg.max_seconds))
    sampler = BucketSampler(dataset.durations(), cfg.batch_size, shuffle=shuffle, seed=seed)
    collate = Collator(tokenizer, model.config.max_text_tokens)
    # its own generator: worker seeding must not draw on the global RNG that dropout uses,
    # or a resumed run would diverge from an uninterrupted one
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate, num_workers=cfg.num_workers,
                      generator=torch.Generator().manual_seed(seed))


class FeatureCache:
    """Outputs of frozen encoders per utterance, computed once (an epoch then costs only the heads)."""

    def __init__(self):
        self.store = {}

    def get(self, keys, compute):
        """keys: list of ints; compute() -> (features (B, T, D), mask (B, T)) for the whole batch."""
        if any(k not in self.store for k in keys):
            feats, mask = compute()
            for k, f, m in zip(keys, feats, mask):
                self.store[k] = f[m].detach()
        feats = [self.store[k] for k in keys]
        n = max(f.shape[0] for f in feats)
        out = feats[0].new_zeros(len(feats), n, feats[0].shape[-1])
        mask = torch.zeros(len(feats), n, dtype=torch.bool, device=out.device)
        for i, f in enumerate(feats):
            out[i, :len(f)], mask[i, :len(f)] = f, True
        return out, mask


def model_inputs(model, batch, caches):
    """Raw inputs, or cached features in place of frozen encoders."""
    c, keys = model.config, batch["index"].tolist()
    inputs = dict(labels=batch["labels"])
    if c.uses_speech:
        if "speech" in caches:
            inputs["speech_features"], inputs["speech_mask"] = caches["speech"].get(
                keys, lambda: model.encode_speech(batch["audio"], batch["audio_mask"]))
        else:
            inputs.update(audio=batch["audio"], audio_mask=batch["audio_mask"])
    if c.uses_text:
        if "text" in caches:
            feats, _ = caches["text"].get(keys, lambda: (model.encode_text(batch["input_ids"], batch["text_mask"]),
                                                         batch["text_mask"]))
            inputs.update(text_features=feats, text_mask=batch["text_mask"])
        else:
            inputs.update(input_ids=batch["input_ids"], text_mask=batch["text_mask"])
    return inputs


# ----------------------------------------------------------------------------- optimisation
def make_optimizer(model: MGCMA, cfg: TrainConfig):
    c = model.config
    encoder, heads = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        pretrained_encoder = (name.startswith("speech_encoder.") and c.speech_encoder is not None) or \
                             (name.startswith("text_encoder.") and c.text_encoder is not None)
        (encoder if pretrained_encoder else heads).append(p)
    groups = [{"params": heads, "lr": cfg.lr_heads}]
    if encoder:
        groups.append({"params": encoder, "lr": cfg.lr_encoder})
    return torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)


def warmup_cosine(optimizer, total_steps: int, warmup: float):
    warm = max(1, int(warmup * total_steps))

    def factor(step):
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total_steps - warm))))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


@torch.no_grad()
def evaluate(model, loader, caches, accelerator) -> dict:
    model.eval()
    preds, targets, losses = [], [], []
    for batch in loader:
        with accelerator.autocast():
            out = model(**model_inputs(accelerator.unwrap_model(model), batch, caches))
        pred, target = accelerator.gather_for_metrics((out.logits.argmax(-1), batch["labels"]))
        preds.append(pred.cpu())
        targets.append(target.cpu())
        losses.append(out.losses["ce"].item())
    labels = accelerator.unwrap_model(model).config.labels
    metrics = classification_metrics(torch.cat(targets).numpy(), torch.cat(preds).numpy(), labels)
    metrics["loss"] = float(np.mean(losses))
    return metrics


def train_epoch(model, loader, optimizer, scheduler, caches, accelerator, cfg, progress, step, max_steps):
    model.train()
    total, ce, count = 0.0, 0.0, 0
    for batch in loader:
        if max_steps is not None and step >= max_steps:
            break
        with accelerator.autocast():
            out = model(**model_inputs(accelerator.unwrap_model(model), batch, caches))
        if not torch.isfinite(out.loss):
            terms = ", ".join(f"{k}={v.item():.4g}" for k, v in out.losses.items())
            raise TrainingError(f"the loss is not finite at step {step} ({terms}); the run is stopped "
                                "so that no broken model is saved. Lower --lr-heads or check the data.")
        accelerator.backward(out.loss)
        if cfg.grad_clip:
            accelerator.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        total, ce, count, step = total + out.loss.item(), ce + out.losses["ce"].item(), count + 1, step + 1
        progress.update(1)
        progress.set_postfix_str(f"loss {total / count:.3f}", refresh=False)
    return total / max(count, 1), ce / max(count, 1), step


# ------------------------------------------------------------------------------ state on disk
def save_state(path: Path, model, optimizer, scheduler, progress: dict) -> None:
    """Everything to continue exactly where an epoch ended; frozen encoders are not copied."""
    skipped = unstored_encoders(model)
    state = dict(
        model={k: v for k, v in model.state_dict().items() if not any(k.startswith(f"{n}_encoder.") for n in skipped)},
        optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict(), progress=progress,
        torch_rng=torch.get_rng_state(), python_rng=random.getstate())
    if torch.cuda.is_available():
        state["cuda_rng"] = torch.cuda.get_rng_state_all()
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_state(path: Path, model, optimizer, scheduler) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)  # data only, never code
    except Exception as e:  # a truncated or foreign file
        raise TrainingError(f"cannot resume from {path}: the file is corrupt ({e.__class__.__name__}: {e}). "
                            "Delete it to restart this fold from scratch.") from None
    model.load_state_dict(state["model"], strict=False)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["torch_rng"])
    random.setstate(tuple(x if not isinstance(x, list) else tuple(x) for x in state["python_rng"]))
    if "cuda_rng" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return state["progress"]


def plot_curves(history: list[dict], path: Path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    epochs = [h["epoch"] + 1 for h in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    ax1.plot(epochs, [h["train_loss"] for h in history], "o--", color="grey", label="train, total (with alignment losses)")
    ax1.plot(epochs, [h["train_ce"] for h in history], "o-", label="train, cross-entropy")
    ax1.plot(epochs, [h["val_loss"] for h in history], "o-", label="validation, cross-entropy")
    ax1.set(xlabel="epoch", ylabel="loss", title="loss")
    ax2.plot(epochs, [100 * h["val_UA"] for h in history], "o-", label="validation UA")
    ax2.plot(epochs, [100 * h["val_WA"] for h in history], "s--", label="validation WA")
    ax2.set(xlabel="epoch", ylabel="%", title="validation accuracy")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ------------------------------------------------------------------------------------ folds
def run_fold(cfg, records, labels, fold_id, name, train_idx, test_idx, accelerator) -> dict:
    fold_dir = Path(cfg.out) / f"fold-{fold_id}"
    metrics_path, state_path = fold_dir / "metrics.json", fold_dir / "state.pt"
    if cfg.resume and metrics_path.is_file():
        log.info(f"fold {fold_id}: already finished, kept")
        return json.loads(metrics_path.read_text())
    fold_dir.mkdir(parents=True, exist_ok=True)
    train_idx, val_idx = validation_split(records, train_idx, cfg.val_fraction, cfg.seed)
    torch.manual_seed(cfg.seed + fold_id)
    random.seed(cfg.seed + fold_id)
    model = MGCMA(model_config(cfg, labels))
    tokenizer = load_tokenizer(model.config)
    train_loader = make_loader(records, train_idx, model, tokenizer, cfg, True, cfg.seed + fold_id)
    val_loader = make_loader(records, val_idx, model, tokenizer, cfg, False, 0)
    steps_per_epoch = len(train_loader)
    total = cfg.max_steps or cfg.epochs * steps_per_epoch
    epochs = math.ceil(total / steps_per_epoch)
    optimizer = make_optimizer(model, cfg)
    scheduler = warmup_cosine(optimizer, total, cfg.warmup)
    progress = dict(epoch=0, step=0, best_UA=-1.0, best_epoch=None, history=[])
    if cfg.resume and state_path.is_file():
        progress = load_state(state_path, model, optimizer, scheduler)
        log.info(f"fold {fold_id}: resuming after epoch {progress['epoch']} (step {progress['step']})")
    model, optimizer, train_loader, val_loader, scheduler = accelerator.prepare(
        model, optimizer, train_loader, val_loader, scheduler)
    plain = accelerator.unwrap_model(model)
    caches = {n: FeatureCache() for n in ("speech", "text")
              if cfg.cache_features and getattr(plain.config, f"freeze_{n}_encoder")}
    val_caches = {n: FeatureCache() for n in caches}
    log.info(f"fold {fold_id} (test = {name}): {len(train_idx)} train, {len(val_idx)} validation, "
             f"{len(test_idx)} test utterances; {epochs} epochs of {steps_per_epoch} steps")
    bar = tqdm(total=total, initial=progress["step"], desc=f"fold {fold_id}", unit="step",
               disable=not accelerator.is_local_main_process, dynamic_ncols=True)
    for epoch in range(progress["epoch"], epochs):
        train_loader.set_epoch(epoch)  # accelerate's loader passes it on (and would reset our sampler's own)
        start = time.time()
        train_loss, train_ce, progress["step"] = train_epoch(model, train_loader, optimizer, scheduler, caches,
                                                   accelerator, cfg, bar, progress["step"], total)
        val = evaluate(model, val_loader, val_caches, accelerator)
        progress["history"].append(dict(epoch=epoch, train_loss=train_loss, train_ce=train_ce, val_loss=val["loss"],
                                        val_UA=val["UA"], val_WA=val["WA"], seconds=time.time() - start))
        bar.set_postfix_str(f"loss {train_loss:.3f} val UA {100 * val['UA']:.1f}")
        log.info(f"fold {fold_id} epoch {epoch + 1}/{epochs}: train loss {train_loss:.4f}, "
                 f"val loss {val['loss']:.4f}, val UA {100 * val['UA']:.2f}, WA {100 * val['WA']:.2f}")
        progress["epoch"] = epoch + 1
        if accelerator.is_main_process:
            if val["UA"] > progress["best_UA"]:  # selection on validation UA only
                progress["best_UA"], progress["best_epoch"] = val["UA"], epoch + 1
                save_model(plain, fold_dir / "best", tokenizer)
            save_state(state_path, plain, optimizer, scheduler, progress)
        accelerator.wait_for_everyone()
    bar.close()
    return finish_fold(cfg, fold_id, name, fold_dir, records, test_idx, progress, accelerator)


def finish_fold(cfg, fold_id, name, fold_dir, records, test_idx, progress, accelerator) -> dict:
    """The one evaluation on the test fold, with the model selected on validation."""
    best = load_model(fold_dir / "best", accelerator.device)
    test_loader = make_loader(records, test_idx, best, load_tokenizer(best.config, fold_dir / "best"), cfg, False, 0)
    test_loader = accelerator.prepare(test_loader)
    test = evaluate(best, test_loader, {}, accelerator)
    metrics = dict(fold=fold_id, test_group=name, WA=test["WA"], UA=test["UA"], recall=test["recall"],
                   confusion_matrix=test["confusion_matrix"], labels=test["labels"], n_test=test["n"],
                   best_epoch=progress["best_epoch"], best_val_UA=progress["best_UA"],
                   history=progress["history"], config=dataclasses.asdict(cfg))
    if accelerator.is_main_process:
        atomic_write(fold_dir / "metrics.json", lambda tmp: Path(tmp).write_text(json.dumps(metrics, indent=2)))
        plot_curves(progress["history"], fold_dir / "curves.png",
                    f"fold {fold_id} (test: {name}); test UA {100 * test['UA']:.1f} %, WA {100 * test['WA']:.1f} %")
    log.info(f"fold {fold_id}: test UA {100 * test['UA']:.2f} %, WA {100 * test['WA']:.2f} % "
             f"(model of epoch {progress['best_epoch']})")
    return metrics


def summarise(cfg: TrainConfig, fold_metrics: list[dict]) -> dict:
    ua = np.array([m["UA"] for m in fold_metrics])
    wa = np.array([m["WA"] for m in fold_metrics])
    summary = dict(folds=[{k: m[k] for k in ("fold", "test_group", "WA", "UA", "n_test", "best_epoch")}
                          for m in fold_metrics],
                   WA_mean=float(wa.mean()), WA_std=float(wa.std()), UA_mean=float(ua.mean()),
                   UA_std=float(ua.std()), config=dataclasses.asdict(cfg))
    rows = ["| fold | test group | n | WA % | UA % |", "| --- | --- | --- | --- | --- |"]
    rows += [f"| {m['fold']} | {m['test_group']} | {m['n_test']} | {100 * m['WA']:.2f} | {100 * m['UA']:.2f} |"
             for m in fold_metrics]
    rows.append(f"| mean +- std | | | {100 * wa.mean():.2f} +- {100 * wa.std():.2f} | "
                f"{100 * ua.mean():.2f} +- {100 * ua.std():.2f} |")
    out = Path(cfg.out)
    atomic_write(out / "summary.json", lambda tmp: Path(tmp).write_text(json.dumps(summary, indent=2)))
    atomic_write(out / "results.md", lambda tmp: Path(tmp).write_text("\n".join(rows) + "\n"))
    return summary


def select_folds(spec: str, n: int) -> list[int]:
    if spec == "all":
        return list(range(n))
    try:
        chosen = [int(x) for x in spec.split(",")]
    except ValueError:
        raise TrainingError(f"--folds must be 'all' or numbers like 0,2; got {spec!r}") from None
    bad = [k for k in chosen if not 0 <= k < n]
    if bad:
        raise TrainingError(f"--folds {bad} out of range: this data has folds 0..{n - 1}")
    return chosen


def mixed_precision(cfg: TrainConfig) -> str:
    if cfg.mixed_precision != "auto":
        return cfg.mixed_precision
    if not torch.cuda.is_available():
        return "no"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def train(cfg: TrainConfig) -> dict:
    out = Path(cfg.out)
    # cpu=True without CUDA: under `accelerate launch --multi_gpu --num_processes N` (torchrun)
    # that makes accelerate form a gloo process group on the CPU instead of N lone processes
    # wav2vec2's masked_spec_embed is used only in steps where time masking fires
    ddp = DistributedDataParallelKwargs(find_unused_parameters=True)
    accelerator = Accelerator(mixed_precision=mixed_precision(cfg), cpu=not torch.cuda.is_available(),
                              kwargs_handlers=[ddp])
    if accelerator.is_main_process:
        if out.exists() and any(out.iterdir()) and not cfg.resume:
            raise TrainingError(f"{out} already holds a run: pass --resume to continue it, or another --out")
        out.mkdir(parents=True, exist_ok=True)
    accelerator.wait_for_everyone()
    setup_logging(out / "train.log", accelerator.is_main_process)
    log.info(f"device {accelerator.device}, {accelerator.num_processes} process(es), "
             f"mixed precision {accelerator.mixed_precision}; contrastive negatives: the local batch of each process")
    records, labels = load_records(cfg)
    folds = leave_one_group_out(records)
    results = []
    for k in select_folds(cfg.folds, len(folds)):
        name, train_idx, test_idx = folds[k]
        results.append(run_fold(cfg, records, labels, k, name, train_idx, test_idx, accelerator))
    summary = summarise(cfg, results) if accelerator.is_main_process else {}
    if summary:
        log.info(f"mean over {len(results)} fold(s): WA {100 * summary['WA_mean']:.2f} +- {100 * summary['WA_std']:.2f} %, "
                 f"UA {100 * summary['UA_mean']:.2f} +- {100 * summary['UA_std']:.2f} %")
    return summary


def setup_logging(path: Path, main: bool) -> None:
    log.setLevel(logging.INFO)
    log.handlers.clear()
    if not main:
        return
    fmt = logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S")
    for handler in (logging.FileHandler(path), TqdmHandler()):
        handler.setFormatter(fmt)
        log.addHandler(handler)


class TqdmHandler(logging.Handler):
    def emit(self, record):
        tqdm.write(self.format(record), file=sys.stderr)


# -------------------------------------------------------------------------------------- CLI
CHOICES = dict(data=["synthetic", "iemocap", "manifest"], preset=["paper", "tiny", "test"],
               modality=["both", "speech", "text"], mixed_precision=["auto", "no", "bf16", "fp16"])


def parser_for(config_cls, description: str) -> argparse.ArgumentParser:
    """One option per config field, its default and comment shown by --help."""
    parser = argparse.ArgumentParser(prog="python -m mgcma.train", description=description,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    helps = field_comments(config_cls)
    for f in dataclasses.fields(config_cls):
        flag = "--" + f.name.replace("_", "-")
        if f.type in ("bool", bool) and f.name.startswith("use_"):
            parser.add_argument("--no-" + f.name[4:], dest=f.name, action="store_false",
                                help=f"switch the {f.name[4:]} alignment module off")
        elif f.type in ("bool", bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default, help=helps.get(f.name))
        else:
            kind = {"int": int, "float": float}.get(str(f.type).split(" ")[0], str)
            parser.add_argument(flag, type=kind, default=f.default, help=helps.get(f.name),
                                choices=CHOICES.get(f.name))
    return parser


def field_comments(config_cls) -> dict:
    """The comment after each field in the class source, as its --help text."""
    import inspect
    comments = {}
    for line in inspect.getsource(config_cls).splitlines():
        name, _, rest = line.strip().partition(":")
        if "#" in rest and name.isidentifier():
            comments[name] = rest.split("#", 1)[1].strip()
    return comments


def main(argv=None) -> int:
    parser = parser_for(TrainConfig, __doc__.strip().splitlines()[0])
    cfg = TrainConfig(**vars(parser.parse_args(argv)))
    try:
        summary = train(cfg)
    except (TrainingError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if summary:
        print((Path(cfg.out) / "results.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
