"""Who spoke, and how they felt, on conversations built from voices the model never heard.

Each conversation: 2-4 speakers of one corpus taking turns (a turn is 1-3 acted clips of one speaker
in one emotion, each cut to its speech, 0.2-0.4 s apart), pauses of 0.3-1 s between turns, some turns
starting up to 0.4 s before the last one ends, a level of its own for each speaker (0 to -9 dB), and in
half of them background babble at 15 dB SNR made of other voices. Scored against the truth on 10-ms frames:
- speaker error: the share of single-speaker speech time given to the wrong speaker after the best
  one-to-one mapping (missed speech is counted apart), and pyannote.metrics' diarisation error rate
  (missed speech, false alarm and confusion; NIST's 0.25-s collar either side of each true boundary);
- how often the number of speakers is right;
- emotion UA per true utterance (the answer of the turn that covers most of it), with and without
  per-speaker normalisation, against the same clips classified one by one.

  python -m benchmarks.conversations --manifest data/ravdess4.csv:test,data/nemo.csv --babble data/emodb.csv \
      --conversations 16 --emotion --out benchmarks/results/conversations.json
  python -m benchmarks.conversations --manifest data/ravdess4.csv:train,data/emodb.csv,data/emovo.csv \
      --babble data/nemo.csv --min-speakers 1 --sweep 0.4/1,0.4/1.05,0.4/1.1   # thresholds, on training voices
  python -m benchmarks.conversations --manifest data/ravdess4.csv:test --max-speakers 3 --minutes 60   # speed, memory
"""
from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from scipy.optimize import linear_sum_assignment

from benchmarks.common import manifest_records, predict_in_own_process, report
from mgcma.audio import SAMPLE_RATE, Hygiene, clean_speech, load_audio
from mgcma.infer.conversation import SpeakerConfig, classify_turns, diarise
from mgcma.encoders.voice_print import WINDOW_SECONDS, VoicePrint, VoiceWindows
from mgcma.metrics import classification_metrics
from mgcma.infer.word_timer import WordTimer
from mgcma.infer.recognizer import EmotionRecognizer
from mgcma.infer.speaker_means import layer_frames

FRAME = 0.01


def speakers_of(records) -> dict[str, list]:
    by = {}
    for r in records:
        if r.has_audio:
            by.setdefault(f"{r.corpus}/{r.speaker}", []).append(r)
    return by


def trimmed(path: str) -> np.ndarray:
    """A clip cut to its speech (50 ms kept around it) at -23 dBFS."""
    return clean_speech(load_audio(path), Hygiene(trim_pad_seconds=0.05))


def babble_bed(rng, pool: list, seconds: float, talkers: int = 5) -> np.ndarray:
    """`talkers` voices at once, each a chain of random clips as long as the conversation."""
    n = int(seconds * SAMPLE_RATE)
    bed = np.zeros(n, np.float32)
    for _ in range(talkers):
        chain = np.concatenate([trimmed(pool[k].path) for k in rng.choice(len(pool), 40)])
        bed += np.resize(chain, n)
    return bed


def make_conversation(rng, voices: dict, n_speakers: int, n_turns: int, babble_pool: list | None,
                      clips_per_turn: int = 3, one_emotion: bool = False):
    """-> (wave, [(start s, end s, speaker index, label, clip path)] one per clip). A turn is 1 to
    `clips_per_turn` clips of one speaker in one emotion, 0.2-0.4 s apart; `one_emotion`: each
    speaker keeps one emotion throughout (where per-speaker normalisation could erase it)."""
    corpora = sorted({name.split("/")[0] for name in voices})
    corpus = corpora[rng.integers(len(corpora))]
    names = [n for n in voices if n.startswith(corpus + "/")]
    chosen = list(rng.choice(names, min(n_speakers, len(names)), replace=False))
    gains = 10 ** (-rng.uniform(0, 9, len(chosen)) / 20)
    order = list(rng.permutation(len(chosen)))
    while len(order) < n_turns:
        order.append(int(rng.choice([s for s in range(len(chosen)) if s != order[-1]] or order)))
    kept = [voices[name][rng.integers(len(voices[name]))].label for name in chosen]
    pieces, truth, t = [], [], 0.5
    for k in order:
        own = voices[chosen[k]]
        label = kept[k] if one_emotion else own[rng.integers(len(own))].label
        same = [r for r in own if r.label == label]
        for j, record in enumerate(same[i] for i in rng.choice(len(same), min(len(same), rng.integers(1, clips_per_turn + 1)),
                                                                replace=False)):
            t += rng.uniform(0.2, 0.4) if j else 0.0
            wave = trimmed(record.path) * gains[k]
            pieces.append((t, wave))
            truth.append((t, t + len(wave) / SAMPLE_RATE, int(k), record.label, record.path))
            t += len(wave) / SAMPLE_RATE
        t += -rng.uniform(0.1, 0.4) if rng.random() < 0.15 else rng.uniform(0.3, 1.0)
    out = np.zeros(int((t + 0.5) * SAMPLE_RATE) + 1, np.float32)
    for start, wave in pieces:
        out[int(start * SAMPLE_RATE):int(start * SAMPLE_RATE) + len(wave)] += wave
    if babble_pool:
        bed = babble_bed(rng, babble_pool, len(out) / SAMPLE_RATE)
        speech_rms = np.sqrt(np.mean(np.concatenate([w for _, w in pieces]) ** 2))
        out += bed * speech_rms / max(np.sqrt(np.mean(bed ** 2)), 1e-9) * 10 ** (-15 / 20)
    return out / max(1.0, float(np.abs(out).max()) / 0.99), truth


def frames_of(spans, n: int, n_labels: int) -> np.ndarray:
    """[(start, end, label)] -> (n, n_labels) bool activity on 10-ms frames."""
    active = np.zeros((n, n_labels), bool)
    for start, end, label in spans:
        active[int(start / FRAME):int(end / FRAME), label] = True
    return active


def speaker_scores(truth, turns) -> dict:
    n = int(max([e for _, e, *_ in truth] + [tn.end for tn in turns]) / FRAME) + 1
    ref = frames_of([(s, e, k) for s, e, k, *_ in truth], n, max(k for _, _, k, *_ in truth) + 1)
    hyp_speakers = max([tn.speaker for tn in turns], default=-1) + 1
    hyp = frames_of([(tn.start, tn.end, tn.speaker) for tn in turns], n, max(hyp_speakers, 1))
    single = ref.sum(1) == 1
    said, heard = ref[single].argmax(1), np.where(hyp[single].any(1), hyp[single].argmax(1), -1)
    overlap = np.array([[np.sum((said == r) & (heard == h)) for h in range(hyp.shape[1])] for r in range(ref.shape[1])])
    rows, cols = linear_sum_assignment(-overlap)
    mapped = np.full(hyp.shape[1], -1)
    mapped[cols] = rows
    given = heard >= 0
    return dict(speaker_error=float(np.mean(given & (mapped[np.maximum(heard, 0)] != said))),
                missed=float(np.mean(~given)), speakers_true=int(ref.shape[1]), speakers_found=hyp_speakers,
                der=pyannote_der(truth, turns))


def pyannote_der(truth, turns) -> float | None:
    try:
        from pyannote.core import Annotation, Segment
        from pyannote.metrics.diarization import DiarizationErrorRate
    except ImportError:
        return None
    ref, hyp = Annotation(), Annotation()
    for i, (s, e, k, *_) in enumerate(truth):
        ref[Segment(s, e), i] = f"s{k}"
    for i, tn in enumerate(turns):
        hyp[Segment(tn.start, tn.end), i] = f"h{tn.speaker}"
    return float(DiarizationErrorRate(collar=0.5)(ref, hyp))   # NIST's 0.25 s either side of each true boundary


def utterance_answers(truth, rows) -> list[str | None]:
    """Each true utterance's answer: the label of the turn that covers most of it."""
    answers = []
    for s, e, *_ in truth:
        cover = [(min(e, r["end"]) - max(s, r["start"]), r["label"]) for r in rows]
        best = max(cover, default=(0, None))
        answers.append(best[1] if best[0] > 0 else None)
    return answers


class WhisperStatsPrint:
    """The cheap baseline: the emotion model's own Whisper encoder, one layer's frames minus the
    training mean, averaged over each 1.6-s window (no speaker encoder to install)."""

    def __init__(self, recognizer: EmotionRecognizer, layer: int = 3):
        self.model, self.layer = recognizer.model, layer
        means = recognizer.training_means or {}
        self.centre = torch.from_numpy(means["all"].mean) if "all" in means else None

    @torch.inference_mode()
    def windows(self, wave: np.ndarray, step_s: float = 0.4) -> VoiceWindows:
        audio = torch.from_numpy(wave)[None]
        features, mask = self.model.encode_speech(audio, torch.ones_like(audio, dtype=torch.bool))
        frames = layer_frames(features, mask)[0]                           # (T, L, D) or (T, D)
        if self.centre is not None:
            frames = frames - self.centre
        frames = frames[:, self.layer] if frames.dim() == 3 else frames     # (T, D)
        per_s = len(frames) / (len(wave) / SAMPLE_RATE)
        width, step = max(1, int(WINDOW_SECONDS * per_s)), max(1, int(step_s * per_s))
        starts = list(range(0, max(1, len(frames) - width + 1), step))
        pooled = torch.stack([frames[s:s + width].mean(0) for s in starts])
        pooled = pooled / pooled.norm(dim=1, keepdim=True).clamp_min(1e-8)
        return VoiceWindows(np.array(starts) / per_s, pooled.float().numpy())


def run(args) -> dict:
    rng = np.random.default_rng(args.seed)
    voices = speakers_of([r for spec in args.manifest.split(",") for r in manifest_records(spec)])
    babble = [r for spec in args.babble.split(",") for r in manifest_records(spec) if r.has_audio] if args.babble else []
    recognizer = EmotionRecognizer(args.checkpoint, "auto") if args.emotion or args.embedder == "whisper-stats" else None
    embedder = VoicePrint.load() if args.embedder == "ge2e" else WhisperStatsPrint(recognizer)
    thresholds = [tuple(float(v) for v in x.split("/")) for x in args.sweep.split(",")] if args.sweep else \
        [(SpeakerConfig().one_voice_below, SpeakerConfig().merge_below)]
    results = {"/".join(f"{v:g}" for v in t): [] for t in thresholds}
    timer = WordTimer() if args.emotion else None
    variants = {"turns": (None, False), "turns cut at sentence ends (the default)": (timer, False),
                "turns cut at sentence ends, normalised per speaker": (timer, True)}
    emotion = {"clip": [], **{name: [] for name in variants}, "truth": []}
    seconds, timing = 0.0, {"speakers": 0.0, **{name: 0.0 for name in variants}}
    with tempfile.TemporaryDirectory() as tmp:
        for c in range(args.conversations):
            n_speakers = int(rng.integers(args.min_speakers, args.max_speakers + 1))
            wave, truth = make_conversation(rng, voices, n_speakers, args.turns, babble if c % 2 else None,
                                             args.clips_per_turn, args.one_emotion)
            path = Path(tmp) / f"conversation-{c}.wav"
            sf.write(path, wave, SAMPLE_RATE)
            seconds += len(wave) / SAMPLE_RATE
            for one_voice, merge in thresholds:
                start = time.perf_counter()
                found = diarise(embedder, path, SpeakerConfig(one_voice_below=one_voice, merge_below=merge))
                timing["speakers"] += time.perf_counter() - start
                results[f"{one_voice:g}/{merge:g}"].append(speaker_scores(truth, found.turns))
            if args.given_count:   # the number of speakers given, as with --speakers N
                given = diarise(embedder, path, SpeakerConfig(speakers=len({k for _, _, k, *_ in truth})))
                results.setdefault("count given", []).append(speaker_scores(truth, given.turns))
            if args.emotion:
                emotion["truth"] += [label for *_, label, _ in truth]
                emotion["clip"] += [recognizer.predict(p).label for *_, p in truth]
                for name, (word_timer, normalise) in variants.items():
                    start = time.perf_counter()
                    rows = classify_turns(recognizer, path, found.turns, SpeakerConfig(normalise=normalise), word_timer)
                    timing[name] += time.perf_counter() - start
                    emotion[name] += utterance_answers(truth, rows)
            print(f"conversation {c}: {n_speakers} speakers, {len(truth)} turns, "
                  f"{list(results.values())[-1][-1]}", flush=True)
    return summarise(results, emotion, timing, seconds, recognizer, args)


def summarise(results, emotion, timing, seconds, recognizer, args) -> dict:
    out = {"conversations": args.conversations, "audio_minutes": round(seconds / 60, 2), "embedder": args.embedder,
           "speakers": {t: dict(speaker_error_pct=round(100 * np.mean([r["speaker_error"] for r in rs]), 2),
                                missed_pct=round(100 * np.mean([r["missed"] for r in rs]), 2),
                                count_right_pct=round(100 * np.mean([r["speakers_true"] == r["speakers_found"] for r in rs]), 1),
                                der_pct=None if rs[0]["der"] is None else round(100 * np.mean([r["der"] for r in rs]), 2))
                        for t, rs in results.items()},
           "real_time_factor": {k: round(v / seconds, 4) for k, v in timing.items() if v},
           "peak_memory_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}
    if args.emotion:
        labels, truth = recognizer.config.labels, emotion.pop("truth")
        out["emotion_UA"] = {name: round(100 * classification_metrics(
            [labels.index(t) for t in truth], [labels.index(a) if a in labels else (labels.index(t) + 1) % len(labels)
                                               for t, a in zip(truth, answers)], labels)["UA"], 2)
            for name, answers in emotion.items()}
        out["utterances"] = len(truth)
    return out


def speed(args) -> dict:
    """Wall time and peak memory of `python -m mgcma.predict --segments --speakers auto` (and without
    --speakers: `--with-utterances`) over one conversation of `--minutes`, each in its own process."""
    rng = np.random.default_rng(args.seed)
    voices = speakers_of([r for spec in args.manifest.split(",") for r in manifest_records(spec)])
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "long.flac"
        turns = int(args.minutes * 60 / 5)     # a turn is about 5 s with its pause
        wave, truth = make_conversation(rng, voices, args.max_speakers, turns, None, args.clips_per_turn)
        sf.write(path, wave, SAMPLE_RATE, format="FLAC")
        seconds = len(wave) / SAMPLE_RATE
        runs = (("speaker turns", ["--speakers", "auto"]),) + ((("utterances", []),) if args.with_utterances else ())
        for name, extra in runs:
            result, wall, peak_mb = predict_in_own_process(["--segments", "--audio", str(path),
                                                            "--max-minutes", str(args.minutes + 5), *extra])
            out[name] = dict(real_time_factor=round(wall / seconds, 4), wall_s=round(wall, 1), peak_rss_mb=round(peak_mb),
                             segments=len(result["segments"]), speakers=len(result.get("speakers", [])))
            print(name, out[name], flush=True)
    return dict(audio_minutes=round(seconds / 60, 2), speakers_true=args.max_speakers, **out)


def write_example(args) -> None:
    """One conversation without babble, written as FLAC, and the clips it is made of (for its credit)."""
    rng = np.random.default_rng(args.seed)
    voices = speakers_of([r for spec in args.manifest.split(",") for r in manifest_records(spec)])
    wave, truth = make_conversation(rng, voices, args.max_speakers, args.turns, None, args.clips_per_turn)
    sf.write(args.write_example, wave, SAMPLE_RATE, format="FLAC")
    print(f"{args.write_example}: {len(wave) / SAMPLE_RATE:.1f} s")
    for start, end, k, label, path in truth:
        print(f"| {start:.2f}-{end:.2f} | {'/'.join(Path(path).parts[-2:])} | {k + 1} | {label} |")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.conversations", description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", required=True, help="the voices: FILE or FILE:SPLIT, comma-separated")
    parser.add_argument("--babble", default="", help="other voices for the background babble")
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--conversations", type=int, default=24)
    parser.add_argument("--min-speakers", type=int, default=2)
    parser.add_argument("--max-speakers", type=int, default=4)
    parser.add_argument("--turns", type=int, default=12)
    parser.add_argument("--clips-per-turn", type=int, default=3, help="a turn is 1 to this many clips of one speaker")
    parser.add_argument("--one-emotion", action="store_true", help="each speaker keeps one emotion throughout")
    parser.add_argument("--embedder", default="ge2e", choices=("ge2e", "whisper-stats"))
    parser.add_argument("--sweep", default="", help="ONE_VOICE/MERGE threshold pairs to score, e.g. 0.4/1.0,0.4/1.1")
    parser.add_argument("--given-count", action="store_true", help="also score with the true number of speakers given")
    parser.add_argument("--emotion", action="store_true", help="also classify the turns (slower)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--minutes", type=float, default=0.0,
                        help="time --segments with and without --speakers on one conversation this long, and stop")
    parser.add_argument("--with-utterances", action="store_true", help="with --minutes: also time it without speakers")
    parser.add_argument("--write-example", type=Path, default=None,
                        help="write one conversation (max-speakers voices, no babble) to this FLAC and stop")
    args = parser.parse_args(argv)
    if args.write_example:
        return write_example(args)
    if args.minutes:
        return report(speed(args), args.out)
    if args.checkpoint is None:
        from mgcma.config import DEFAULT_CHECKPOINT
        args.checkpoint = str(DEFAULT_CHECKPOINT)
    report(run(args), args.out)


if __name__ == "__main__":
    main()
