from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mgcma.infer.live import LiveConfig, LiveTake, live_label
from mgcma.infer.recognizer import EmotionRecognizer

EXAMPLE = Path(__file__).resolve().parents[2] / "app" / "examples" / "happy-happy-spk04.wav"


def microphone_chunks(seconds: float, rate: int = 48000, chunk: float = 0.5):
    """The example clip looped, as int16 stereo chunks at the browser's rate."""
    import soxr
    wave, sr = sf.read(EXAMPLE, dtype="float32")
    wave = np.tile(soxr.resample(wave, sr, rate), int(seconds * rate / len(wave)) + 1)[:int(seconds * rate)]
    pcm = (wave * 32767).astype(np.int16)
    step = int(chunk * rate)
    return [np.stack([pcm[i:i + step]] * 2, axis=1) for i in range(0, len(pcm), step)]


def test_a_label_is_due_about_every_two_seconds_over_the_latest_window():
    take = LiveTake(LiveConfig(update_seconds=2.0, window_seconds=4.0))
    due = []
    for i, chunk in enumerate(microphone_chunks(9.0)):
        if take.add(48000, chunk):
            due.append(i)
            take.labelled_at = take.samples
    assert due == [3, 7, 11, 15]   # 0.5 s chunks: after 2, 4, 6 and 8 s
    assert take.seconds == pytest.approx(9.0, abs=0.01)
    assert len(take.window()) == 4 * 16000 and len(take.audio()) == take.samples
    np.testing.assert_allclose(take.window(), take.audio()[-4 * 16000:])


def test_a_take_stops_growing_at_its_limit():
    take = LiveTake(LiveConfig(max_minutes=3 / 60))   # 3 s
    for chunk in microphone_chunks(5.0):
        take.add(48000, chunk)
    assert take.full and take.samples == 3 * 16000


def test_live_label_from_the_voice_and_none_for_silence(test_checkpoint):
    recognizer = EmotionRecognizer(test_checkpoint, asr="none", device="cpu")
    take = LiveTake()
    for chunk in microphone_chunks(4.0):
        take.add(48000, chunk)
    probabilities = live_label(recognizer, take).probabilities
    assert set(probabilities) == set(recognizer.config.labels) and take.labelled_at == take.samples
    assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    quiet = LiveTake()
    quiet.add(16000, np.zeros(16000 * 3, np.int16))
    assert live_label(recognizer, quiet) is None


def test_live_label_is_the_voice_only_answer_on_the_latest_window(test_checkpoint):
    """Not the whole take, and not the words: the label equals the voice-only answer on the last 4 s."""
    recognizer = EmotionRecognizer(test_checkpoint, asr="none", device="cpu")
    take = LiveTake(LiveConfig(window_seconds=4.0))
    for chunk in microphone_chunks(7.0):
        take.add(48000, chunk)
    live = live_label(recognizer, take).probabilities
    last = take.audio()[-4 * 16000:]
    voice_only = recognizer.predict((16000, last), "these words must not matter at all").answers["speech"]
    assert live == pytest.approx(voice_only, abs=1e-5)
    whole = recognizer.predict((16000, take.audio()), None, use_asr=False).probabilities
    assert whole != pytest.approx(live, abs=1e-5)      # the window, not the whole take, was heard
