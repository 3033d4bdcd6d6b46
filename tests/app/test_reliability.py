"""Whatever people feed the app gets a clear answer, and the server keeps answering."""
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
import soundfile as sf
from gradio_client import Client, handle_file

from mgcma.infer.asr import word_error_rate

ROOT = Path(__file__).resolve().parents[2]
GOOD = ROOT / "app" / "examples" / "happy-happy-spk04.wav"
SPEECH, SR = sf.read(GOOD, dtype="float32")


def speech_at(rate):
    import soxr
    return soxr.resample(SPEECH, SR, rate)


def write(path, wave, rate, **kw):
    sf.write(path, wave, rate, **kw)


BAD = {  # name -> (make file, words the message must contain)
    "zero-bytes": (lambda p: p.write_bytes(b""), "empty"),
    "not-audio": (lambda p: p.write_bytes(b"%PDF-1.7 this is a document" * 40), "not a readable audio file"),
    "truncated-header": (lambda p: p.write_bytes(GOOD.read_bytes()[:30]), "not a readable audio file"),
    "too-short": (lambda p: write(p, SPEECH[:800], SR), "too short"),
    "far-too-long": (lambda p: write(p, np.tile(speech_at(8000), 400)[:8000 * 700], 8000), "too long"),
    "silence": (lambda p: write(p, np.zeros(SR, np.float32), SR), "silent"),
    "nan": (lambda p: write(p, np.where(np.arange(len(SPEECH)) == 99, np.nan, SPEECH), SR, subtype="FLOAT"), "NaN"),
}
GOOD_VARIANTS = {  # name -> (make file, text, note expected in warnings or None)
    "saturated": (lambda p: write(p, np.clip(SPEECH * 20, -1, 1), SR), "I just got the job", "saturated"),
    "8kHz": (lambda p: write(p, speech_at(8000), 8000), "I just got the job", None),
    "48kHz": (lambda p: write(p, speech_at(48000), 48000), "I just got the job", None),
    "stereo": (lambda p: write(p, np.stack([SPEECH, 0.5 * SPEECH], 1), SR), "I just got the job", None),
    "24-bit": (lambda p: write(p, SPEECH, SR, subtype="PCM_24"), "I just got the job", None),
    "flac": (lambda p: write(p, SPEECH, SR, format="FLAC"), "I just got the job", None),
    "ogg": (lambda p: write(p, SPEECH, SR, format="OGG"), "I just got the job", None),
    "mp3": (lambda p: write(p, SPEECH, SR, format="MP3"), "I just got the job", None),
    "empty-transcript": (lambda p: write(p, SPEECH, SR), "", None),
    "10000-characters": (lambda p: write(p, SPEECH, SR), "wonderful " * 1000, "characters"),
    "emoji": (lambda p: write(p, SPEECH, SR), "I got the job 🎉🎉 😀", None),
    "non-latin": (lambda p: write(p, SPEECH, SR), "我得到了这份工作 — Я получил работу", None),
}
SUFFIX = {"flac": ".flac", "ogg": ".ogg", "mp3": ".mp3"}


@pytest.fixture(scope="module")
def client(running_app):
    return Client(running_app[1], verbose=False)


def make(tmp_path, name, maker):
    path = tmp_path / f"{name}{SUFFIX.get(name, '.wav')}"
    maker(path)
    return path


def cli(path, text):
    return subprocess.run([sys.executable, "-m", "mgcma.predict", "--audio", str(path), "--text", text, "--json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(BAD))
def test_bad_input_gets_a_clear_message_from_app_and_cli(client, tmp_path, name):
    maker, words = BAD[name]
    path = make(tmp_path, name, maker)
    with pytest.raises(Exception, match=words):
        client.predict(handle_file(str(path)), "hello", api_name="/predict")
    assert client.predict(handle_file(str(GOOD)), "hello", api_name="/predict")["label"]  # still serving
    done = cli(path, "hello")
    assert done.returncode == 1 and words in done.stderr and len(done.stderr.strip().splitlines()) == 1


@pytest.mark.slow
@pytest.mark.parametrize("name", list(GOOD_VARIANTS))
def test_unusual_but_valid_input_is_answered(client, tmp_path, name):
    maker, text, note = GOOD_VARIANTS[name]
    path = make(tmp_path, name, maker)
    result = client.predict(handle_file(str(path)), text, api_name="/predict")
    assert sum(result["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    if note:
        assert any(note in w for w in result["warnings"]), result["warnings"]
    if name == "empty-transcript":   # quantised decoding varies between machines: bound the error, not the words
        assert result["transcript_source"] == "asr"
        assert word_error_rate("I just got the job, this is wonderful news.", result["transcript"]) <= 0.3
    if name == "mp3" or name == "48kHz":
        assert cli(path, text).returncode == 0


COPIES = {  # name -> (make the copy, how far its probabilities may move: lossless 1e-3, resampled or lossy more)
    "48kHz": (lambda p, w: write(p, soxr_resample(w, 48000), 48000), 0.05),
    "22.05kHz": (lambda p, w: write(p, soxr_resample(w, 22050), 22050), 0.05),
    "stereo": (lambda p, w: write(p, np.stack([w, w], 1), SR), 1e-3),
    "24-bit": (lambda p, w: write(p, w, SR, subtype="PCM_24"), 1e-3),
    "flac": (lambda p, w: write(p, w, SR, format="FLAC"), 1e-3),
    "ogg": (lambda p, w: write(p, w, SR, format="OGG"), 0.2),   # Vorbis at its default quality: lossy
}


def soxr_resample(wave, rate):
    import soxr
    return soxr.resample(wave, SR, rate)


@pytest.fixture(scope="module")
def default_recognizer():
    from mgcma.config import DEFAULT_CHECKPOINT
    from mgcma.infer.recognizer import EmotionRecognizer
    return EmotionRecognizer(DEFAULT_CHECKPOINT, asr="none", device="cpu")


@pytest.mark.parametrize("name", list(COPIES))
def test_copies_of_a_clip_in_other_formats_get_the_same_answer(default_recognizer, tmp_path, name):
    maker, tolerance = COPIES[name]
    for clip in sorted((ROOT / "app" / "examples").glob("*.wav")):
        wave, rate = sf.read(clip, dtype="float32")
        assert rate == SR
        copy = tmp_path / f"{clip.stem}{SUFFIX.get(name, '.wav')}"
        maker(copy, wave)
        original = default_recognizer.predict(clip, "a plain sentence")
        other = default_recognizer.predict(copy, "a plain sentence")
        assert other.probabilities == pytest.approx(original.probabilities, abs=tolerance), clip.name
        (_, first), (_, second) = original.top_two
        if first - second > 2 * tolerance:   # moving each probability by `tolerance` could flip a closer call
            assert other.label == original.label, (clip.name, original.probabilities, other.probabilities)


@pytest.fixture(scope="module")
def app_process():
    """`python app.py` in its own process, so that its memory is measured alone, started as a
    Hugging Face Space starts it: address and port from the environment, no flags."""
    import socket
    import urllib.request
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = dict(os.environ, GRADIO_SERVER_NAME="0.0.0.0", GRADIO_SERVER_PORT=str(port))
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            break
        except OSError:
            time.sleep(0.3)
    yield proc, url
    proc.terminate()
    proc.wait(timeout=30)


@pytest.mark.slow
def test_load_16_users_5_requests_each_with_bounded_memory(app_process):
    """200 requests in all: 10 alone, 16 concurrent users x 5, again, then the rest. The first burst
    sets the allocator's working set (one arena per thread: growth that plateaus, not a leak); from
    there on the server's memory stays flat, and the first burst's growth stays bounded. Loopback only."""
    proc, url = app_process
    server = psutil.Process(proc.pid)
    client = Client(url, verbose=False)
    for _ in range(10):
        client.predict(handle_file(str(GOOD)), "I just got the job", api_name="/predict")
    rss_10 = server.memory_info().rss
    latencies, failures = [], []

    def user(c, n):
        for _ in range(n):
            start = time.perf_counter()
            try:
                assert c.predict(handle_file(str(GOOD)), "I just got the job", api_name="/predict")["label"]
                latencies.append(time.perf_counter() - start)
            except Exception as e:  # collected, asserted below
                failures.append(repr(e))

    def burst() -> float:
        threads = [threading.Thread(target=user, args=(Client(url, verbose=False), 5)) for _ in range(16)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=600)
        return time.perf_counter() - start
    wall = burst()                       # requests 11..90
    rss_90 = server.memory_info().rss
    burst()                              # 91..170
    user(client, 30)                     # 171..200
    rss_200 = server.memory_info().rss
    assert not failures and len(latencies) == 190
    mb = 2 ** 20
    report = dict(requests=200, concurrent_users=16, p50_s=float(np.percentile(latencies[:80], 50)),
                  p95_s=float(np.percentile(latencies[:80], 95)), concurrent_wall_s=wall,
                  rss_after_10_mb=rss_10 / mb, rss_after_90_mb=rss_90 / mb, rss_after_200_mb=rss_200 / mb,
                  first_burst_growth=rss_90 / rss_10, growth_after_first_burst=rss_200 / rss_90)
    print(json.dumps(report))
    # ratios of the server's own size, not this machine's megabytes: it levels off after the first burst
    assert report["growth_after_first_burst"] < 1.05, report   # 110 more requests: under 5 % more memory
    assert report["first_burst_growth"] < 1.5, report


def test_space_front_matter_matches_the_requirements():
    """The README's front matter is the Hugging Face Space configuration."""
    front = (ROOT / "README.md").read_text().split("---")[1]
    meta = dict(line.split(":", 1) for line in front.strip().splitlines())
    meta = {k.strip(): v.strip().strip('"') for k, v in meta.items()}
    pins = dict(line.split("==") for line in (ROOT / "requirements.txt").read_text().splitlines() if "==" in line)
    assert meta["sdk"] == "gradio" and meta["sdk_version"] == pins["gradio"]
    assert (ROOT / meta["app_file"]).is_file() and meta["python_version"].startswith("3.")
    assert meta["license"] == "cc-by-nc-sa-4.0" and 0 < len(meta["short_description"]) <= 60
