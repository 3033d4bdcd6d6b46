"""The training loop: cross-validated MGCMA training with honest WA/UA (the command: mgcma/train.py).

Per fold: model selection on a validation split of the training speakers only; the test fold
is evaluated once, at the end, with the selected model. Each epoch ends with an atomic
checkpoint, so `--resume` after a kill reaches the same result as an uninterrupted run.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
import random
import sys
import time
from pathlib import Path

import torch
from accelerate import Accelerator, DistributedDataParallelKwargs
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..audio import AudioLimits
from ..calibration import calibrate
from ..checkpoint import atomic_write, load_model, load_tokenizer, save_model
from ..config import preset
from ..data.augment import AugmentConfig, Augmenter
from ..data.batching import BucketSampler, Collator, CorpusMixture, UtteranceDataset
from ..data.records import training_share
from ..data.text_augment import TextAugmenter
from .partial_finetuning import frozen_stamp, split_supported
from ..model import MGCMA
from .config import TrainConfig
from .protocols import load_records, make_folds, parse_weights, select_folds, validation_of
from .run_files import TrainingError, load_state, plot_curves, save_answers, save_state, summarise
from .voice_offsets import measure_voices
from .steps import (MODALITIES, FeatureCache, drop_modalities, evaluate, model_inputs, predict_loader, score_answers,
                    selection_score, speech_cache)

log = logging.getLogger("mgcma.train")


def model_config(cfg: TrainConfig, labels, voiced_corpora=()):
    """The model a run trains; `voiced_corpora`: its training corpora with speech (for --corpus-adversary)."""
    unimodal = cfg.modality != "both"
    overrides = dict(labels=labels, modality=cfg.modality, use_dist=cfg.use_dist and not unimodal,
                     use_token=cfg.use_token and not unimodal, use_inst=cfg.use_inst and not unimodal)
    if cfg.corpus_adversary:
        overrides.update(lambda_corpus=cfg.corpus_adversary, adversary_corpora=sorted(voiced_corpora))
    for name in ("lambda_dist", "lambda_inst", "dist_positives", "inst_positives", "speech_layer_span"):
        if getattr(cfg, name) not in (None, ""):
            overrides[name] = getattr(cfg, name)
    if cfg.finetune_top_layers:
        overrides.update(finetune_top_layers=cfg.finetune_top_layers, freeze_speech_encoder=False)
    if cfg.finetune_top_text_layers:
        overrides.update(finetune_top_text_layers=cfg.finetune_top_text_layers, freeze_text_encoder=False)
    if cfg.freeze_encoders:
        overrides.update(freeze_speech_encoder=True, freeze_text_encoder=True)
    return preset(cfg.preset, **overrides)


def option_range(text: str, option: str, example: str) -> tuple[float, float]:
    low, _, high = text.partition("-")
    try:
        return float(low), float(high)
    except ValueError:
        raise ValueError(f"{option} {text!r}: give a range, LOW-HIGH (e.g. {example})") from None


def augment_config(cfg: TrainConfig) -> AugmentConfig:
    snr = option_range(cfg.babble_snr, "--babble-snr", "5-25 dB")
    tempo = option_range(cfg.augment_tempo, "--augment-tempo", "0.9-1.1")
    return AugmentConfig(views=cfg.augment_views, p_noise=cfg.augment_noise, babble_snr_db=snr,
                         p_speed_pitch=cfg.augment_speed_pitch, tempo_rates=tempo, semitones=cfg.augment_pitch,
                         max_shift_ms=cfg.augment_shift_ms, p_colour=cfg.augment_colour, p_codec=cfg.augment_codec)


def make_loader(records, indices, model, tokenizer, cfg, shuffle, seed, training=False, caches=None):
    """Training loaders draw by corpus weights and hear augmented views; the others are plain.
    Clips whose frozen-encoder output is in `caches` are not loaded again."""
    subset = [records[i] for i in indices]
    views, augment, text_augment, draw = 1, None, None, None
    if training and cfg.augment_views > 1 and model.config.uses_speech:
        # training speakers only, drawn from every corpus of the mixture (other voices, languages, rooms)
        paths = [r.path for r in subset if r.path is not None]
        babble = random.Random(seed).sample(paths, min(400, len(paths)))
        views, augment = cfg.augment_views, Augmenter(augment_config(cfg), babble)
    if training and cfg.augment_views > 1 and cfg.text_augment and model.config.uses_text:
        views, text_augment = cfg.augment_views, TextAugmenter.from_texts(r.text for r in subset)
    if training and (cfg.corpus_weights or cfg.balance_classes):
        draw = CorpusMixture(subset, parse_weights(cfg.corpus_weights), cfg.balance_classes, seed)
    dataset = UtteranceDataset(subset, model.config.labels, AudioLimits(max_seconds=cfg.max_seconds),
                               hygiene=model.config.hygiene, views=views, augment=augment, seed=seed,
                               text_augment=text_augment,
                               cached=speech_cache(caches).keys if speech_cache(caches) else None)
    sampler = BucketSampler(dataset.durations(), cfg.batch_size, shuffle=shuffle, seed=seed, views=views, draw=draw)
    collate = Collator(tokenizer, model.config.max_text_tokens)
    # its own generator: worker seeding must not draw on the global RNG that dropout uses,
    # or a resumed run would diverge from an uninterrupted one
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate, num_workers=cfg.num_workers,
                      generator=torch.Generator().manual_seed(seed))


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


def train_epoch(model, loader, optimizer, scheduler, caches, accelerator, cfg, progress, step, max_steps,
                voice_offsets=None, corpus_of=None):
    """One epoch -> ({loss name: its mean over the epoch's steps, "total" among them}, step).
    corpus_of: (training records,) each one's index into the adversary's corpora (-1: none); then also
    "corpus_guessing", the cross-entropy of guessing each row's corpus from the corpora's shares."""
    model.train()
    sums, count, corpus_counts = {"total": 0.0, "ce": 0.0}, 0, 0
    plain = accelerator.unwrap_model(model)
    for batch in loader:
        if max_steps is not None and step >= max_steps:
            break
        inputs = model_inputs(plain, batch, caches)
        drop_modalities(inputs, cfg.modality_dropout)
        if voice_offsets is not None:
            inputs["speech_shift"] = plain.mixed_shift(voice_offsets.layer_shifts(batch["record"], step))
        if corpus_of is not None:
            inputs["corpus"] = corpus_of[batch["record"].cpu()].to(batch["labels"].device)
        with accelerator.autocast():
            out = model(**inputs)
        if corpus_of is not None:
            heard = inputs["corpus"][plain.adversary_rows(out.speech_present, inputs["corpus"])].cpu()
            corpus_counts = torch.bincount(heard, minlength=len(plain.config.adversary_corpora)) + corpus_counts
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
        for name, value in [("total", out.loss), *out.losses.items()]:
            sums[name] = sums.get(name, 0.0) + value.item()
        count, step = count + 1, step + 1
        progress.update(1)
        progress.set_postfix_str(f"loss {sums['total'] / count:.3f}", refresh=False)
    means = {name: total / max(count, 1) for name, total in sums.items()}
    if corpus_of is not None and count:   # what the adversary scores by guessing from the corpora's shares alone
        shares = corpus_counts[corpus_counts > 0].double() / corpus_counts.sum()
        means["corpus_guessing"] = float(-(shares * shares.log()).sum())
    return means, step


# ------------------------------------------------------------------------------------ folds
def frozen_caches(model, cfg, shared: dict | None) -> dict:
    """A FeatureCache per frozen encoder, and per frozen bottom of a partly fine-tuned one
    ("speech_bottom", "text_bottom": mgcma/training/partial_finetuning.py): the caller's `shared` ones (content-keyed,
    so valid across folds and runs with the same encoders), else fresh ones. A bottom cache is
    stamped with its frozen part before any loader skips loading what it holds."""
    if not cfg.cache_features:
        return {}
    names = [n for n in ("speech", "text") if getattr(model.config, f"freeze_{n}_encoder")]
    bottoms = [f"{n}_bottom" for n in ("speech", "text") if split_supported(model, n)]
    caches = {n: FeatureCache() if shared is None else shared.setdefault(n, FeatureCache()) for n in names + bottoms}
    for name in bottoms:
        caches[name].stamp(frozen_stamp(model, name.removesuffix("_bottom")))
    return caches


def run_fold(cfg, records, labels, fold_id, name, train_idx, test_idx, accelerator, val_idx=None,
             shared_caches: dict | None = None) -> dict:
    fold_dir = Path(cfg.out) / f"fold-{fold_id}"
    metrics_path, state_path = fold_dir / "metrics.json", fold_dir / "state.pt"
    if cfg.resume and metrics_path.is_file():
        log.info(f"fold {fold_id}: already finished, kept")
        return json.loads(metrics_path.read_text())
    fold_dir.mkdir(parents=True, exist_ok=True)
    if val_idx is None:
        train_idx, val_idx = validation_of(records, train_idx, cfg)
    train_idx = training_share(records, train_idx, cfg.train_fraction, cfg.seed + fold_id)
    torch.manual_seed(cfg.seed + fold_id)
    random.seed(cfg.seed + fold_id)
    voiced_corpora = sorted({records[i].corpus for i in train_idx if records[i].has_audio})
    if cfg.corpus_adversary and len(voiced_corpora) < 2:
        raise TrainingError(f"--corpus-adversary needs two or more training corpora with speech; fold {fold_id} "
                            f"trains on {voiced_corpora}")
    model = MGCMA(model_config(cfg, labels, voiced_corpora))
    corpus_of = adversary_targets(model.config, [records[i] for i in train_idx])   # a batch's rows index the training subset
    tokenizer = load_tokenizer(model.config)
    caches = frozen_caches(model, cfg, shared_caches)   # content-keyed: one cache serves training and validation
    train_loader = make_loader(records, train_idx, model, tokenizer, cfg, True, cfg.seed + fold_id, True, caches)
    val_loader = make_loader(records, val_idx, model, tokenizer, cfg, False, 0, caches=caches)
    voice_offsets = measured_voices(cfg, model, records, train_idx, tokenizer, caches)
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
    log.info(f"fold {fold_id} (test = {name}): {len(train_idx)} train, {len(val_idx)} validation, "
             f"{len(test_idx)} test utterances; {epochs} epochs of {steps_per_epoch} steps")
    bar = tqdm(total=total, initial=progress["step"], desc=f"fold {fold_id}", unit="step",
               disable=not accelerator.is_local_main_process, dynamic_ncols=True)
    voiced = {records[i].corpus for i in val_idx if records[i].has_audio}
    for epoch in range(progress["epoch"], epochs):
        train_loader.set_epoch(epoch)  # accelerate's loader passes it on (and would reset our sampler's own)
        start = time.time()
        train, progress["step"] = train_epoch(model, train_loader, optimizer, scheduler, caches, accelerator, cfg, bar,
                                              progress["step"], total, voice_offsets, corpus_of)
        train_loss, train_ce = train["total"], train["ce"]
        scores = evaluate(model, val_loader, caches, accelerator, [records[i].corpus for i in val_idx])
        val = dict(scores["both"], UA=selection_score(scores, voiced, cfg.select_by))   # mixed corpora: each counts once
        by_corpus = {str(c): float(m["UA"]) for c, m in scores["both"]["corpora"].items()}   # plain types: state.pt loads weights_only
        progress["history"].append(dict(epoch=epoch, train_loss=train_loss, train_ce=train_ce, val_loss=val["loss"],
                                        val_UA=val["UA"], val_WA=val["WA"], val_UA_by_corpus=by_corpus,
                                        seconds=time.time() - start))
        if "corpus" in train:   # the adversary's cross-entropy, and what it would score guessing from the shares
            progress["history"][-1].update(train_corpus_ce=train["corpus"], corpus_guessing_ce=train["corpus_guessing"])
        bar.set_postfix_str(f"loss {train_loss:.3f} val UA {100 * val['UA']:.1f}")
        per_corpus = ", ".join(f"{c or 'all'} {100 * ua:.1f}" for c, ua in by_corpus.items())
        log.info(f"fold {fold_id} epoch {epoch + 1}/{epochs}: train loss {train_loss:.4f}, "
                 f"val loss {val['loss']:.4f}, val UA {100 * val['UA']:.2f}, WA {100 * val['WA']:.2f} ({per_corpus})"
                 + (f"; the corpus adversary's loss {train['corpus']:.3f} (guessing from the corpora's shares: "
                    f"{train['corpus_guessing']:.3f})" if "corpus" in train else ""))
        progress["epoch"] = epoch + 1
        if accelerator.is_main_process:
            if val["UA"] > progress["best_UA"]:  # selection on validation UA only
                progress["best_UA"], progress["best_epoch"] = val["UA"], epoch + 1
                save_model(plain, fold_dir / "best", tokenizer)
            save_state(state_path, plain, optimizer, scheduler, progress)
        accelerator.wait_for_everyone()
    bar.close()
    return finish_fold(cfg, fold_id, name, fold_dir, records, test_idx, progress, accelerator, shared_caches, val_idx)


def adversary_targets(config, records) -> torch.Tensor | None:
    """(records,) each training record's index into config.adversary_corpora (-1: not one of them), or None
    without an adversary."""
    if not config.lambda_corpus:
        return None
    return torch.tensor([config.adversary_corpora.index(r.corpus) if r.corpus in config.adversary_corpora else -1
                         for r in records])


def measured_voices(cfg, model, records, train_idx, tokenizer, caches):
    """Each training speaker's mean frame for --augment-voice-offset (mgcma/training/voice_offsets.py),
    or None without it. The clean clips it encodes stay cached for training."""
    if not cfg.augment_voice_offset:
        return None
    if "speech" not in caches:
        raise TrainingError("--augment-voice-offset moves cached frames: it needs a frozen speech encoder and "
                            "--cache-features (a preset such as whisper-base, or --freeze-encoders)")
    voiced = [i for i in train_idx if records[i].has_audio]
    loader = make_loader(records, voiced, model, tokenizer, cfg, False, 0, caches=caches)
    try:
        return measure_voices(model, loader, caches["speech"], [records[i] for i in train_idx],
                              cfg.augment_voice_offset, cfg.seed)
    except ValueError as e:
        raise TrainingError(str(e)) from None


def finish_fold(cfg, fold_id, name, fold_dir, records, test_idx, progress, accelerator, shared_caches=None,
                val_idx=None) -> dict:
    """The selected model's confidence calibrated on validation (saved with it), then the one
    evaluation on the test fold: over all test records and per corpus, from both modalities and
    (a two-modality model) from each alone. Frozen encoders run once per clip (cached as in validation)."""
    best = load_model(fold_dir / "best", accelerator.device)
    caches = frozen_caches(best, cfg, shared_caches)
    calibration, answers = None, {}
    if val_idx:
        calibration, answers["validation"] = calibrate_on_validation(cfg, best, records, val_idx, caches, accelerator)
        if accelerator.is_main_process:
            best.config.save(fold_dir / "best" / "config.json")
    test_loader = make_loader(records, test_idx, best, load_tokenizer(best.config, fold_dir / "best"), cfg, False, 0,
                              caches=caches)
    test_loader = accelerator.prepare(test_loader)
    modalities = MODALITIES if best.config.modality == "both" else ("both",)
    test_answers = {m: predict_loader(best, test_loader, caches, accelerator, m) for m in modalities}
    scores = score_answers(test_answers, test_loader.dataset.records, [records[i].corpus for i in test_idx], best.config)
    test = scores["both"]
    answers["test"] = test_answers["both"][:3]
    metrics = dict(fold=fold_id, test_group=name, WA=test["WA"], UA=test["UA"], recall=test["recall"],
                   confusion_matrix=test["confusion_matrix"], labels=test["labels"], n_test=test["n"],
                   by_modality={m: {k: v for k, v in sc.items() if k != "loss"} for m, sc in scores.items()},
                   best_epoch=progress["best_epoch"], best_val_UA=progress["best_UA"],
                   calibration=None if calibration is None else dataclasses.asdict(calibration),
                   history=progress["history"], config=dataclasses.asdict(cfg))
    if accelerator.is_main_process:
        atomic_write(fold_dir / "metrics.json", lambda tmp: Path(tmp).write_text(json.dumps(metrics, indent=2)))
        plot_curves(progress["history"], fold_dir / "curves.png", curves_title(fold_id, name, test))
        indices = {"validation": val_idx, "test": test_idx}
        save_answers(fold_dir / "answers.npz", records, {part: (indices[part], a) for part, a in answers.items()})
    log.info(f"fold {fold_id}: test UA {100 * test['UA']:.2f} %, WA {100 * test['WA']:.2f} % "
             f"(model of epoch {progress['best_epoch']})")
    return metrics


def calibrate_on_validation(cfg, model, records, val_idx, caches, accelerator):
    """Fit the temperature and the "not sure" threshold on the validation rows (each corpus
    weighing the same) and set them in the model's config. -> the fit, and the validation answers
    (logits, targets, rows)."""
    loader = accelerator.prepare(make_loader(records, val_idx, model, load_tokenizer(model.config), cfg, False, 0,
                                             caches=caches))
    logits, targets, rows, _ = predict_loader(model, loader, caches, accelerator)
    result = calibrate(logits, targets, groups=[records[val_idx[r]].corpus for r in rows])
    model.config.temperature, model.config.not_sure_below = result.temperature, result.not_sure_below
    log.info(f"calibrated on {result.n} validation utterances: temperature {result.temperature:.3f}, {result.ece_change}, "
             f"'not sure' below {result.not_sure_below:.2f}")
    return result, (logits, targets, rows)


def curves_title(fold_id, name, test: dict) -> str:
    """Test UA per corpus when there are several (validation UA, plotted, is their mean)."""
    corpora = {c: m for c, m in test.get("corpora", {}).items() if c}
    if len(corpora) > 1:
        per = ", ".join(f"{c} {100 * m['UA']:.1f}" for c, m in corpora.items())
        return f"fold {fold_id} (test: {name}); test UA % {per}; validation UA = mean over corpora"
    return f"fold {fold_id} (test: {name}); test UA {100 * test['UA']:.1f} %, WA {100 * test['WA']:.1f} %"


def mixed_precision(cfg: TrainConfig) -> str:
    if cfg.mixed_precision != "auto":
        return cfg.mixed_precision
    if not torch.cuda.is_available():
        return "no"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def train(cfg: TrainConfig, shared_caches: dict | None = None) -> dict:
    """Every selected fold of `cfg`. `shared_caches` ({} to start): frozen encoders' outputs kept
    across calls, for runs that differ only in their heads (ablations, seeds)."""
    out = Path(cfg.out)
    if not 0.0 < cfg.train_fraction <= 1.0:
        raise TrainingError(f"--train-fraction must be in (0, 1]; got {cfg.train_fraction}")
    augment_config(cfg)   # a malformed range is refused before any clip is heard
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
    folds = make_folds(cfg, records)
    results = []
    for k in select_folds(cfg.folds, len(folds)):
        name, train_idx, test_idx, val_idx = folds[k]
        results.append(run_fold(cfg, records, labels, k, name, train_idx, test_idx, accelerator, val_idx, shared_caches))
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
