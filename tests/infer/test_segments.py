"""Long recordings, built at test time from the project's own synthetic clips and silences."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mgcma.audio import AudioError
from mgcma.infer.segments import SegmentConfig, speech_segments

ROOT = Path(__file__).resolve().parents[2]
CLIPS = sorted((ROOT / "app" / "examples").glob("*.wav"))


@pytest.fixture(scope="module")
def long_recording(tmp_path_factory):
    """4 utterances with 1.5 s pauses at 44.1 kHz stereo; returns (path, [(start, end)] of each utterance)."""
    parts, spans, t = [np.zeros(16000, np.float32)], [], 1.0
    for clip in CLIPS[:4]:
        wave, sr = sf.read(clip, dtype="float32")
        spans.append((t, t + len(wave) / sr))
        parts += [wave, np.zeros(24000, np.float32)]
        t += len(wave) / sr + 1.5
    import soxr
    wave = soxr.resample(np.concatenate(parts), 16000, 44100)
    path = tmp_path_factory.mktemp("long") / "long.wav"
    sf.write(path, np.stack([wave, wave], 1), 44100)
    return path, spans


def test_one_segment_per_utterance_at_the_right_times(long_recording):
    path, spans = long_recording
    found = [(a, b) for a, b, _ in speech_segments(path)]
    assert len(found) == len(spans)
    for (a, b), (ta, tb) in zip(found, spans):
        assert abs(a - ta) < 0.4 and abs(b - tb) < 0.4


def test_small_blocks_give_the_same_segments(long_recording):
    path, _ = long_recording
    whole = [(round(a, 1), round(b, 1)) for a, b, _ in speech_segments(path)]
    blocks = [(round(a, 1), round(b, 1)) for a, b, _ in speech_segments(path, SegmentConfig(block_seconds=2.5))]
    assert len(blocks) == len(whole)
    assert all(abs(a - c) <= 0.3 and abs(b - d) <= 0.3 for (a, b), (c, d) in zip(whole, blocks))


def test_utterances_classified_in_batches_answer_as_one_at_a_time(long_recording, test_checkpoint):
    from mgcma.infer.recognizer import EmotionRecognizer
    from mgcma.infer.segments import classify_segments
    recognizer = EmotionRecognizer(test_checkpoint, asr="none", device="cpu")
    done = []
    alone = classify_segments(recognizer, long_recording[0], SegmentConfig(batch=1))
    batched = classify_segments(recognizer, long_recording[0], SegmentConfig(batch=3), lambda t, total: done.append(t))
    assert len(batched) == len(alone) == len(long_recording[1])
    for a, b in zip(alone, batched):
        assert (a["start"], a["end"], a["label"]) == (b["start"], b["end"], b["label"])
        assert b["probabilities"] == pytest.approx(a["probabilities"], abs=1e-5)
    assert len(done) == 2 and done == sorted(done)   # progress after each batch: 3 utterances, then 1


def test_too_long_a_recording_is_refused_with_the_limit(long_recording):
    with pytest.raises(AudioError, match="longer than the limit"):
        list(speech_segments(long_recording[0], SegmentConfig(max_seconds=5)))


@pytest.mark.slow
def test_predict_cli_prints_one_labelled_segment_per_utterance(long_recording, test_checkpoint):
    path, spans = long_recording
    proc = subprocess.run([sys.executable, "-m", "mgcma.predict", "--checkpoint", str(test_checkpoint), "--asr", "none",
                           "--audio", str(path), "--segments", "--json"], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    segments = json.loads(proc.stdout)["segments"]
    assert len(segments) == len(spans)
    for s in segments:
        assert {"start", "end", "text", "label", "probabilities"} <= set(s) and s["start"] < s["end"]
        assert s["label"] == max(s["probabilities"], key=s["probabilities"].get)
