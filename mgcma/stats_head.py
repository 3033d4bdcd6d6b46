"""A voice head that travels: a linear classifier on the mean and spread of one speech-encoder layer.

MGCMA's heads learn a great deal from the corpora they train on, and on a corpus they never heard
they lose more than a far simpler reader of the same frozen encoder: the mean and standard
deviation over time of one middle Whisper layer, standardised, into a multinomial logistic
regression (docs/cross-corpus.md). Answering together with the heads, it carries the voice across
corpora, and the heads carry the words and the noise. It is an ensemble member of its own kind
(`members/<k>/stats_head.json` + `.npz`), read by the PyTorch recogniser and the ONNX backend alike
(NumPy only at inference).

Its layer and regularisation are chosen by leave-one-corpus-out over its own training corpora (or
leave-speakers-out, given one corpus): the choice never sees a corpus it will be scored on. Its
temperature is fitted on those held-out predictions, so its confidence is that of an unheard corpus.
It hears the voice as it is: normalisation by a speaker's speech (mgcma/normalise.py) moves the
heads' features only.

  python -m mgcma.stats_head --checkpoint MODEL --manifest a.csv,b.csv,c.csv --out DIR
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from .checkpoint import load_model
from .config import CheckpointError
from .data.augment import AugmentConfig
from .data.records import ManifestError, read_manifest
from .encoders.build import n_hidden_states
from .infer.stats_head import READS
from .training.protocols import run_validation, spoken_voices, voice_key
from .training.run_files import TrainingError
from .training.stats_head import TrainingSet, candidate_layers, corpus_statistics, removal_candidates, train_stats_head


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mgcma.stats_head", description=__doc__.strip().splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="the model it will answer with: its speech encoder, "
                        "clean-up and labels are read from it (its hidden states must be mixed: speech_layers weighted)")
    parser.add_argument("--manifest", required=True, help="one or more manifests, comma-separated: each a corpus; "
                        "rows of split test never train")
    parser.add_argument("--out", required=True, help="directory to write (stats_head.json, stats_head.npz)")
    parser.add_argument("--augment-views", type=int, default=4, help="views of each clip: 1 clean, the rest augmented")
    parser.add_argument("--augment-colour", type=float, default=0.0, help="share of augmented views heard through "
                        "another microphone's response (7 bands, +-6 dB)")
    parser.add_argument("--augment-codec", type=float, default=0.0, help="share of augmented views MP3-compressed (16-64 kbit/s)")
    parser.add_argument("--layers", default=None, help="candidate hidden states, e.g. 1-5 (default: all)")
    parser.add_argument("--reads", default="mean and spread", choices=READS,
                        help="what it reads of the layer over each clip: its mean and spread, or the spread alone "
                             "(blind to what moves every frame of a clip alike, a voice's offset among it)")
    parser.add_argument("--remove-corpus-directions", default="0", metavar="K[,K...]",
                        help="candidate numbers of directions to take out of what it reads: those along which its "
                             "training corpora's class means differ most (0: none); chosen, with the layer's C, by the "
                             "same held-out score")
    parser.add_argument("--cache", default=None, help="keep each manifest's clip statistics in this folder, and reuse them")
    parser.add_argument("--hold-out-validation-of", default=None, metavar="RUN",
                        help="a trained fold (its folder or best/): its validation speakers never train here, so that "
                             "an ensemble with this head can be calibrated on them (python -m mgcma.ensemble --calibrate)")
    args = parser.parse_args(argv)
    manifests = args.manifest.split(",")
    try:
        model = load_model(args.checkpoint, "cpu").eval()
        if model.config.speech_layers != "weighted":
            raise CheckpointError(f"{args.checkpoint} reads one speech layer; a statistics head needs every hidden state")
        layers = candidate_layers(args.layers, n_hidden_states(model.speech_encoder))
        removals = removal_candidates(args.remove_corpus_directions)
        held_out = set()
        if args.hold_out_validation_of:   # the run's validation speakers, which its ensemble is calibrated on
            _, run_records, val_idx = run_validation(Path(args.hold_out_validation_of))
            held_out = spoken_voices(run_records, val_idx)
        corpora = [[r for r in read_manifest(m) if r.has_audio and r.split != "test" and r.label in model.config.labels
                    and voice_key(r) not in held_out] for m in manifests]
        if not all(corpora):
            raise ManifestError(f"{manifests[[bool(c) for c in corpora].index(False)]}: no clip with a label the model knows")
    except (CheckpointError, ManifestError, TrainingError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    augment = None
    if args.augment_colour or args.augment_codec:
        augment = AugmentConfig(p_colour=args.augment_colour, p_codec=args.augment_codec)
    stats = np.concatenate([corpus_statistics(model, c, m, args.augment_views, args.cache, augment)
                            for c, m in zip(corpora, manifests)])
    records = [r for c in corpora for r in c]
    # selection holds out whole corpora; given one, whole speakers
    groups = [str(k) for k, c in enumerate(corpora) for _ in c] if len(corpora) > 1 else [r.speaker for r in records]
    labels = model.config.labels
    data = TrainingSet(stats, np.array([labels.index(r.label) for r in records]), np.array(groups))
    try:
        head = train_stats_head(data, labels, model.config.speech_encoder, layers, reads=args.reads, removals=removals)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    head.config.trained_on = [f"{m}: {len(c)} clips" for c, m in zip(corpora, manifests)]
    head.config.held_out = sorted(held_out)
    head.save(args.out)
    c = head.config
    print(f"wrote {args.out}: layer {c.layer}, C {c.C}, {c.removed_directions} directions removed, "
          f"temperature {c.temperature:.2f}, "
          f"{len(records)} clips x {args.augment_views} views")
    return 0


if __name__ == "__main__":
    sys.exit(main())
