"""One batch through the model: its inputs (raw, or cached outputs of frozen encoders), the
modality it is allowed to use, and scoring over a loader per corpus and per modality."""
from __future__ import annotations

import numpy as np
import torch

from ..calibration import confidence_scores
from ..data.batching import hide
from . import partial_finetuning as partial
from ..metrics import classification_metrics

MODALITIES = ("both", "speech", "text")   # what an answer is allowed to hear / read


class FeatureCache:
    """Outputs of frozen encoders per item, computed once (an epoch then costs only the heads).
    Keyed by content (an audio file and its augmented view; a transcript), so that one cache
    can serve every fold, seed and setting of an ablation. Kept in half precision: a Whisper
    encoder's every-layer features are large."""

    def __init__(self, dtype: torch.dtype = torch.float16):
        self.store, self.dtype = {}, dtype
        self.keys = set()   # what a dataset may skip loading (it holds this set, not the features)
        self.stamped = None

    def stamp(self, stamp) -> None:
        """What the features were computed by (mgcma/training/partial_finetuning.py: frozen_stamp); another stamp drops them."""
        if stamp != self.stamped:
            self.store.clear()
            self.keys.clear()   # in place: datasets hold this set
            self.stamped = stamp

    def get(self, keys, compute):
        """keys: one hashable per row; compute() -> (features (B, T, ...), mask (B, T)) for the whole batch."""
        if any(k not in self.store for k in keys):
            feats, mask = compute()
            for k, f, m in zip(keys, feats, mask):
                if k not in self.store:   # a row already cached may have come without its audio
                    self.store[k] = f[m].detach().to(self.dtype)
                    self.keys.add(k)
        feats = [self.store[k] for k in keys]
        n = max(1, max(f.shape[0] for f in feats))   # a batch without audio still has one (masked) frame
        out = torch.zeros(len(feats), n, *feats[0].shape[1:], device=feats[0].device)
        mask = torch.zeros(len(feats), n, dtype=torch.bool, device=out.device)
        for i, f in enumerate(feats):
            out[i, :len(f)], mask[i, :len(f)] = f.float(), True
        return out, mask


def cached_text(cache: FeatureCache, batch, encode):
    """encode(input_ids, text_mask) -> (B, Tt, D), cached per transcript."""
    text_mask = batch["text_mask"]
    feats, _ = cache.get(batch["texts"], lambda: (encode(batch["input_ids"], text_mask), text_mask))
    # cached rows keep their real tokens only: a batch of rows without text has fewer frames than its mask
    feats = torch.nn.functional.pad(feats, (0, 0, 0, max(0, text_mask.shape[1] - feats.shape[1])))
    return feats[:, :text_mask.shape[1]]


def speech_cache(caches: dict | None):
    """The cache whose clips a dataset need not load: a frozen speech encoder's, or its frozen bottom's."""
    caches = caches or {}
    return caches.get("speech") or caches.get("speech_bottom")


def model_inputs(model, batch, caches, modality: str = "both"):
    """Raw inputs, or cached features in place of frozen encoders (or of their frozen bottoms,
    the trainable tops run here). `modality` "speech" or "text" hides the other side (its mask
    all False), as for a record that lacks it."""
    c = model.config
    inputs = dict(labels=batch["labels"])
    if c.uses_speech:
        if "speech" in caches:
            inputs["speech_features"], inputs["speech_mask"] = caches["speech"].get(
                batch["speech_keys"], lambda: model.encode_speech(batch["audio"], batch["audio_mask"]))
        elif "speech_bottom" in caches:
            caches["speech_bottom"].stamp(partial.frozen_stamp(model, "speech"))
            bottom, mask = caches["speech_bottom"].get(
                batch["speech_keys"], lambda: partial.speech_bottom(model, batch["audio"], batch["audio_mask"]))
            inputs["speech_features"], inputs["speech_mask"] = partial.speech_top(model, bottom, mask), mask
        else:
            inputs.update(audio=batch["audio"], audio_mask=batch["audio_mask"])
    if c.uses_text:
        text_mask = batch["text_mask"]
        if "text" in caches:
            inputs.update(text_features=cached_text(caches["text"], batch, model.encode_text), text_mask=text_mask)
        elif "text_bottom" in caches:
            caches["text_bottom"].stamp(partial.frozen_stamp(model, "text"))
            hidden = cached_text(caches["text_bottom"], batch, lambda ids, mask: partial.text_bottom(model, ids, mask))
            inputs.update(text_features=partial.text_top(model, hidden, text_mask), text_mask=text_mask)
        else:
            inputs.update(input_ids=batch["input_ids"], text_mask=text_mask)
        inputs["text_keys"] = batch.get("text_keys")
    if modality != "both" and c.modality == "both":
        hide(inputs, "text" if modality == "speech" else "speech", torch.ones(len(batch["labels"]), dtype=torch.bool))
    return inputs


def drop_modalities(inputs: dict, p: float) -> None:
    """Modality dropout for training: of the rows that have both, hide the speech with
    probability p/2 and the text with p/2, so that one model learns to answer from either alone."""
    if p <= 0 or "text_mask" not in inputs or not ("speech_mask" in inputs or "audio_mask" in inputs):
        return
    speech_key = "speech_mask" if "speech_mask" in inputs else "audio_mask"
    both = inputs[speech_key].any(-1) & inputs["text_mask"].any(-1)
    u = torch.rand(len(both))
    hide(inputs, "speech", both & (u < p / 2))
    hide(inputs, "text", both & (u >= p / 2) & (u < p))


@torch.no_grad()
def predict_loader(model, loader, caches, accelerator, modality: str = "both"):
    """-> (logits (N, C), targets, record indices, mean CE) over a loader."""
    model.eval()
    plain = accelerator.unwrap_model(model)
    logits, targets, records, losses = [], [], [], []
    for batch in loader:
        with accelerator.autocast():
            out = model(**model_inputs(plain, batch, caches, modality))
        logit, target, rec = accelerator.gather_for_metrics((out.logits.float(), batch["labels"], batch["record"]))
        logits.append(logit.cpu())
        targets.append(target.cpu())
        records.append(rec.cpu())
        losses.append(out.losses["ce"].item())
    return torch.cat(logits).numpy(), torch.cat(targets).numpy(), torch.cat(records).numpy(), float(np.mean(losses))


def evaluate(model, loader, caches, accelerator, corpora: list[str], modalities=("both",)) -> dict:
    """score_answers of the model's answers over a loader, for each modality asked for."""
    answers = {m: predict_loader(model, loader, caches, accelerator, m) for m in modalities}
    return score_answers(answers, loader.dataset.records, corpora, accelerator.unwrap_model(model).config)


def score_answers(answers: dict, records, corpora: list[str], config) -> dict:
    """{modality: predict_loader's answers} -> scores over everything and per corpus. A modality is
    scored only on records that have it (a text-only corpus has no "speech" score). Each score carries
    its calibration with the model's temperature and "not sure" threshold (confidence_scores).
    records, corpora: the loader's dataset records and the corpus of each."""
    result = {}
    for modality, (logits, targets, rows, loss) in answers.items():
        has = np.array([modality_available(records[r], modality) for r in rows])
        if not has.any():
            continue
        names = np.array([corpora[r] for r in rows])
        def scored(chosen):
            return dict(classification_metrics(targets[chosen], logits[chosen].argmax(1), config.labels),
                        **confidence_scores(logits[chosen], targets[chosen], config))
        scores = scored(has)
        scores["loss"] = loss
        scores["corpora"] = {name: scored(has & (names == name)) for name in sorted(set(names[has]))}
        result[modality] = scores
    return result


def modality_available(record, modality: str) -> bool:
    return {"both": True, "speech": record.has_audio, "text": record.has_text}[modality]


def selection_score(scores: dict, voiced: set = frozenset(), by: str = "corpora") -> float:
    """Validation score for model selection: the mean UA over corpora (each counts once). By
    "modalities": the corpora with speech (`voiced`) weigh half, the words-only corpora the other
    half, so that two text corpora cannot outvote one spoken corpus."""
    corpora = scores["both"]["corpora"]
    if by == "corpora":
        return float(np.mean([m["UA"] for m in corpora.values()]))
    groups = [[m["UA"] for name, m in corpora.items() if (name in voiced) == spoken] for spoken in (True, False)]
    return float(np.mean([np.mean(group) for group in groups if group]))
