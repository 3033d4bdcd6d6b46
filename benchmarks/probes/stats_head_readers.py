"""Probe (docs/cross-corpus.md, the statistics head): other readers of the same clip statistics.

Each reader is scored as the statistics head alone, leave one corpus out: trained on every corpus
but one (their training rows, every view), tested on the held-out corpus's every clip, clean. Its
hyperparameter is chosen as `mgcma.stats_head` chooses C: train on one training corpus, score the
other, both ways; the held-out corpus is never looked at until its test.

  python -m benchmarks.probes.stats_head_readers --checkpoint MODEL --manifest a.csv,b.csv,c.csv \
    --cache runs/stats/cache [--readers "lr,lr log-std"]
"""
import argparse

import numpy as np

from mgcma.checkpoint import load_model
from mgcma.data.records import read_manifest
from mgcma.metrics import classification_metrics
from mgcma.training.stats_head import C_GRID, balanced_weights, corpus_statistics, fit_linear

LAYER = 3   # the shipped head's hidden state


def mean_part(s):
    """(..., L, 2D) clip statistics -> (..., D): the mean over time of hidden state LAYER."""
    return s[..., LAYER, : s.shape[-1] // 2]


def spread_part(s):
    """-> (..., D): its standard deviation over time."""
    return s[..., LAYER, s.shape[-1] // 2:]


def linear(x, y, w, C):
    mean, scale, coef, intercept = fit_linear(x, y, w, C, 4)
    return lambda z: ((z - mean) / scale) @ coef.T + intercept


def shrunk_lda(x, y, w, shrinkage):
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    mean, scale = x.mean(0), x.std(0) + 1e-8   # LDA takes no sample weights: equal priors instead
    lda = LinearDiscriminantAnalysis(solver="lsqr", shrinkage=shrinkage, priors=np.full(4, 0.25)).fit((x - mean) / scale, y)
    return lambda z: lda.decision_function((z - mean) / scale)


READERS = {   # name: (clip statistics (..., L, 2D) -> features, fit, hyperparameter grid)
    "lr": (lambda s: s[..., LAYER, :], linear, C_GRID),
    "lr log-std": (lambda s: np.concatenate([mean_part(s), np.log(spread_part(s) + 1e-4)], -1), linear, C_GRID),
    "lr mean only": (mean_part, linear, C_GRID),
    "lr spread only": (spread_part, linear, C_GRID),
    "lr states 2-4": (lambda s: s[..., 2:5, :].reshape(*s.shape[:-2], -1), linear, (0.0001,) + C_GRID[:-1]),
    "shrunk lda": (lambda s: s[..., LAYER, :], shrunk_lda, ("auto", 0.3, 0.6, 0.9)),
}


def fit_on(corpora, names, features, fit, h):
    """A reader fitted on the training rows of the corpora `names`, every view."""
    x = [features(corpora[k]["train"]) for k in names]                       # each (N_k, V, F)
    y = np.concatenate([np.repeat(corpora[k]["y_train"], xk.shape[1]) for k, xk in zip(names, x)])
    g = np.concatenate([np.full(xk.shape[0] * xk.shape[1], i) for i, xk in enumerate(x)])
    return fit(np.concatenate([xk.reshape(-1, xk.shape[-1]) for xk in x]), y, balanced_weights(y, g), h)


def score_reader(corpora, labels, features, fit, grid) -> dict:
    """held-out corpus -> (UA %, hyperparameter chosen on the other corpora)."""
    def ua(model, clips, y):
        return classification_metrics(y, model(features(clips)).argmax(1), labels)["UA"]
    out = {}
    for held in corpora:
        train = [k for k in corpora if k != held]
        inner = [np.mean([ua(fit_on(corpora, [a], features, fit, h), corpora[b]["train"][:, 0], corpora[b]["y_train"])
                          for a in train for b in train if a != b]) for h in grid]
        h = grid[int(np.argmax(inner))]
        out[held] = (100 * ua(fit_on(corpora, train, features, fit, h), corpora[held]["all"], corpora[held]["y_all"]), h)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--cache", default=None)
    parser.add_argument("--readers", default=",".join(READERS))
    args = parser.parse_args(argv)
    model = load_model(args.checkpoint, "cpu").eval()
    labels = model.config.labels
    corpora = {}
    for manifest in args.manifest.split(","):
        rows = [r for r in read_manifest(manifest) if r.has_audio and r.label in labels]
        train, test = [r for r in rows if r.split != "test"], [r for r in rows if r.split == "test"]
        c = dict(train=corpus_statistics(model, train, manifest, 4, args.cache),
                 y_train=np.array([labels.index(r.label) for r in train]))
        clean = [c["train"][:, 0]] + ([corpus_statistics(model, test, manifest, 1, args.cache)[:, 0]] if test else [])
        c.update(all=np.concatenate(clean), y_all=np.array([labels.index(r.label) for r in train + test]))
        corpora[manifest] = c
    for name in args.readers.split(","):
        row = score_reader(corpora, labels, *READERS[name])
        cells = "  ".join(f"{k}: {ua:.2f} ({h})" for k, (ua, h) in row.items())
        print(f"{name}: {cells}  mean {np.mean([ua for ua, _ in row.values()]):.2f}", flush=True)


if __name__ == "__main__":
    main()
