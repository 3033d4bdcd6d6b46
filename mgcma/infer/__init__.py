"""Inference: the recogniser (recognizer.py), its speech recognisers (asr.py, shared_asr.py), long
recordings (segments.py, conversation.py, recording.py, subtitles.py, word_timer.py), the live
microphone (live.py) and per-speaker normalisation (speaker_means.py). This file imports nothing."""
