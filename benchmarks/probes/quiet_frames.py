"""Probe (docs/results.md, babble): does masking a clip's quiet frames out of the heads' pooling
help under babble? Every encoder frame (20 ms) more than GATE dB under the clip's 95th-percentile
frame level is masked, at test time only; voice-only UA, clean or degraded as mgcma.evaluate does.

  python -m benchmarks.probes.quiet_frames CHECKPOINT MANIFEST CONDITION GATE_DB   # GATE_DB 0: every frame
"""
import json
import sys

import torch

from mgcma.audio import HOP_LENGTH
from mgcma.data.records import read_manifest
from mgcma.infer.recognizer import EmotionRecognizer
from mgcma.infer.scoring import score_records

HOP = 2 * HOP_LENGTH   # samples per encoder frame: Whisper's second convolution has stride 2


def gated(encode_speech, gate_db: float):
    def encode(audio, audio_mask):
        hidden, mask = encode_speech(audio, audio_mask)
        n = mask.shape[1]
        wave = torch.nn.functional.pad(audio[0].float(), (0, max(0, n * HOP - audio.shape[-1])))[: n * HOP]
        level = 10 * torch.log10(wave.view(n, HOP).pow(2).mean(1) + 1e-10)          # (Ts,) dB
        loud = mask & (level >= torch.quantile(level[mask[0]], 0.95) - gate_db)[None]
        return hidden, loud if loud.sum() >= 10 else mask
    return encode


def main(argv=None):
    checkpoint, manifest, condition, gate_db = (argv or sys.argv[1:])[:4]
    recognizer = EmotionRecognizer(checkpoint, asr="none")
    if float(gate_db) > 0:
        recognizer.model.encode_speech = gated(recognizer.model.encode_speech, float(gate_db))
    metrics, _ = score_records(recognizer, read_manifest(manifest), modality="speech", condition=condition,
                               report=lambda *a: None)
    print(json.dumps(dict(checkpoint=checkpoint, manifest=manifest, condition=condition, gate_db=float(gate_db),
                          UA=round(100 * metrics["UA"], 2))))


if __name__ == "__main__":
    main()
