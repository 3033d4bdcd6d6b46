"""Run a checkpoint over a dataset split and keep what the figures need."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from mgcma.data import BucketSampler, Collator, Utterance, UtteranceDataset


@dataclass
class Embeddings:
    speech: np.ndarray        # (N, d) pooled speech after alignment (what the classifier sees)
    text: np.ndarray          # (N, d)
    labels: list[str]         # true emotion per utterance
    predicted: list[str]
    mu_speech: np.ndarray | None = None
    sigma_speech: np.ndarray | None = None
    mu_text: np.ndarray | None = None
    sigma_text: np.ndarray | None = None


@torch.inference_mode()
def embed_records(model, tokenizer, records: list[Utterance], batch_size: int = 32, progress: bool = True) -> Embeddings:
    model.eval()
    dataset = UtteranceDataset(records, model.config.labels)
    sampler = BucketSampler(dataset.durations(), batch_size, shuffle=False)
    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=Collator(tokenizer, model.config.max_text_tokens))
    device = next(model.parameters()).device
    keep = ("speech_fused", "text_fused", "mu_speech", "sigma_speech", "mu_text", "sigma_text")
    parts, order, predicted = {k: [] for k in keep}, [], []
    for batch in tqdm(loader, desc="embedding", unit="batch", disable=not progress):
        inputs = {k: v.to(device) for k, v in batch.items() if k in ("audio", "audio_mask", "input_ids", "text_mask")}
        out = model(**inputs)
        for k in keep:
            value = getattr(out, k)
            if value is not None:
                parts[k].append(value.float().cpu().numpy())
        order += batch["index"].tolist()
        predicted += out.logits.argmax(-1).tolist()
    inverse = np.argsort(order)  # back to the records' order
    arrays = {k: np.concatenate(v)[inverse] if v else None for k, v in parts.items()}
    names = model.config.labels
    return Embeddings(speech=arrays["speech_fused"], text=arrays["text_fused"], labels=[r.label for r in records],
                      predicted=[names[predicted[i]] for i in inverse], mu_speech=arrays["mu_speech"],
                      sigma_speech=arrays["sigma_speech"], mu_text=arrays["mu_text"], sigma_text=arrays["sigma_text"])
