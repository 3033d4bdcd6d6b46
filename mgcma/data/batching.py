"""Batches for training and evaluation: a dataset of utterances (each heard through its seeded
augmentation views), padding into tensors, a mixture of corpora drawn per epoch, and batches of
clips of similar length.
"""
from __future__ import annotations

import random

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import Dataset, Sampler

from ..audio import SAMPLE_RATE, AudioLimits, Hygiene, clean_speech, load_audio
from .records import Utterance, text_key


class UtteranceDataset(Dataset):
    """Records -> dict(index, audio, text, label). With `views` > 1 it holds views x len(records)
    items: item i is record i // views heard (and its text read) through augmentation number i % views (0 = clean),
    the same on every visit (seeded), so a frozen encoder's output can be cached per item.
    `hygiene` (silence trim, loudness) is applied after augmentation, as to a real recording.
    `cached`: speech keys whose encoder output is already cached; their audio is not loaded (an
    empty waveform stands in), which makes epochs over frozen encoders cost the heads only."""

    def __init__(self, records: list[Utterance], labels: list[str], limits: AudioLimits = AudioLimits(),
                 hygiene: Hygiene | None = None, views: int = 1, augment=None, seed: int = 0,
                 cached: set | None = None, text_augment=None):
        unknown = sorted({r.label for r in records} - set(labels))
        if unknown:
            raise ValueError(f"labels {unknown} are not among the model's labels {labels}")
        self.records, self.limits, self.hygiene = records, limits, hygiene
        augmented = augment is not None or text_augment is not None
        self.views, self.augment, self.text_augment, self.seed = views if augmented else 1, augment, text_augment, seed
        self.label_index = {name: i for i, name in enumerate(labels)}
        self.cached = cached if cached is not None else set()

    def __len__(self):
        return len(self.records) * self.views

    def __getitem__(self, item):
        r, view = self.records[item // self.views], item % self.views
        key = f"{r.path or r.corpus + ':' + r.id}#{view}"
        audio, text, view_seed = np.zeros(0, dtype=np.float32), r.text, self.seed * 1_000_003 + item
        if r.has_audio and key not in self.cached:
            audio = r.waveform if r.waveform is not None else load_audio(r.path, self.limits)
            if view and self.augment is not None:
                audio = self.augment(audio, seed=view_seed)
            if self.hygiene is not None:
                audio = clean_speech(audio, self.hygiene)
        if view and self.text_augment is not None and r.has_text:
            text = self.text_augment(r.text, seed=view_seed)
        # key_text: the sentence as said, so a misheard view keeps its "same words" positives
        return dict(index=item, record=item // self.views, audio=audio, text=text, key_text=r.text,
                    label=self.label_index[r.label], speech_key=key)

    def durations(self) -> list[float]:
        """Seconds per record from the file headers (no decoding), for bucketing; 0 without audio."""
        out = []
        for r in self.records:
            if r.waveform is not None:
                out.append(len(r.waveform) / SAMPLE_RATE)
            elif r.path is None:
                out.append(0.0)
            else:
                info = sf.info(r.path)
                out.append(min(info.frames / info.samplerate, self.limits.max_seconds))
        return out


class Collator:
    """Pads audio (B, N) with a bool mask, tokenises text (B, Tt) with a bool mask. A row
    without audio or without text has an all-False mask on that side."""

    def __init__(self, tokenizer, max_text_tokens: int = 64):
        self.tokenizer, self.max_text_tokens = tokenizer, max_text_tokens

    def __call__(self, items: list[dict]) -> dict:
        n = max(1, max(len(it["audio"]) for it in items))
        audio = torch.zeros(len(items), n)
        audio_mask = torch.zeros(len(items), n, dtype=torch.bool)
        for i, it in enumerate(items):
            audio[i, :len(it["audio"])] = torch.from_numpy(np.asarray(it["audio"], dtype=np.float32))
            audio_mask[i, :len(it["audio"])] = True
        batch = dict(audio=audio, audio_mask=audio_mask,
                     labels=torch.tensor([it["label"] for it in items]),
                     index=torch.tensor([it["index"] for it in items]),
                     record=torch.tensor([it.get("record", it["index"]) for it in items]),
                     speech_keys=[it.get("speech_key", it["index"]) for it in items])
        if self.tokenizer is not None:
            texts = [it["text"] or "" for it in items]
            enc = self.tokenizer(texts, padding=True, truncation=True,
                                 max_length=self.max_text_tokens, return_tensors="pt")
            has_text = torch.tensor([bool(t.strip()) for t in texts])
            batch.update(input_ids=enc["input_ids"], text_mask=enc["attention_mask"].bool() & has_text[:, None], texts=texts,
                         text_keys=torch.tensor([text_key(it.get("key_text") or t) for it, t in zip(items, texts)],
                                                dtype=torch.long))
        return batch


class CorpusMixture:
    """Which training records an epoch draws: from each corpus, `weight` x its size (a fresh
    random subset each epoch below 1, repeats above 1), optionally with every class equally often."""

    def __init__(self, records: list[Utterance], weights: dict[str, float] | None = None,
                 balance_classes: bool = False, seed: int = 0):
        self.seed, self.balance = seed, balance_classes
        self.pools: dict[str, dict[str, list[int]]] = {}
        for i, r in enumerate(records):
            self.pools.setdefault(r.corpus, {}).setdefault(r.label, []).append(i)
        self.weights = {c: (weights or {}).get(c, 1.0) for c in self.pools}

    def __call__(self, epoch: int) -> list[int]:
        rng = random.Random(f"{self.seed}-{epoch}")
        chosen = []
        for corpus in sorted(self.pools):
            by_class = self.pools[corpus]
            size = sum(len(v) for v in by_class.values())
            n = round(self.weights[corpus] * size)
            if self.balance:
                shares = {c: n // len(by_class) for c in by_class}
            else:
                shares = {c: round(n * len(v) / size) for c, v in by_class.items()}
            for label in sorted(by_class):
                chosen += draw(by_class[label], shares[label], rng)
        return chosen


def draw(pool: list[int], n: int, rng: random.Random) -> list[int]:
    """n items of pool: each once before any repeats, in random order."""
    out = []
    while len(out) < n:
        out += rng.sample(pool, min(len(pool), n - len(out)))
    return out


class BucketSampler(Sampler):
    """Batches of similar duration so padding stays small: shuffle, sort within windows of
    `bucket_size` batches, cut into batches, shuffle the batch order. Deterministic per epoch.
    `draw(epoch)` picks the epoch's records (all, by default); with `views` > 1, record i is
    served as dataset item i * views + view, the view cycling from epoch to epoch."""

    def __init__(self, durations: list[float], batch_size: int, shuffle: bool = True,
                 bucket_size: int = 50, seed: int = 0, drop_last: bool = False, views: int = 1, draw=None):
        self.durations, self.batch_size, self.shuffle = durations, batch_size, shuffle
        self.bucket_size, self.seed, self.drop_last, self.epoch = bucket_size, seed, drop_last, 0
        self.views, self.draw = views, draw

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def batches(self) -> list[list[int]]:
        rng = random.Random(self.seed + self.epoch)
        order = self.draw(self.epoch) if self.draw is not None else list(range(len(self.durations)))
        if self.shuffle:
            rng.shuffle(order)
        window = self.batch_size * self.bucket_size
        batches = []
        for start in range(0, len(order), window):
            chunk = sorted(order[start:start + window], key=lambda i: self.durations[i])
            batches += [chunk[j:j + self.batch_size] for j in range(0, len(chunk), self.batch_size)]
        if self.drop_last:
            batches = [b for b in batches if len(b) == self.batch_size]
        if self.shuffle:
            rng.shuffle(batches)
        if self.views > 1:
            batches = [[i * self.views + (self.epoch + i) % self.views for i in b] for b in batches]
        return batches

    def __iter__(self):
        return iter(self.batches())

    def __len__(self):
        return len(self.batches())


def padding_fraction(batches: list[list[int]], durations: list[float]) -> float:
    """Share of the padded audio tensor that is padding."""
    total = sum(max(durations[i] for i in b) * len(b) for b in batches)
    real = sum(durations[i] for b in batches for i in b)
    return 1.0 - real / total


def hide(inputs: dict, side: str, rows: torch.Tensor) -> None:
    """Make `side` ("speech" | "text") absent in the given rows (B,) bool."""
    key = "text_mask" if side == "text" else ("speech_mask" if "speech_mask" in inputs else "audio_mask")
    inputs[key] = inputs[key] & ~rows.to(inputs[key].device)[:, None]
