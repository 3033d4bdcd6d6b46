"""Inference: the recogniser (recognizer.py), heads answering together (ensemble.py) and an ensemble's
files (members.py), the statistics head in NumPy (stats_head.py), its speech recognisers (asr.py,
shared_asr.py), scoring a manifest (scoring.py), long recordings (segments.py, conversation.py,
recording.py, subtitles.py, word_timer.py), the live microphone (live.py), per-speaker normalisation
(speaker_means.py), and the ONNX graphs (onnx_export.py) with their PyTorch-free recogniser
(onnx_recognizer.py). It never imports training. This file imports nothing."""
