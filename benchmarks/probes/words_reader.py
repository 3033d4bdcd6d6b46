"""Probe (docs/results.md, DailyDialog): a linear reader of MiniLM's mean token output, trained on
GoEmotions + DailyDialog (each corpus and class alike), mixed into the bundled model's words answer
at share w. Prints words-only UA on each corpus's validation and test turns for w = 0 ... 1.

  python -m benchmarks.probes.words_reader data/goemotions.csv data/dailydialog-nodup.csv
"""
import sys

import numpy as np
import torch
from scipy.special import softmax
from tqdm import tqdm

from mgcma.data.records import read_manifest
from mgcma.infer.recognizer import EmotionRecognizer
from mgcma.metrics import classification_metrics
from mgcma.model import masked_mean
from mgcma.training.stats_head import balanced_weights, fit_linear

SHARES = (0.0, 0.25, 0.5, 0.75, 1.0)


def mean_tokens(recognizer, texts: list[str], batch: int = 128) -> np.ndarray:
    """(N, D) the mean of the text encoder's outputs over each text's tokens."""
    out = []
    for i in tqdm(range(0, len(texts), batch), desc="MiniLM", file=sys.stderr):
        enc = recognizer.tokenizer(texts[i:i + batch], truncation=True, max_length=recognizer.config.max_text_tokens,
                                   padding=True, return_tensors="pt")
        with torch.inference_mode():
            mask = enc["attention_mask"].bool()
            out.append(masked_mean(recognizer.model.encode_text(enc["input_ids"], mask), mask).numpy())
    return np.concatenate(out)


def words_answer(recognizer, texts: list[str]) -> np.ndarray:
    with torch.inference_mode():
        return np.array([recognizer.forward(None, t)[0]["both"].probs[0].numpy() for t in tqdm(texts, file=sys.stderr)])


def main(argv=None):
    manifests = argv or sys.argv[1:]
    recognizer = EmotionRecognizer(asr="none")
    labels = recognizer.config.labels
    rows = {m: [r for r in read_manifest(m) if r.label in labels and r.has_text] for m in manifests}
    split = lambda m, s: [r for r in rows[m] if r.split == s]   # noqa: E731
    train = [(k, r) for k, m in enumerate(manifests) for r in split(m, "train")]
    x = mean_tokens(recognizer, [r.text for _, r in train])
    y, g = np.array([labels.index(r.label) for _, r in train]), np.array([k for k, _ in train])
    mean, scale, coef, intercept = fit_linear(x, y, balanced_weights(y, g), 0.1, len(labels))
    for m in manifests:
        for s in ("validation", "test"):
            texts, y = [r.text for r in split(m, s)], np.array([labels.index(r.label) for r in split(m, s)])
            reader = softmax(((mean_tokens(recognizer, texts) - mean) / scale) @ coef.T + intercept, axis=1)
            model = words_answer(recognizer, texts)
            ua = [100 * classification_metrics(y, ((1 - w) * model + w * reader).argmax(1), labels)["UA"] for w in SHARES]
            print(m, s, " ".join(f"w {w}: {u:.2f}" for w, u in zip(SHARES, ua)))


if __name__ == "__main__":
    main()
