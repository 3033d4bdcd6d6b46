"""Run a checkpoint over a dataset split and keep what the figures need."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from mgcma.data.records import Utterance
from mgcma.data.batching import BucketSampler, Collator, UtteranceDataset


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
    texts: list[str] | None = None                  # the transcripts (identical ones are one retrieval target)
    spaces: dict | None = None                      # space name -> (speech (N, k), text (N, k)); see analysis.alignment


@torch.inference_mode()
def embed_records(model, tokenizer, records: list[Utterance], batch_size: int = 32, progress: bool = True) -> Embeddings:
    model.eval()
    dataset = UtteranceDataset(records, model.config.labels, hygiene=model.config.hygiene)
    sampler = BucketSampler(dataset.durations(), batch_size, shuffle=False)
    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=Collator(tokenizer, model.config.max_text_tokens))
    device = next(model.parameters()).device
    parts, order, predicted = {}, [], []
    for batch in tqdm(loader, desc="embedding", unit="batch", disable=not progress):
        vectors, out = batch_vectors(model, {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()})
        for k, v in vectors.items():
            parts.setdefault(k, []).append(v.float().cpu().numpy())
        order += batch["index"].tolist()
        predicted += out.logits.argmax(-1).tolist()
    inverse = np.argsort(order)  # back to the records' order
    a = {k: np.concatenate(v)[inverse] for k, v in parts.items()}
    names = model.config.labels
    spaces = {name: (a[f"{name}/speech"], a[f"{name}/text"]) for name in SPACE_ORDER if f"{name}/speech" in a}
    return Embeddings(speech=a["fused/speech"], text=a["fused/text"], labels=[r.label for r in records],
                      predicted=[names[predicted[i]] for i in inverse], mu_speech=a.get("mu/speech"),
                      sigma_speech=a.get("sigma/speech"), mu_text=a.get("mu/text"), sigma_text=a.get("sigma/text"),
                      texts=[r.text for r in records], spaces=spaces)


SPACE_ORDER = ("encoder", "projected", "instance", "mu", "fused")


def batch_vectors(model, batch) -> tuple[dict, object]:
    """Every representation space of a two-modality model, pooled per utterance:
    encoder (raw encoder output, mean-pooled), projected (after Linear + LayerNorm, what the pair
    losses start from), instance (the instance-alignment projections), mu (the Gaussian means),
    fused (after token alignment: what the classifier sees)."""
    from mgcma.model import masked_mean
    speech, speech_mask = model.encode_speech(batch["audio"], batch["audio_mask"])
    speech = model.mix_layers(speech)
    text = model.encode_text(batch["input_ids"], batch["text_mask"])
    out = model(speech_features=speech, speech_mask=speech_mask, text_features=text, text_mask=batch["text_mask"])
    vectors = {"encoder/speech": masked_mean(speech, speech_mask), "encoder/text": masked_mean(text, batch["text_mask"]),
               "projected/speech": out.speech_pooled, "projected/text": out.text_pooled,
               "fused/speech": out.speech_fused, "fused/text": out.text_fused}
    if out.mu_speech is not None:
        vectors.update({"mu/speech": out.mu_speech, "mu/text": out.mu_text,
                        "sigma/speech": out.sigma_speech, "sigma/text": out.sigma_text})
    if hasattr(model, "instance_align"):
        vectors["instance/speech"], vectors["instance/text"] = model.instance_align.project(out.speech_pooled, out.text_pooled)
    return vectors, out
