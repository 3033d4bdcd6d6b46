"""What a training run is told: TrainConfig (every option of `python -m mgcma.train`, with its
default and, in the comment after it, its --help text) and the command line made from it."""
from __future__ import annotations

import argparse
import dataclasses
import inspect
from dataclasses import dataclass

from ..config import POSITIVES, PRESETS


@dataclass
class TrainConfig:
    data: str = "synthetic"            # synthetic | iemocap | manifest
    data_path: str | None = None       # synthetic: cache folder; iemocap: root or its manifest; manifest: file(s), comma-separated
    corpus_weights: str = ""           # mixed manifests: NAME=W,... (W x the corpus's size per epoch; NAME = the manifest's file stem)
    balance_classes: bool = False      # draw every class of a corpus equally often in training
    protocol: str = "auto"             # folds (leave one group out) | split (the manifests' split column) | corpora (leave one corpus out) | auto: split where every row has one
    synthetic_size: int = 3000         # utterances in the synthetic corpus
    preset: str = "tiny"               # paper | whisper-tiny | whisper-base | tiny | test | test-whisper (mgcma/config.py)
    modality: str = "both"             # both | speech | text (unimodal baselines)
    use_dist: bool = True              # distribution-level alignment
    use_token: bool = True             # token-level alignment
    use_inst: bool = True              # instance-level alignment
    lambda_dist: float | None = None   # weight of the distribution loss (None: the preset's, 0.5)
    lambda_inst: float | None = None   # weight of the instance loss (None: the preset's, 0.5)
    dist_positives: str = ""           # pair | text | label ("": the preset's)
    inst_positives: str = ""           # pair | text | label ("": the preset's)
    modality_dropout: float = 0.0      # share of paired training rows that lose their speech or their text (answers from one modality)
    augment_views: int = 1             # >1: each training clip also heard through views-1 seeded augmentations (noise, babble, rooms, ...)
    augment_noise: float = 0.6         # share of augmented views under white noise or babble (other training speakers)
    babble_snr: str = "5-25"           # "LOW-HIGH": the babble's SNR range in dB
    augment_shift_ms: float = 0.0      # >0: augmented views also start 0..this many ms later (tried for steadier answers: docs/results.md)
    augment_colour: float = 0.0        # share of augmented views heard through another microphone's response (7 bands, +-6 dB)
    augment_codec: float = 0.0         # share of augmented views MP3-compressed at 16-64 kbit/s
    augment_speed_pitch: float = 0.3   # share of augmented views sped up or slowed (--augment-tempo) or pitch-shifted (--augment-pitch)
    augment_tempo: str = "0.9-1.1"     # "SLOW-FAST": the speed's range (0.9: a tenth slower)
    augment_pitch: float = 2.0         # the pitch shift's range in semitones, up or down
    augment_voice_offset: float = 0.0  # share of training rows heard with their speaker's mean frame swapped for another training speaker's (frozen, cached speech encoder)
    corpus_adversary: float = 0.0      # >0: an adversary learns which training corpus each clip's voice came from; the voice is trained against it with this weight (gradient reversal)
    text_augment: bool = False         # augmented views also read their text as a recogniser may write it (lower case, words missed or misheard)
    finetune_top_layers: int = 0       # train the top k layers of the speech encoder (0: the preset's freezing)
    finetune_top_text_layers: int = 0  # train the top k layers of the text encoder (0: the preset's freezing)
    speech_layer_span: str = ""        # "A-B": mix Whisper's / wav2vec2's hidden states A..B only (0 = the first block's input; "": the preset's)
    folds: str = "all"                 # "all" or comma-separated fold numbers (0-based)
    epochs: int = 15                   # epochs per fold
    max_steps: int | None = None       # per fold; overrides epochs
    batch_size: int = 16               # utterances per step (per process)
    lr_heads: float = 1e-3             # AdamW learning rate of the projections, alignment modules and classifier
    lr_encoder: float = 5e-5           # pretrained encoders; randomly initialised ones use lr_heads
    weight_decay: float = 0.01         # AdamW weight decay
    warmup: float = 0.1                # share of the steps
    grad_clip: float = 1.0             # gradient-norm clipping (0: off)
    freeze_encoders: bool = False      # freeze both encoders (train the heads only)
    cache_features: bool = True        # frozen encoders: compute their outputs once
    max_seconds: float = 15.0          # longer clips are cropped, with a warning
    val_fraction: float = 0.15         # share of training speakers held out for model selection
    val_min_speakers: int = 2          # at least this many speakers of each training corpus in validation (1: the rule before 2026-12-07)
    select_by: str = "corpora"         # corpora: mean validation UA over corpora, each once | modalities: corpora with speech weigh half, words-only corpora the other half
    train_fraction: float = 1.0        # share of the training utterances used, every class alike (little-data runs)
    num_workers: int = 1               # DataLoader worker processes (this machine has 2 cores)
    mixed_precision: str = "auto"      # auto (bf16 on CUDA where supported, else fp16; none on CPU) | no | bf16 | fp16
    seed: int = 0                      # seeds data order, initialisation and dropout
    val_seed: int | None = None        # draws the validation speakers (None: --seed); one value for every seed of an ensemble leaves it speakers none of its heads trained on
    out: str = "runs/default"          # output folder: fold-K/, summary.json, results.md, train.log
    resume: bool = False               # continue a killed run in --out from its last epoch

    @property
    def validation_seed(self) -> int:
        return self.seed if self.val_seed is None else self.val_seed


CHOICES = dict(data=["synthetic", "iemocap", "manifest"], preset=list(PRESETS), protocol=["auto", "folds", "split", "corpora"],
               dist_positives=["", *POSITIVES], inst_positives=["", *POSITIVES],
               modality=["both", "speech", "text"], mixed_precision=["auto", "no", "bf16", "fp16"],
               select_by=["corpora", "modalities"])


def parser_for(config_cls, prog: str, description: str) -> argparse.ArgumentParser:
    """One option per config field, its default and comment shown by --help."""
    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    helps = field_comments(config_cls)
    for f in dataclasses.fields(config_cls):
        flag = "--" + f.name.replace("_", "-")
        if f.type in ("bool", bool) and f.name.startswith("use_"):
            parser.add_argument("--no-" + f.name[4:], dest=f.name, action="store_false",
                                help=f"switch the {f.name[4:]} alignment module off")
        elif f.type in ("bool", bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default, help=helps.get(f.name))
        else:
            kind = {"int": int, "float": float}.get(str(f.type).split(" ")[0], str)
            parser.add_argument(flag, type=kind, default=f.default, help=helps.get(f.name),
                                choices=CHOICES.get(f.name))
    return parser


def field_comments(config_cls) -> dict:
    """The comment after each field in the class source, as its --help text."""
    comments = {}
    for line in inspect.getsource(config_cls).splitlines():
        name, _, rest = line.strip().partition(":")
        if "#" in rest and name.isidentifier():
            comments[name] = rest.split("#", 1)[1].strip()
    return comments
