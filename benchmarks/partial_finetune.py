"""One training step with the top Whisper block and the top MiniLM layer fine-tuned: the whole
encoders run per step, against their frozen bottoms read from the cache (mgcma/training/partial_finetuning.py), and a
frozen-encoder step for scale; measured side by side in one process.

  python -m benchmarks.partial_finetune [--quick] [--preset whisper-tiny|whisper-base]
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import torch

from mgcma.config import preset
from mgcma.model import MGCMA
from mgcma.training.steps import FeatureCache, model_inputs

from .common import ROOT, measure, speech_clip


def step_inputs(model, batch: int, seconds: float):
    from mgcma.checkpoint import load_tokenizer
    tokenizer = load_tokenizer(model.config)
    texts = [f"this is sentence number {i}, said with some feeling" for i in range(batch)]
    enc = tokenizer(texts, padding=True, return_tensors="pt")
    audio = torch.from_numpy(np.stack([speech_clip(seconds) for i in range(batch)]))
    return dict(audio=audio, audio_mask=torch.ones_like(audio, dtype=torch.bool), input_ids=enc.input_ids,
                text_mask=enc.attention_mask.bool(), labels=torch.arange(batch) % 4, texts=texts,
                speech_keys=[f"clip{i}" for i in range(batch)], text_keys=torch.arange(batch))


def train_step(model, batch, caches, optimizer):
    optimizer.zero_grad()
    model(**model_inputs(model, batch, caches)).loss.backward()
    optimizer.step()


def bench_partial(name: str, batch: int, seconds: float, repeat: int) -> dict:
    out = {}
    for setting, overrides, cache_names in (
            ("frozen encoders, cached", {}, ("speech", "text")),
            ("top 1 + top 1 tuned, whole encoders per step", dict(finetune_top_layers=1, finetune_top_text_layers=1,
                                                                   freeze_speech_encoder=False, freeze_text_encoder=False), ()),
            ("top 1 + top 1 tuned, bottoms cached", dict(finetune_top_layers=1, finetune_top_text_layers=1,
                                                          freeze_speech_encoder=False, freeze_text_encoder=False),
             ("speech_bottom", "text_bottom"))):
        torch.manual_seed(0)
        model = MGCMA(preset(name, **overrides)).train()
        caches = {n: FeatureCache() for n in cache_names}
        inputs = step_inputs(model, batch, seconds)
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
        out[setting] = measure(lambda: train_step(model, inputs, caches, optimizer), repeat)   # warm-up fills the caches
    whole, cached = (out[k]["median"] for k in list(out)[1:])
    return dict(steps=out, batch=batch, seconds=seconds, cached_over_whole=cached / whole)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.partial_finetune", description=__doc__.strip().splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--preset", default="whisper-tiny")
    parser.add_argument("--json", default=None, help="write the figures here")
    args = parser.parse_args(argv)
    result = bench_partial(args.preset, 4 if args.quick else 16, 3.0, 2 if args.quick else 5)
    text = json.dumps(dict(preset=args.preset, threads=torch.get_num_threads(), **result), indent=2)
    print(text)
    if args.json:
        (ROOT / args.json).write_text(text + "\n")   # an absolute path stays as it is
    return 0


if __name__ == "__main__":
    sys.exit(main())
