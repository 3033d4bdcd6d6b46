"""Whisper's audio encoder, unpadded (ours) against CTranslate2's 30-s padded encode, and how far
unpadded pooled features move from padded ones.

  python -m benchmarks.whisper_encoder [--quick]
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import torch

from mgcma.config import WHISPER_BASE, WHISPER_TINY_EN
from mgcma.encoders.whisper import embedded_whisper_dir, load_whisper_encoder, log_mel

from .common import ROOT, measure, speech_clip


def encoder_speed(name: str, seconds_list, repeat: int) -> dict:
    """Median ms per clip: ours on the clip's own length vs CTranslate2 (int8, as faster-whisper runs
    on a CPU) on the clip padded to 30 s, measured side by side."""
    import ctranslate2
    from whisper.audio import pad_or_trim
    ours = load_whisper_encoder(name).eval()
    ct2 = ctranslate2.models.Whisper(str(embedded_whisper_dir(name)), device="cpu", compute_type="int8",
                                     intra_threads=torch.get_num_threads())
    out = {}
    for seconds in seconds_list:
        wave = torch.from_numpy(speech_clip(seconds))
        mel = log_mel(wave)[None]
        padded = log_mel(torch.from_numpy(pad_or_trim(wave.numpy())))[None].numpy()
        with torch.inference_mode():
            t_ours = measure(lambda: ours(mel, torch.tensor([mel.shape[-1]])), repeat)
        t_ct2 = measure(lambda: ct2.encode(ctranslate2.StorageView.from_array(padded), to_cpu=True), repeat)
        out[f"{seconds:g}s"] = dict(ours_unpadded=t_ours, ctranslate2_padded=t_ct2,
                                    ratio=t_ours["median"] / t_ct2["median"])
    return out


def pooled_drift(name: str, clips: list[np.ndarray]) -> dict:
    """Cosine between a clip's mean-pooled frames run unpadded and run padded to 30 s (pooled over
    the same, real frames), and against the padded run pooled over all 1500 frames."""
    from whisper.audio import pad_or_trim
    enc = load_whisper_encoder(name).eval()
    same, whole = [], []
    with torch.inference_mode():
        for wave in clips:
            wave = torch.from_numpy(wave)
            mel = log_mel(wave)[None]
            unpadded = enc(mel, torch.tensor([mel.shape[-1]])).last_hidden_state[0]
            padded = enc(log_mel(torch.from_numpy(pad_or_trim(wave.numpy())))[None], torch.tensor([3000])).last_hidden_state[0]
            a = unpadded.mean(0)
            same.append(torch.cosine_similarity(a, padded[:len(unpadded)].mean(0), dim=0).item())
            whole.append(torch.cosine_similarity(a, padded.mean(0), dim=0).item())
    return dict(cos_same_frames_median=float(np.median(same)), cos_same_frames_min=float(np.min(same)),
                cos_all_frames_median=float(np.median(whole)), clips=len(clips))


def drift_clips(n: int) -> list[np.ndarray]:
    """Real speech where the shared RAVDESS folder is at hand (actors 19-24), else the app's examples."""
    from pathlib import Path
    from mgcma.audio import load_audio

    shared = sorted((ROOT.parent / "shared" / "data" / "ravdess" / "audio").glob("Actor_2[0-4]/*.flac"))
    paths = shared[::max(1, len(shared) // n)][:n] if shared else sorted((ROOT / "app" / "examples").glob("*.wav"))
    return [load_audio(Path(p)) for p in paths]


def bench_whisper(quick: bool) -> dict:
    seconds = (5,) if quick else (2, 5, 10, 30)
    repeat = 3 if quick else 7
    clips = drift_clips(8 if quick else 40)
    return {name.split(":")[1]: dict(speed=encoder_speed(name, seconds, repeat), drift=pooled_drift(name, clips))
            for name in (WHISPER_TINY_EN, WHISPER_BASE)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.whisper_encoder", description=__doc__.strip().splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    r = bench_whisper(parser.parse_args(argv).quick)
    print(json.dumps(r, indent=2))
    for model, v in r.items():
        for length, s in v["speed"].items():
            print(f"{model} {length}: ours {s['ours_unpadded']['median']:.1f} ms, CTranslate2 padded "
                  f"{s['ctranslate2_padded']['median']:.1f} ms, ratio {s['ratio']:.3f}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
