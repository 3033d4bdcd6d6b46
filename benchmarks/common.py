"""What the benchmarks share: the repository's root, the device, timing, a speech clip, reports,
and the app's cold start."""
from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from mgcma.audio import SAMPLE_RATE  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def report(result: dict, out: Path | None) -> None:
    """The result as JSON on stdout, and in `out` when given."""
    text = json.dumps(result, indent=2)
    print(text)
    if out:
        out.write_text(text + "\n")


def predict_in_own_process(args: list[str]) -> tuple[dict, float, float]:
    """`python -m mgcma.predict ARGS --json` in a process of its own -> (its JSON, wall seconds, peak memory MB)."""
    code = ("import resource, sys; from mgcma.predict import main; main(sys.argv[1:]); "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)")
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, *args, "--json"], cwd=ROOT, check=True, capture_output=True,
                          text=True)
    wall = time.perf_counter() - start
    return json.loads(done.stdout), wall, int(done.stderr.strip().splitlines()[-1]) / 1024


def manifest_records(spec: str) -> list:
    """A prepared manifest's rows: FILE, or FILE:SPLIT for one split of it."""
    from mgcma.data.records import read_manifest
    path, _, split = spec.partition(":")
    return [r for r in read_manifest(path) if not split or r.split == split]


def measure(fn, repeat: int, warmup: int = 1) -> dict:
    """Median, min and max wall time of fn() in milliseconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        if DEVICE == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if DEVICE == "cuda":
            torch.cuda.synchronize()
        times.append(1000 * (time.perf_counter() - start))
    return dict(median=statistics.median(times), min=min(times), max=max(times), n=repeat)


def speech_clip(seconds: float, seed: int = 0) -> np.ndarray:
    """A real synthetic utterance, looped to the length asked for."""
    import soundfile as sf
    wave, _ = sf.read(ROOT / "app" / "examples" / "happy-happy-spk04.wav", dtype="float32")
    n = int(seconds * SAMPLE_RATE)
    return np.tile(wave, n // len(wave) + 1)[:n]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_app_cold_start(runs: int = 1, root: Path = ROOT) -> dict:
    """From `python app.py` to the page served and to the first answered request (a 5 s clip and its
    words through the /predict API); the median over `runs` starts."""
    return median_start([cold_start(root) for _ in range(runs)])


def median_start(starts: list[dict]) -> dict:
    """Several starts' results (cold_start's, first_click's) -> the median of each figure, and how many starts."""
    return {k: statistics.median(s[k] for s in starts) for k in starts[0]} | dict(runs=len(starts))


@contextmanager
def served_app(root: Path = ROOT):
    """`root`'s app.py started on a free port: -> (its URL, seconds until it served its page);
    stopped on leaving."""
    port, start = free_port(), time.perf_counter()
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=root,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    try:
        while True:
            try:
                urllib.request.urlopen(url, timeout=1)
                break
            except OSError:
                if time.perf_counter() - start > 180:
                    raise RuntimeError(f"{root}/app.py served no page within 180 s") from None
                time.sleep(0.1)
        yield url, time.perf_counter() - start
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def cold_start(root: Path = ROOT) -> dict:
    """One start of `root`'s app.py: -> seconds to its page and to its first answer."""
    import tempfile

    import soundfile as sf
    from gradio_client import Client, handle_file
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.wav"
        sf.write(clip, speech_clip(5.0), SAMPLE_RATE)
        start = time.perf_counter()
        with served_app(root) as (url, page):
            Client(url, verbose=False).predict(handle_file(str(clip)), "", api_name="/predict")
            return dict(page_s=page, first_answer_s=time.perf_counter() - start)
