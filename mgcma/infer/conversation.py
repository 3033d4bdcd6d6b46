"""Who spoke, and how they felt: a recording of several people as speaker turns, each with its emotion.

Three passes, each with bounded memory for an hour of audio:
1. the voice activity detector's utterances (segments.py), each heard as 1.6-s windows by the
   speaker encoder (encoders/voice_print.py): only the windows' embeddings are kept;
2. the windows clustered into speakers (average linkage on cosine distance, after subtracting the
   recording's mean; the number of speakers given, or clusters joined while closer than `merge_below`),
   an utterance cut where its windows change speaker;
3. each turn read again from the file and classified (in batches, the words by the recogniser's ASR);
   a turn that holds several sentences is cut at their ends by Whisper's word times.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage

from ..audio import SAMPLE_RATE, AudioError
from ..encoders.voice_print import WINDOW_SECONDS, VoicePrint
from .segments import SegmentConfig, read_span, speech_segments
from .speaker_means import SpeechMean


@dataclass(frozen=True)
class SpeakerConfig:
    speakers: int | None = None      # None: estimated from the recording
    max_speakers: int = 8
    one_voice_below: float = 0.40    # all windows this close (cosine distance, average linkage): one voice
    merge_below: float = 1.05        # centred cosine distance under which two clusters are one voice
    step_s: float = 0.4              # one speaker-encoder window every this many seconds
    smooth: int = 5                  # windows in the majority filter over each utterance's speaker labels
    min_turn_s: float = 1.0          # a shorter stretch of another speaker inside an utterance is not a turn
    min_share: float = 0.03          # a "speaker" with less of the speech time is merged into the nearest one
    max_cluster_windows: int = 3000  # more windows are clustered from a sample, the rest go to the nearest speaker
    sentences_above_s: float = 6.0   # a longer turn is cut at its sentence ends (Whisper's word times)
    normalise: bool = False          # hear each voice relative to the speaker's own mean (measured in docs)


@dataclass
class Turn:
    start: float
    end: float
    speaker: int                      # 0-based; shown as "Speaker {speaker + 1}"


@dataclass
class Diarisation:
    turns: list[Turn]
    speakers: int
    notes: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------- pass 1 and 2: who
def voice_windows(voice_print: VoicePrint, path, cfg: SpeakerConfig, segment_cfg: SegmentConfig, progress=None):
    """-> [(start s, end s)] of the utterances, and (N,) utterance index, (N,) time, (N, 256) of their windows.
    progress(seconds done) after each utterance."""
    spans, owner, times, embeddings = [], [], [], []
    for k, (start, end, wave) in enumerate(speech_segments(path, segment_cfg)):
        if progress is not None:
            progress(end)
        heard = voice_print.windows(wave, cfg.step_s)
        centres = np.minimum(start + heard.starts + WINDOW_SECONDS / 2, end)
        spans.append((start, end))
        owner += [k] * len(centres)
        times.append(centres)
        embeddings.append(heard.embeddings)
    if not spans:
        return [], np.zeros(0, int), np.zeros(0), np.zeros((0, 256), np.float32)
    return spans, np.array(owner), np.concatenate(times), np.concatenate(embeddings)


def cluster_voices(embeddings: np.ndarray, cfg: SpeakerConfig, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """(N, D) unit embeddings -> (N,) speaker of each (0 = the one heard first), and notes.
    A recording whose windows all lie within `one_voice_below` of each other (average linkage) is one
    voice. Otherwise the windows are centred on the recording's mean first: what all its voices share
    (the room, the microphone, the language) is not what tells them apart."""
    notes: list[str] = []
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(len(embeddings), cfg.max_cluster_windows, replace=False)) \
        if len(embeddings) > cfg.max_cluster_windows else np.arange(len(embeddings))
    if len(sample) < 3 or cfg.speakers == 1:
        return np.zeros(len(embeddings), int), notes
    one_voice = linkage(embeddings[sample], method="average", metric="cosine")[-1, 2] < cfg.one_voice_below
    centred = unit(embeddings - embeddings[sample].mean(0))
    tree = linkage(centred[sample], method="average", metric="cosine")
    found = 1 if one_voice else len(np.unique(fcluster(tree, t=cfg.merge_below, criterion="distance")))
    if cfg.speakers is not None and cfg.speakers > found:
        notes.append(f"asked for {cfg.speakers} speakers; the voices heard suggest {found}: "
                     f"{cfg.speakers} kept, but some may be one person")
    if cfg.speakers is None and one_voice:
        return np.zeros(len(embeddings), int), notes
    labels = fcluster(tree, t=cfg.speakers or cfg.merge_below, criterion="maxclust" if cfg.speakers else "distance")
    centroids = np.stack([centred[sample][labels == c].mean(0) for c in np.unique(labels)])
    assigned = nearest(centred, centroids)
    while cfg.speakers is None and len(centroids) > 1:   # a voice with too little speech is a stray, not a speaker
        shares = np.bincount(assigned, minlength=len(centroids)) / len(assigned)
        if shares.min() >= cfg.min_share:
            break
        centroids = np.delete(centroids, shares.argmin(), axis=0)
        assigned = nearest(centred, centroids)
    if len(centroids) > cfg.max_speakers:
        notes.append(f"more than {cfg.max_speakers} voices were heard: the closest were joined "
                     f"(pass --speakers N to choose the number)")
        joined = fcluster(linkage(centroids, "average", "cosine"), t=cfg.max_speakers, criterion="maxclust")
        centroids = np.stack([centroids[joined == c].mean(0) for c in np.unique(joined)])
        assigned = nearest(centred, centroids)
    first_heard = {c: i for i, c in enumerate(dict.fromkeys(assigned.tolist()))}
    return np.array([first_heard[c] for c in assigned]), notes


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True).clip(1e-8)


def nearest(embeddings: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    return (embeddings @ unit(centroids).T).argmax(axis=1)


def majority(labels: np.ndarray, width: int) -> np.ndarray:
    """Each label replaced by the most common one in a window of `width` around it."""
    half = width // 2
    return np.array([np.bincount(labels[max(0, i - half):i + half + 1]).argmax() for i in range(len(labels))])


def cut_utterance(span: tuple[float, float], times: np.ndarray, labels: np.ndarray,
                  cfg: SpeakerConfig) -> list[Turn]:
    """One utterance -> its turns: cut halfway between windows whose (smoothed) speakers differ;
    a stretch shorter than `min_turn_s` joins the turn before it (or after it, at the start)."""
    start, end = span
    labels = majority(labels, cfg.smooth) if len(labels) > 2 else labels
    turns = [Turn(start, end, int(labels[0]))]
    for i in range(1, len(labels)):
        if labels[i] != turns[-1].speaker:
            cut = float((times[i - 1] + times[i]) / 2)
            turns[-1].end = cut
            turns.append(Turn(cut, end, int(labels[i])))
    merged: list[Turn] = []
    for turn in turns:
        if merged and (turn.end - turn.start < cfg.min_turn_s or merged[-1].speaker == turn.speaker):
            merged[-1].end = turn.end
        elif merged and merged[-1].end - merged[-1].start < cfg.min_turn_s:
            turn.start = merged[-1].start
            merged[-1] = turn
        else:
            merged.append(turn)
    return merged


def diarise(voice_print: VoicePrint, path, cfg: SpeakerConfig = SpeakerConfig(),
            segment_cfg: SegmentConfig = SegmentConfig(), progress=None) -> Diarisation:
    """The recording's speaker turns, in order; progress(seconds done) as utterances are heard."""
    if cfg.speakers is not None and not 1 <= cfg.speakers <= cfg.max_speakers:
        raise ValueError(f"--speakers must be auto or 1 to {cfg.max_speakers}; got {cfg.speakers}")
    spans, owner, times, embeddings = voice_windows(voice_print, path, cfg, segment_cfg, progress)
    if not spans:
        return Diarisation([], 0, ["no speech was found in this recording"])
    labels, notes = cluster_voices(embeddings, cfg)
    turns = [t for k, span in enumerate(spans) for t in cut_utterance(span, times[owner == k], labels[owner == k], cfg)]
    return Diarisation(turns, int(labels.max()) + 1, notes)


# --------------------------------------------------------------------------- pass 3: how they felt
SENTENCE_ENDS = (".", "!", "?")


def sentence_pieces(words, start: float, end: float, min_s: float = 1.0) -> list[tuple[float, float, str]]:
    """Timed words [(word, start, end)] of a turn (times from the turn's start) -> [(start, end, text)]
    of its sentences, cut halfway between a sentence's last word and the next one's first; a cut that
    would leave a piece under `min_s` seconds is not made."""
    pieces, first, since = [], 0, 0.0
    for i, (word, _, word_end) in enumerate(words[:-1]):
        cut = (word_end + words[i + 1][1]) / 2
        if word.endswith(SENTENCE_ENDS) and cut - since >= min_s and (end - start) - cut >= min_s:
            pieces.append((start + since, start + cut, " ".join(w for w, _, _ in words[first:i + 1])))
            first, since = i + 1, cut
    pieces.append((start + since, end, " ".join(w for w, _, _ in words[first:])))
    return pieces


def speaker_references(recognizer, path, turns: list[Turn]) -> dict[int, SpeechMean]:
    """Each speaker's mean speech features over all their turns, the reference their voice is heard against."""
    means: dict[int, SpeechMean] = {}
    for turn in turns:
        try:
            recognizer.add_reference(means.setdefault(turn.speaker, SpeechMean()),
                                     (SAMPLE_RATE, read_span(path, turn.start, turn.end)))
        except AudioError:   # too short or silent after clean-up: it adds nothing to the mean
            continue
    return {speaker: mean for speaker, mean in means.items() if mean.frames}


def turn_row(turn: Turn, start: float, end: float, pred) -> dict:
    return dict(start=round(start, 2), end=round(end, 2), speaker=f"Speaker {turn.speaker + 1}", text=pred.transcript,
                label=pred.label, confidence=round(max(pred.probabilities.values()), 4),
                probabilities=pred.probabilities, answers=pred.answers, not_sure=pred.not_sure)


def classify_turns(recognizer, path, turns: list[Turn], cfg: SpeakerConfig = SpeakerConfig(), word_timer=None,
                   batch_size: int = 8, progress=None) -> list[dict]:
    """[{start, end, speaker, text, label, confidence, probabilities, answers, not_sure}] per turn (or
    sentence), in order. Turns heard without a reference and not cut are classified in batches."""
    references = speaker_references(recognizer, path, turns) if cfg.normalise else {}
    rows, batch = [], []

    def flush():
        for (turn, start, end, _), pred in zip(batch, recognizer.predict_many([(SAMPLE_RATE, w) for *_, w in batch])):
            if not isinstance(pred, AudioError):   # a blip too short or silent after clean-up
                rows.append(turn_row(turn, start, end, pred))
        batch.clear()

    for turn in turns:
        wave = read_span(path, turn.start, turn.end)
        pieces = [(turn.start, turn.end, None)]
        if word_timer is not None and turn.end - turn.start > cfg.sentences_above_s:
            pieces = sentence_pieces(word_timer.transcribe(wave)[1], turn.start, turn.end)
        for start, end, text in pieces:
            piece = wave[int((start - turn.start) * SAMPLE_RATE):int((end - turn.start) * SAMPLE_RATE)]
            if text is None and not references:
                batch.append((turn, start, end, piece))
                continue
            try:
                pred = recognizer.predict((SAMPLE_RATE, piece), text or None, reference=references.get(turn.speaker))
            except AudioError:
                continue
            rows.append(turn_row(turn, start, end, pred))
        if len(batch) >= batch_size:
            flush()
        if progress is not None:
            progress(turn.end)
    flush()
    return sorted(rows, key=lambda r: r["start"])


def speaker_summary(rows: list[dict], labels: list[str]) -> list[dict]:
    """Per speaker: speaking time, turns, the share of their time in each emotion, mean confidence,
    and the share of their time the model was not sure."""
    summary = []
    for speaker in dict.fromkeys(r["speaker"] for r in sorted(rows, key=lambda r: r["speaker"])):
        mine = [r for r in rows if r["speaker"] == speaker]
        seconds = np.array([r["end"] - r["start"] for r in mine])
        total = float(seconds.sum()) or 1.0
        summary.append(dict(
            speaker=speaker, seconds=round(float(seconds.sum()), 2), turns=len(mine),
            emotions={k: round(float(seconds[[r["label"] == k for r in mine]].sum()) / total, 4) for k in labels},
            mean_confidence=round(float(np.mean([r["confidence"] for r in mine])), 4),
            not_sure=round(float(seconds[[bool(r["not_sure"]) for r in mine]].sum()) / total, 4)))
    return summary


def conversation(recognizer, voice_print: VoicePrint, path, cfg: SpeakerConfig = SpeakerConfig(),
                 segment_cfg: SegmentConfig = SegmentConfig(), word_timer=None, progress=None) -> dict:
    """A recording -> {"segments": turn rows, "speakers": per-speaker summary, "notes": [...]}.
    progress(stage, seconds of the recording done) after each utterance (stage "speakers") or turn ("emotions")."""
    found = diarise(voice_print, path, cfg, segment_cfg, None if progress is None else
                    lambda done: progress("speakers", done))
    rows = classify_turns(recognizer, path, found.turns, cfg, word_timer, segment_cfg.batch,
                          None if progress is None else lambda done: progress("emotions", done))
    return dict(segments=rows, speakers=speaker_summary(rows, recognizer.config.labels), notes=found.notes)
