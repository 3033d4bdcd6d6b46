from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mgcma.analysis.word_times import WordTimer, in_span_share, spans_for

EXAMPLE = Path(__file__).resolve().parents[2] / "app" / "examples" / "happy-happy-spk04.wav"


def test_spans_follow_the_words_by_their_letters():
    timed = [("I", 0.0, 0.2), ("just", 0.2, 0.5), ("got", 0.5, 0.7), ("better", 0.7, 1.0), ("news", 1.5, 1.9)]
    spans = spans_for(["I", "just", "got", "the", "job,", "news."], timed)
    assert spans[:3] == [(0.0, 0.2), (0.2, 0.5), (0.5, 0.7)] and spans[5] == (1.5, 1.9)
    assert spans[3] is None and spans[4] is None


def test_in_span_share_against_chance():
    times = (np.arange(100) + 0.5) * 0.02                # 2 s of frames
    spans = [(0.0, 0.5), (0.5, 2.0)]
    focused = np.zeros((2, 100))
    focused[0, :25], focused[1, 25:] = 1 / 25, 1 / 75    # all attention inside each word's span
    share = in_span_share(focused, times, spans)
    assert share["in_span"] == pytest.approx(1.0) and share["chance"] == pytest.approx((0.25 + 0.75) / 2)
    uniform = in_span_share(np.full((2, 100), 0.01), times, spans)
    assert uniform["in_span"] == pytest.approx(uniform["chance"]) and uniform["ratio"] == pytest.approx(1.0)
    assert in_span_share(focused, times, [None, None]) is None


def test_the_given_words_are_placed_in_order_on_the_clip():
    wave, _ = sf.read(EXAMPLE, dtype="float32")
    words = WordTimer().align(wave, "I just got the job, this is wonderful news.")
    # forced onto the given text, so no recogniser's spelling is involved: the words are the text's
    assert [w for w, _, _ in words] == ["I", "just", "got", "the", "job", "this", "is", "wonderful", "news"]
    starts = [s for _, s, _ in words]
    assert starts == sorted(starts) and all(s <= e for _, s, e in words)
    assert words[-1][2] <= len(wave) / 16000 + 0.1
