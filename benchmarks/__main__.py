"""python -m benchmarks [--quick] [--json FILE]: where the time goes, measured in one process.

Every figure is a median over repeated runs after a warm-up (with min and max); comparisons are
ratios of measurements taken side by side in this run. Writes benchmarks/results/<machine>-<date>.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import date
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from mgcma.config import preset  # noqa: E402
from mgcma.model import MGCMA  # noqa: E402
from mgcma.config import DEFAULT_CHECKPOINT  # noqa: E402
from mgcma.infer.recognizer import EmotionRecognizer  # noqa: E402

from benchmarks.common import DEVICE, ROOT, measure, speech_clip  # noqa: E402
from benchmarks.laptop import KEYS, run as laptop  # noqa: E402  (the laptop-CPU keys: request, live hop, long, int8, ONNX, start)


def autocast():
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=DEVICE == "cuda")


def paper_sized_config(**overrides):
    """wav2vec2-base + bert-base shapes with random weights (no download)."""
    from transformers import BertConfig, Wav2Vec2Config
    speech = dict(Wav2Vec2Config().to_diff_dict(), model_type="wav2vec2")
    text = dict(BertConfig().to_diff_dict(), model_type="bert")
    return preset("paper", speech_encoder=None, speech_encoder_config=speech, text_encoder=None,
                  text_encoder_config=text, **overrides)


def batch_inputs(batch: int, seconds: float, tokens: int = 24):
    n = int(seconds * 16000)
    audio = torch.from_numpy(np.stack([speech_clip(seconds)] * batch)).to(DEVICE)
    ids = torch.randint(1000, 2000, (batch, tokens), device=DEVICE)
    return dict(audio=audio, audio_mask=torch.ones(batch, n, dtype=torch.bool, device=DEVICE),
                input_ids=ids, text_mask=torch.ones_like(ids, dtype=torch.bool))


@torch.inference_mode()
def stages(model: MGCMA, inputs: dict, repeat: int) -> dict:
    """Speech encoder, text encoder, and the rest (alignment modules + classifier) on cached features."""
    with autocast():
        speech, smask = model.encode_speech(inputs["audio"], inputs["audio_mask"])
        text = model.encode_text(inputs["input_ids"], inputs["text_mask"])
        return {
            "speech_encoder": measure(lambda: model.encode_speech(inputs["audio"], inputs["audio_mask"]), repeat),
            "text_encoder": measure(lambda: model.encode_text(inputs["input_ids"], inputs["text_mask"]), repeat),
            "alignment_and_classifier": measure(lambda: model(speech_features=speech, speech_mask=smask,
                                                              text_features=text, text_mask=inputs["text_mask"]), repeat),
            "full_forward": measure(lambda: model(**inputs), repeat),
        }


def bench_inference(quick: bool) -> dict:
    out = {}
    repeat = 3 if quick else 7
    tiny = MGCMA(preset("tiny")).to(DEVICE).eval()
    paper = MGCMA(paper_sized_config(), pretrained=False).to(DEVICE).eval()
    for seconds in (2, 5, 10):
        out[f"tiny_{seconds}s"] = stages(tiny, batch_inputs(1, seconds), repeat)
        out[f"paper_{seconds}s"] = stages(paper, batch_inputs(1, seconds), max(2, repeat // 2))
    return out


@torch.inference_mode()
def bench_alignment_cost(quick: bool) -> dict:
    """Full MGCMA forward / bare encoders' forward on the same batch (paper size, batch of 8, 4 s)."""
    model = MGCMA(paper_sized_config(), pretrained=False).to(DEVICE).eval()
    inputs = batch_inputs(8, 4.0)
    repeat = 2 if quick else 5

    def encoders():
        model.encode_speech(inputs["audio"], inputs["audio_mask"])
        model.encode_text(inputs["input_ids"], inputs["text_mask"])
    with autocast():
        full, bare = measure(lambda: model(**inputs), repeat), measure(encoders, repeat)
    return dict(full_ms=full, encoders_ms=bare, ratio=full["median"] / bare["median"])


def fold_weight_norm(model: MGCMA) -> None:
    """wav2vec2's positional conv is weight-normalised through a parametrisation, which
    FlopCounterMode cannot trace; folding it into a plain weight gives the same forward."""
    from torch.nn.utils import parametrize
    for module in model.modules():
        if parametrize.is_parametrized(module, "weight"):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)


def bench_flops(quick: bool) -> dict:
    """Forward FLOP/s of the paper-sized model against a large matmul's FLOP/s, in this run."""
    model = MGCMA(paper_sized_config(), pretrained=False).to(DEVICE).eval()
    fold_weight_norm(model)
    with torch.inference_mode():
        return count_and_time(model, quick)


def count_and_time(model: MGCMA, quick: bool) -> dict:
    from torch.utils.flop_counter import FlopCounterMode
    inputs = batch_inputs(8, 4.0)
    with FlopCounterMode(display=False) as counter, autocast():
        model(**inputs)
    flops = counter.get_total_flops()
    with autocast():
        t = measure(lambda: model(**inputs), 2 if quick else 4)
    n = 2048 if DEVICE == "cpu" else 8192
    dtype = torch.float32 if DEVICE == "cpu" else torch.bfloat16
    a, b = torch.randn(n, n, device=DEVICE, dtype=dtype), torch.randn(n, n, device=DEVICE, dtype=dtype)
    mm = measure(lambda: a @ b, 3 if quick else 6)
    model_rate = flops / (t["median"] / 1000)
    peak = 2 * n ** 3 / (mm["median"] / 1000)
    return dict(forward_gflop=flops / 1e9, forward_ms=t, model_gflops=model_rate / 1e9,
                matmul_gflops=peak / 1e9, efficiency=model_rate / peak)


def bench_training(quick: bool) -> dict:
    """Utterances per second of one optimisation step (batch of 8 clips of 2 s, tiny preset)."""
    settings = {"full": {}, "no-dist": dict(use_dist=False), "no-token": dict(use_token=False),
                "no-inst": dict(use_inst=False), "none": dict(use_dist=False, use_token=False, use_inst=False),
                "speech-only": dict(modality="speech", use_dist=False, use_token=False, use_inst=False),
                "text-only": dict(modality="text", use_dist=False, use_token=False, use_inst=False)}
    if quick:
        settings = {k: settings[k] for k in ("full", "none")}
    inputs = dict(batch_inputs(8, 2.0), labels=torch.arange(8, device=DEVICE) % 4)
    out = {}
    for name, change in settings.items():
        torch.manual_seed(0)
        model = MGCMA(preset("tiny", **change)).to(DEVICE).train()
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

        def step():
            with autocast():
                loss = model(**inputs).loss
            loss.backward()
            opt.step()
            opt.zero_grad()
        t = measure(step, 3 if quick else 6)
        out[name] = dict(step_ms=t, utterances_per_s=8 / (t["median"] / 1000))
    # cached frozen text features: the step without the text encoder's forward
    model = MGCMA(preset("tiny")).to(DEVICE).train()
    with torch.no_grad():
        cached = model.encode_text(inputs["input_ids"], inputs["text_mask"])
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    def cached_step():
        with autocast():
            loss = model(audio=inputs["audio"], audio_mask=inputs["audio_mask"], text_features=cached,
                         text_mask=inputs["text_mask"], labels=inputs["labels"]).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    t = measure(cached_step, 3 if quick else 6)
    out["full_cached_text"] = dict(step_ms=t, utterances_per_s=8 / (t["median"] / 1000),
                                   ratio_to_uncached=t["median"] / out["full"]["step_ms"]["median"])
    return out


def bench_requests(quick: bool) -> dict:
    """The bundled model on a 5 s clip, the way the app serves it, by stage."""
    from mgcma.analysis.reference import ReferenceMap
    from mgcma.analysis.views import prediction_views
    recognizer = EmotionRecognizer(DEFAULT_CHECKPOINT, "auto", DEVICE)
    reference = ReferenceMap.load(DEFAULT_CHECKPOINT)
    clip = (16000, speech_clip(5.0))
    repeat = 3 if quick else 7
    no_asr = measure(lambda: recognizer.predict(clip, "I just got the job, this is wonderful news."), repeat)
    with_asr = measure(lambda: recognizer.predict(clip, None), repeat)
    pred = recognizer.predict(clip, "I just got the job, this is wonderful news.")
    figures = measure(lambda: prediction_views(pred, recognizer.model.frame_seconds, reference), repeat)
    vector = pred.output.speech_fused[0].numpy()
    place = measure(lambda: reference.place(vector), 20 if quick else 100)
    return dict(no_asr=no_asr, with_asr=with_asr, figures=figures, umap_place=place,
                reference_points=len(reference.coords))


def bench_figure3(quick: bool) -> dict:
    """UMAP + drawing of Figure 3 for 5,000 utterances (embeddings of the bundled model's width)."""
    import matplotlib
    matplotlib.use("Agg")
    from mgcma.analysis.embed import Embeddings
    from mgcma.analysis.figure3 import figure3
    n = 1000 if quick else 5000
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 1, (4, 128))
    labels = [["neutral", "happy", "angry", "sad"][i % 4] for i in range(n)]
    speech = centres[np.arange(n) % 4] + rng.normal(0, 0.6, (n, 128))
    emb = Embeddings(speech=speech, text=speech + rng.normal(0, 0.4, (n, 128)), labels=labels, predicted=labels)
    start = time.perf_counter()
    figure3({"MGCMA": emb})
    return dict(utterances=n, seconds=time.perf_counter() - start)


def summary_table(r: dict) -> str:
    def ms(x):
        return f"{x['median']:.0f} ms ({x['min']:.0f}-{x['max']:.0f})"
    rows = ["| measurement | median (min-max) |", "| --- | --- |"]
    for key in sorted(k for k in r["inference"]):
        for stage, t in r["inference"][key].items():
            rows.append(f"| inference {key}: {stage} | {ms(t)} |")
    rows += [f"| request, bundled model, 5 s clip, no ASR | {ms(r['requests']['no_asr'])} |",
             f"| request, bundled model, 5 s clip, with ASR | {ms(r['requests']['with_asr'])} |",
             f"| the app's three figures | {ms(r['requests']['figures'])} |",
             f"| place one utterance on the reference map ({r['requests']['reference_points']} points) | "
             f"{r['requests']['umap_place']['median']:.2f} ms |",
             f"| alignment cost ratio, paper size (full / encoders), batch 8 x 4 s | {r['alignment']['ratio']:.3f} |",
             f"| forward FLOP/s share of a large matmul's, paper size | {r['flops']['efficiency']:.2f} "
             f"({r['flops']['model_gflops']:.0f} of {r['flops']['matmul_gflops']:.0f} GFLOP/s) |"]
    for name, t in r["training"].items():
        rows.append(f"| training step, tiny, {name} (batch 8 x 2 s) | {ms(t['step_ms'])}, {t['utterances_per_s']:.1f} utt/s |")
    rows += [f"| Figure 3 for {r['figure3']['utterances']} utterances | {r['figure3']['seconds']:.1f} s |",
             f"| app cold start: page served / first request answered | {r['app_cold_start']['page_s']:.1f} s / "
             f"{r['app_cold_start']['first_answer_s']:.1f} s |"]
    return "\n".join(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.strip().splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and settings (under 3 minutes)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    machine = torch.cuda.get_device_name() if DEVICE == "cuda" else f"{platform.machine()}-{os.cpu_count()}cpu"
    r = dict(machine=machine, device=DEVICE, date=str(date.today()), torch=torch.__version__, quick=args.quick)
    for name, fn in (("inference", bench_inference), ("alignment", bench_alignment_cost), ("flops", bench_flops),
                     ("training", bench_training), ("requests", bench_requests), ("figure3", bench_figure3)):
        start = time.perf_counter()
        r[name] = fn(args.quick)
        print(f"{name}: {time.perf_counter() - start:.1f} s", file=sys.stderr)
    r["laptop"] = laptop(args.quick, str(ROOT / "data" / "ravdess4.csv"))
    r["app_cold_start"] = r["laptop"]["app_cold_start"]
    r.update(request_ms_5s_no_asr=r["requests"]["no_asr"]["median"], alignment_cost_ratio_paper=r["alignment"]["ratio"],
             flop_efficiency_paper=r["flops"]["efficiency"], umap_place_ms=r["requests"]["umap_place"]["median"],
             **{k: r["laptop"][k] for k in KEYS})
    table = summary_table(r)
    print(table)
    suffix = "-quick" if args.quick else ""  # a quick run never replaces a full one
    out = ROOT / "benchmarks" / "results" / f"{machine.replace(' ', '_')}-{r['date']}{suffix}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    for path in filter(None, (out, args.json)):
        path.write_text(json.dumps(r, indent=2) + "\n")
        print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
