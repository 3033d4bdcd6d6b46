"""Utterance records from IEMOCAP, a manifest or the synthetic corpus; batching; folds."""
from __future__ import annotations

import csv
import os
import json
import random
import re
import warnings
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import Dataset, Sampler

from .audio import SAMPLE_RATE, AudioLimits, Hygiene, clean_speech, load_audio


@dataclass
class Utterance:
    id: str
    path: str | None          # audio file; None when `waveform` holds the audio, or for a text-only record
    text: str                 # "" = no transcript (a speech-only record in training; the ASR fills it in inference)
    label: str
    speaker: str
    group: str = ""           # the cross-validation group: IEMOCAP session, or a manifest's fold
    waveform: np.ndarray | None = field(default=None, repr=False)
    split: str = ""           # "train" | "validation" | "test": a fixed split instead of cross-validation
    corpus: str = ""          # the manifest it came from, for mixed-corpus training and per-corpus scores
    meta: dict = field(default_factory=dict, repr=False)   # a manifest's other columns (sex, ...)
    line: int = 0             # its line in the manifest, for messages

    @property
    def has_audio(self) -> bool:
        return self.path is not None or self.waveform is not None

    @property
    def has_text(self) -> bool:
        return bool(self.text.strip())


class ManifestError(ValueError):
    pass


# ---------------------------------------------------------------------------------- IEMOCAP
IEMOCAP_MAP = {"neu": "neutral", "hap": "happy", "exc": "happy", "ang": "angry", "sad": "sad"}
IEMOCAP_EXPECTED = {"neutral": 1708, "happy": 1636, "angry": 1103, "sad": 1084}
_EVAL_LINE = re.compile(r"^\[\s*[\d.]+\s*-\s*[\d.]+\s*\]\t(\S+)\t(\S+)\t")
_TRANSCRIPT_LINE = re.compile(r"^(Ses\d\d[MF]_\S+?_[MF]\d{3})\s*\[[^\]]*\]:\s*(.*)$")


def read_iemocap(root: str | Path, report=print) -> list[Utterance]:
    """Parse IEMOCAP_full_release/: 4 classes (hap + exc merged), sessions as groups.
    Utterances whose wav or transcript is missing are skipped and counted."""
    root = Path(root)
    sessions = sorted(p for p in root.glob("Session[1-5]") if p.is_dir())
    if not sessions:
        raise FileNotFoundError(f"{root} has no Session1..Session5 folders: is it IEMOCAP_full_release/?")
    records, skipped = [], Counter()
    for session in sessions:
        texts = {}
        for tfile in sorted((session / "dialog" / "transcriptions").glob("*.txt")):
            for line in tfile.read_text(errors="replace").splitlines():
                if m := _TRANSCRIPT_LINE.match(line.strip()):
                    texts[m.group(1)] = m.group(2).strip()
        for efile in sorted((session / "dialog" / "EmoEvaluation").glob("*.txt")):
            dialog = efile.stem
            for line in efile.read_text(errors="replace").splitlines():
                m = _EVAL_LINE.match(line)
                if not m:
                    continue
                utt, code = m.groups()
                if code not in IEMOCAP_MAP:
                    skipped["other emotion"] += 1
                    continue
                wav = session / "sentences" / "wav" / dialog / f"{utt}.wav"
                if not wav.is_file():
                    skipped["missing wav"] += 1
                    continue
                if utt not in texts:
                    skipped["missing transcript"] += 1
                    continue
                speaker = f"{utt[:5]}{utt.split('_')[-1][0]}"  # Ses01 + F/M of the speaking actor
                records.append(Utterance(utt, str(wav), texts[utt], IEMOCAP_MAP[code], speaker,
                                         group=session.name))
    report_counts(records, skipped, report)
    return records


def report_counts(records, skipped, report=print) -> None:
    counts = Counter(r.label for r in records)
    report(f"IEMOCAP: {len(records)} utterances: " + ", ".join(f"{k} {counts[k]}" for k in IEMOCAP_EXPECTED)
           + (f" (skipped: {dict(skipped)})" if skipped else ""))
    expected_total = sum(IEMOCAP_EXPECTED.values())
    if dict(counts) != IEMOCAP_EXPECTED:
        diff = ", ".join(f"{k} {counts[k]} vs {v}" for k, v in IEMOCAP_EXPECTED.items() if counts[k] != v)
        report(f"WARNING: the class counts differ from the standard 4-class IEMOCAP set "
               f"({expected_total} = 1708 / 1636 / 1103 / 1084): {diff}. Results are not comparable "
               f"with published numbers unless this is intended.")


# --------------------------------------------------------------------------------- manifest
MANIFEST_FIELDS = ["path", "text", "label", "speaker"]
SPLITS = ("train", "validation", "test")


def read_manifest(path: str | Path, errors: list | None = None) -> list[Utterance]:
    """CSV or JSONL with path, text, label, speaker and optional fold, split and id.
    Relative audio paths are taken from the manifest's folder. An empty path is a text-only
    record; an empty text a record without transcript (the ASR fills it where one is asked for)."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"manifest {path} does not exist")
    if path.suffix == ".jsonl":
        rows = []
        for lineno, line in enumerate(path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ManifestError(f"{path}:{lineno}: not valid JSON ({e})") from None
            rows.append((lineno, row))
    else:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            missing = [k for k in MANIFEST_FIELDS if k not in (reader.fieldnames or [])]
            if missing:
                raise ManifestError(f"{path}:1: the header lacks column(s) {', '.join(missing)} "
                                    f"(needs {', '.join(MANIFEST_FIELDS)}, optional fold, split, id)")
            rows = [(i, row) for i, row in enumerate(reader, start=2)]
    records = []
    for lineno, row in rows:
        try:
            records.append(manifest_row(path, lineno, row))
        except ManifestError as e:
            if errors is None:
                raise
            errors.append(str(e))
    if not records:
        raise ManifestError(f"{path} holds no utterances")
    return records


def manifest_row(path: Path, lineno: int, row) -> Utterance:
    where = f"{path}:{lineno}"
    if not isinstance(row, dict):
        raise ManifestError(f"{where}: expected an object with {', '.join(MANIFEST_FIELDS)}")
    for key in ("label", "speaker"):
        if row.get(key) in (None, ""):
            raise ManifestError(f"{where}: '{key}' is empty")
    text = str(row.get("text") or "")
    if row.get("path") in (None, "") and not text.strip():
        raise ManifestError(f"{where}: neither audio ('path') nor 'text': the row holds nothing to learn from")
    audio = None
    if row.get("path") not in (None, ""):
        audio = Path(str(row["path"]))
        if not audio.is_absolute():
            audio = path.parent / audio
    split = str(row.get("split") or "")
    if split and split not in SPLITS:
        raise ManifestError(f"{where}: split {split!r} is not one of {', '.join(SPLITS)}")
    fold = row.get("fold")
    extra = {k: str(v) for k, v in row.items() if k not in (*MANIFEST_FIELDS, "fold", "split", "id") and v not in (None, "")}
    return Utterance(meta=extra, line=lineno, id=str(row.get("id") or (audio.stem if audio else f"{path.stem}-{lineno}")),
                     path=None if audio is None else str(audio), text=text,
                     label=str(row["label"]), speaker=str(row["speaker"]),
                     group="" if fold in (None, "") else str(fold), split=split, corpus=path.stem)


def write_manifest(records: list[Utterance], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    extra = sorted({k for r in records for k in r.meta})
    rows = [dict(path=os.path.relpath(r.path, path.parent.resolve()) if r.path else "", text=r.text, label=r.label,
                 speaker=r.speaker, fold=r.group, id=r.id, split=r.split, **{k: r.meta.get(k, "") for k in extra})
            for r in records]
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    else:
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["path", "text", "label", "speaker", "fold", "id", "split", *extra])
            writer.writeheader()
            writer.writerows(rows)
    return path


# ------------------------------------------------------------------------------------ folds
def groups_of(records: list[Utterance]) -> list[str]:
    """The leave-one-out unit: the record's group (session / fold) if every record has one, else speaker."""
    if all(r.group for r in records):
        return [r.group for r in records]
    return [r.speaker for r in records]


def leave_one_group_out(records: list[Utterance]) -> list[tuple[str, list[int], list[int]]]:
    """-> [(test group, train indices, test indices)] for each group in sorted order."""
    groups = groups_of(records)
    return [(g, [i for i, x in enumerate(groups) if x != g], [i for i, x in enumerate(groups) if x == g])
            for g in sorted(set(groups))]


def leave_one_corpus_out(records: list[Utterance]) -> list[tuple[str, list[int], list[int]]]:
    """-> [(held-out corpus, train indices, test indices)] for each corpus with audio. The held-out
    corpus is tested whole (every split); the others train on every row but their test split, so a
    corpus's own test speakers are never trained on, whichever corpus is held out."""
    speech_corpora = sorted({r.corpus for r in records if r.has_audio})
    if len(speech_corpora) < 2:
        raise ValueError(f"leaving one corpus out needs at least 2 corpora with audio; got {speech_corpora or 'none'} "
                         "(the corpus is the manifest's file name: pass several manifests)")
    return [(c, [i for i, r in enumerate(records) if r.corpus != c and r.split != "test"],
             [i for i, r in enumerate(records) if r.corpus == c and r.has_audio]) for c in speech_corpora]


def check_speaker_independence(records: list[Utterance], name: str, train_idx: list[int], test_idx: list[int]) -> None:
    """Refuse a fold whose test speakers also speak in its training side (a voice heard in
    training inflates the test score). Text-only rows have no voice and are not counted."""
    heard = {records[i].speaker for i in train_idx if records[i].has_audio}
    both = sorted(heard & {records[i].speaker for i in test_idx if records[i].has_audio})
    if both:
        lines = [f"{records[i].corpus}:{records[i].line}" for i in test_idx if records[i].speaker == both[0]][:3]
        raise ManifestError(f"fold {name!r} is not speaker-independent: speaker(s) {', '.join(both[:5])}"
                            f"{' ...' if len(both) > 5 else ''} are in its test side (e.g. {', '.join(lines)}) "
                            "and in its training side. Give each speaker one fold (or one split) in the manifest.")


def validation_split(records: list[Utterance], train_idx: list[int], fraction: float = 0.15,
                     seed: int = 0) -> tuple[list[int], list[int]]:
    """Split the training side only: whole speakers go to validation (as the test fold holds
    unseen speakers), falling back to random utterances when there are too few speakers."""
    rng = random.Random(seed)
    speakers = sorted({records[i].speaker for i in train_idx})
    if len(speakers) >= 3:
        rng.shuffle(speakers)
        n_val = max(1, round(fraction * len(speakers)))
        held = set(speakers[:n_val])
        val = [i for i in train_idx if records[i].speaker in held]
        return [i for i in train_idx if records[i].speaker not in held], val
    corpus = records[train_idx[0]].corpus if train_idx else ""
    warnings.warn(f"{corpus or 'the training side'} has {len(speakers)} speaker(s): its validation split cannot be "
                  "speaker-independent, so it holds random utterances of the training speakers and model selection "
                  "may favour what they alone say", stacklevel=2)
    shuffled = list(train_idx)
    rng.shuffle(shuffled)
    n_val = max(1, round(fraction * len(shuffled)))
    return sorted(shuffled[n_val:]), sorted(shuffled[:n_val])


def training_share(records: list[Utterance], train_idx: list[int], fraction: float = 1.0,
                   seed: int = 0) -> list[int]:
    """A seeded `fraction` of the training utterances, the same share of every class, for
    little-data runs: the test fold and the validation speakers stay as they are."""
    if fraction >= 1.0:
        return list(train_idx)
    rng = random.Random(seed)
    by_label: dict[str, list[int]] = {}
    for i in train_idx:
        by_label.setdefault(records[i].label, []).append(i)
    kept = []
    for label in sorted(by_label):
        pool = by_label[label]
        rng.shuffle(pool)
        kept += pool[:max(1, round(fraction * len(pool)))]
    return sorted(kept)


# -------------------------------------------------------------------------------- batching
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


def same_text(text: str) -> str:
    """A transcript as compared for identity: case and spacing ignored."""
    return " ".join(text.lower().split())


def text_key(text: str) -> int:
    """Equal for identical transcripts (`same_text`): the "text" positives of the pair losses."""
    return zlib.crc32(same_text(text).encode("utf-8"))


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
