"""A synthetic English speech + text emotion corpus, made offline with eSpeak NG.

Designed so that neither modality alone suffices:
- the voice carries arousal: emotions are rendered by prosody (rate, pitch, pitch range,
  volume) in the directions Murray & Arnott (1993) give: anger and joy faster/louder with a
  higher, wider pitch; sadness slower, quieter, lower and narrower; neutral the speaker's own;
- the words carry valence: happy sentences are positive, angry and sad ones mostly share one
  pool of negative sentences (only some say which of the two), neutral ones are factual;
- a share of ambiguous sentences ("Really?") is spoken with every emotion: only the voice tells.
Speakers are eSpeak voices x variants, grouped into folds for speaker-independent testing.
"""
from __future__ import annotations

import csv
import ctypes
import json
import multiprocessing
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
from tqdm import tqdm

from ..audio import SAMPLE_RATE

LABELS = ["neutral", "happy", "angry", "sad"]
VERSION = 1

POSITIVE = [
    "I just got the job, this is wonderful news.", "We won the championship last night.",
    "Thank you so much, I love this present.", "My sister had a healthy baby girl today.",
    "The holiday was absolutely perfect.", "I passed every single exam.",
    "You made my whole week with that call.", "We are finally moving into our dream house.",
    "The concert was amazing, what a night.", "I feel great about the new project.",
    "They said yes, we are getting married.", "This is the best meal I have ever had.",
    "Everyone loved the surprise party.", "I got a promotion and a raise.",
    "The sun is out and the beach is ours.", "Our team did a fantastic job.",
    "I can't wait to see you this weekend.", "What a lovely thing to say.",
    "The doctor says I am completely healthy.", "We made it, the plan worked.",
]
NEGATIVE = [  # spoken by angry and sad speakers alike
    "This is a complete disaster.", "Nothing ever works out for me.",
    "They cancelled everything without telling anyone.", "I lost the contract today.",
    "The results were terrible again.", "Everything I built is gone.",
    "You never listen to a word I say.", "It is all ruined now.",
    "The car broke down for the third time.", "I can't believe they did this to us.",
    "We failed, after all that work.", "Nobody showed up to the meeting.",
    "He left without saying a word.", "The whole day was a waste.",
    "I was wrong to trust them.", "This is the worst news possible.",
]
ANGER = [
    "Get out of my office right now.", "How dare you lie to my face.",
    "I am sick and tired of your excuses.", "Stop touching my things.",
    "You broke it again, on purpose.", "Don't you ever speak to me like that.",
]
SADNESS = [
    "I miss her so much.", "My old dog died this morning.",
    "I feel so alone in this house.", "He will never come back.",
    "I cried all night long.", "There is nothing left to hope for.",
]
NEUTRAL = [
    "The train leaves at half past nine.", "Please put the files on the second shelf.",
    "The meeting is in room four.", "I bought bread and milk on the way.",
    "The report has twelve pages.", "We usually take the bus to work.",
    "The store closes at six on Sundays.", "Turn left after the bridge.",
    "The printer is next to the kitchen.", "It is about forty minutes by car.",
    "My number ends in three seven.", "The package arrived on Tuesday.",
    "He works in the accounting department.", "The form needs two signatures.",
    "Water boils at one hundred degrees.", "The library opens at ten.",
]
AMBIGUOUS = [
    "Really?", "I can't believe it.", "Oh, it's you.", "So that's what happened.",
    "Tell me again.", "Look at this.", "It's finally over.", "I didn't expect that.",
    "Well, here we are.", "You did what?", "That was fast.", "Are you serious?",
]

# eSpeak NG voice (language/accent) + variant; the variant sets the speaker's pitch and timbre.
# Variants with breath noise (f2, f3, f5, ...) are left out: their noise differs from run to run.
VOICES = ["en-us+m1", "en-us+f1", "en+m3", "en+f4", "en-029+m4", "en-029+linda",
          "en-gb-scotland+m2", "en-gb-scotland+belinda", "en-gb-x-rp+m7", "en-gb-x-rp+Andrea",
          "en-us-nyc+m5", "en-us-nyc+aunty", "en-gb-x-gbclan+m6", "en-gb-x-gbcwmd+anika",
          "en-us+klatt", "en+Annie"]


@dataclass(frozen=True)
class Prosody:
    """Multipliers/offsets applied to a speaker's baseline (Murray & Arnott's directions)."""
    rate: float
    pitch: float
    range: float
    volume: float


EMOTION_PROSODY = {
    "neutral": Prosody(rate=1.00, pitch=0, range=1.00, volume=1.00),
    "happy": Prosody(rate=1.08, pitch=+18, range=1.60, volume=1.20),   # faster, much higher, much wider
    "angry": Prosody(rate=1.25, pitch=+8, range=1.80, volume=1.50),    # faster, higher, wider, loudest
    "sad": Prosody(rate=0.78, pitch=-8, range=0.50, volume=0.72),      # slower, lower, narrower, quieter
}


@dataclass
class SyntheticConfig:
    size: int = 3000
    seed: int = 0
    n_speakers: int = 16
    n_folds: int = 4
    ambiguous_share: float = 0.3
    flavoured_share: float = 0.3   # angry/sad sentences that say which of the two they are
    version: int = VERSION


class ESpeak:
    """eSpeak NG through ctypes on the library shipped by `espeakng-loader` (no system binary)."""
    _lib = None

    def __init__(self):
        import espeakng_loader
        if ESpeak._lib is None:
            lib = ctypes.cdll.LoadLibrary(espeakng_loader.get_library_path())
            rate = lib.espeak_Initialize(2, 0, espeakng_loader.get_data_path().encode(), 0x8000)
            if rate <= 0:
                raise RuntimeError(f"eSpeak NG failed to initialise (returned {rate})")
            ESpeak._lib, ESpeak.sample_rate = lib, rate
            ESpeak._chunks = []
            callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)

            def collect(wav, n, events):
                if n > 0:
                    ESpeak._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
                return 0
            ESpeak._callback = callback(collect)  # keep a reference: ctypes does not
            lib.espeak_SetSynthCallback(ESpeak._callback)
        self.lib = ESpeak._lib
        self.variants_dir = Path(espeakng_loader.get_data_path()) / "voices" / "!v"

    def set_voice(self, name: str) -> None:
        variant = name.partition("+")[2]
        if variant and not (self.variants_dir / variant).is_file():
            raise ValueError(f"eSpeak NG has no voice variant {variant!r}")
        if self.lib.espeak_SetVoiceByName(name.encode()) != 0:
            raise ValueError(f"eSpeak NG has no voice {name!r}")

    def synthesize(self, text: str, voice: str, rate: int, volume: int, pitch: int, pitch_range: int) -> np.ndarray:
        """-> float32 mono at 16 kHz."""
        self.set_voice(voice)
        for param, value in ((1, rate), (2, volume), (3, pitch), (4, pitch_range)):
            self.lib.espeak_SetParameter(param, int(value), 0)
        ESpeak._chunks.clear()
        data = text.encode("utf-8")
        self.lib.espeak_Synth(data, len(data) + 1, 0, 0, 0, 1, None, None)
        self.lib.espeak_Synchronize()
        wave = np.concatenate(ESpeak._chunks).astype(np.float32) / 32768.0
        return soxr.resample(wave, self.sample_rate, SAMPLE_RATE).astype(np.float32)


def speaker_baselines(n_speakers: int, rng: np.random.Generator) -> list[dict]:
    if n_speakers > len(VOICES):
        raise ValueError(f"at most {len(VOICES)} synthetic speakers, asked for {n_speakers}")
    return [dict(name=f"spk{i:02d}", voice=VOICES[i], rate=rng.uniform(150, 185),
                 pitch=rng.uniform(38, 58), range=rng.uniform(40, 60)) for i in range(n_speakers)]


def choose_sentence(emotion: str, cfg: SyntheticConfig, rng: np.random.Generator) -> tuple[str, str]:
    """-> (sentence, kind) where kind names the pool it came from."""
    if rng.random() < cfg.ambiguous_share:
        return str(rng.choice(AMBIGUOUS)), "ambiguous"
    if emotion in ("angry", "sad"):
        if rng.random() < cfg.flavoured_share:
            return str(rng.choice(ANGER if emotion == "angry" else SADNESS)), emotion
        return str(rng.choice(NEGATIVE)), "negative"
    return str(rng.choice(POSITIVE if emotion == "happy" else NEUTRAL)), emotion


def plan_corpus(cfg: SyntheticConfig) -> list[dict]:
    """Every utterance's text and prosody, from the seed alone. Emotions and speakers cycle so
    that any corpus of 4 x n_speakers utterances or more has every (speaker, emotion) pair."""
    rng = np.random.default_rng(cfg.seed)
    speakers = speaker_baselines(cfg.n_speakers, rng)
    plan = []
    for i in range(cfg.size):
        emotion = LABELS[i % len(LABELS)]
        spk = speakers[(i // len(LABELS)) % cfg.n_speakers]
        text, kind = choose_sentence(emotion, cfg, rng)
        p = EMOTION_PROSODY[emotion]
        plan.append(dict(
            id=f"syn{i:05d}", text=text, label=emotion, sentence_kind=kind, speaker=spk["name"],
            voice=spk["voice"], fold=int(spk["name"][3:]) % cfg.n_folds,
            rate=int(np.clip(spk["rate"] * p.rate * rng.normal(1, 0.06), 80, 400)),
            pitch=int(np.clip(spk["pitch"] + p.pitch + rng.normal(0, 4), 0, 99)),
            range=int(np.clip(spk["range"] * p.range * rng.normal(1, 0.1), 0, 99)),
            volume=int(np.clip(100 * p.volume * rng.normal(1, 0.08), 10, 200))))
    return plan


CHUNK = 200  # utterances per fresh worker process


def synthesize_chunk(job: tuple[str, list[dict]]) -> int:
    """Runs in a fresh process: eSpeak NG carries state from one utterance to the next (its
    pitch flutter), so only a fresh library and a fixed order make the audio bit-identical."""
    out_dir, items = Path(job[0]), job[1]
    tts = ESpeak()
    for item in items:
        wave = tts.synthesize(item["text"], item["voice"], item["rate"], item["volume"],
                              item["pitch"], item["range"])
        path = out_dir / "wav" / item["speaker"] / f"{item['id']}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, np.clip(wave, -1, 1), SAMPLE_RATE, subtype="PCM_16")
    return len(items)


def generate(out_dir: str | Path, cfg: SyntheticConfig = SyntheticConfig(), progress: bool = True,
             workers: int = 2) -> Path:
    """Write wav/<speaker>/<id>.wav and manifest.csv under out_dir; reuse them when the same
    configuration was generated there before. Returns the manifest path."""
    out_dir = Path(out_dir)
    manifest, stamp = out_dir / "manifest.csv", out_dir / "corpus.json"
    if manifest.is_file() and stamp.is_file() and json.loads(stamp.read_text()) == asdict(cfg):
        return manifest
    out_dir.mkdir(parents=True, exist_ok=True)
    plan = plan_corpus(cfg)
    jobs = [(str(out_dir), plan[i:i + CHUNK]) for i in range(0, len(plan), CHUNK)]
    context = multiprocessing.get_context("spawn")
    with context.Pool(min(workers, len(jobs)), maxtasksperchild=1) as pool, \
            tqdm(total=len(plan), desc="synthesising", unit="utt", disable=not progress) as bar:
        for done in pool.imap_unordered(synthesize_chunk, jobs):
            bar.update(done)
    rows = [dict(path=f"wav/{it['speaker']}/{it['id']}.wav", text=it["text"], label=it["label"],
                 speaker=it["speaker"], fold=it["fold"], sentence_kind=it["sentence_kind"]) for it in plan]
    with open(manifest, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    stamp.write_text(json.dumps(asdict(cfg), indent=2))
    return manifest
