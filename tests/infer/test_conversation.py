"""Speaker turns and emotion per speaker (mgcma/infer/conversation.py, mgcma/infer/subtitles.py, the CLI)."""
import csv
import io
import json
import re

import numpy as np
import pytest
import soundfile as sf

from mgcma.audio import SAMPLE_RATE, AudioError
from mgcma.infer.conversation import (SpeakerConfig, conversation, cut_utterance, diarise, sentence_pieces,
                                speaker_summary)
from mgcma.encoders.voice_print import VoicePrint
from mgcma.infer.segments import SegmentConfig
from mgcma.infer.subtitles import timestamp, to_csv, to_vtt

LINES = ["The meeting starts at nine tomorrow morning.", "I have not read the report yet, sorry.",
         "Could you send me the numbers again please?", "We should ask the others what they think.",
         "That sounds fine to me, let us do it.", "I will call the office after lunch today."]


@pytest.fixture(scope="module")
def voice_print():
    return VoicePrint.load()


def speak(voice: str, text: str, pitch: int) -> np.ndarray:
    from mgcma.data.synthetic import ESpeak
    return ESpeak().synthesize(text, voice, rate=165, volume=100, pitch=pitch, pitch_range=50)


def recording(path, turns: list[tuple[str, int, str]], pause: float = 0.8):
    """[(voice, pitch, text)] spoken one after another -> a WAV at 16 kHz, and the truth [(start, end, voice)]."""
    gap = np.zeros(int(pause * SAMPLE_RATE), np.float32)
    pieces, truth, t = [gap], [], pause
    for voice, pitch, text in turns:
        wave = speak(voice, text, pitch)
        pieces += [wave, gap]
        truth.append((t, t + len(wave) / SAMPLE_RATE, voice))
        t += (len(wave) + len(gap)) / SAMPLE_RATE
    sf.write(path, np.concatenate(pieces), SAMPLE_RATE)
    return path, truth


@pytest.fixture(scope="module")
def two_voices(tmp_path_factory):
    voices = [("en-us+m1", 35), ("en+f4", 75)]
    return recording(tmp_path_factory.mktemp("talk") / "two.wav",
                     [(*voices[k % 2], LINES[k]) for k in range(6)])


@pytest.fixture(scope="module")
def one_voice(tmp_path_factory):
    return recording(tmp_path_factory.mktemp("talk") / "one.wav", [("en-us+m1", 35, line) for line in LINES[:4]])


def speaker_at(turns, t: float):
    return next((x.speaker for x in turns if x.start <= t <= x.end), None)


def test_two_synthetic_voices_are_two_speakers_and_each_turn_has_its_own(voice_print, two_voices):
    path, truth = two_voices
    found = diarise(voice_print, path)
    assert found.speakers == 2
    heard = [speaker_at(found.turns, (s + e) / 2) for s, e, _ in truth]
    assert heard == [0, 1, 0, 1, 0, 1]


def test_one_voice_stays_one_speaker(voice_print, one_voice):
    found = diarise(voice_print, one_voice[0])
    assert found.speakers == 1 and {t.speaker for t in found.turns} == {0}


def test_asking_for_more_speakers_than_voices_says_so(voice_print, one_voice):
    found = diarise(voice_print, one_voice[0], SpeakerConfig(speakers=3))
    assert any("asked for 3 speakers; the voices heard suggest 1" in n for n in found.notes)


def test_bad_speaker_counts_silence_and_long_recordings_get_clear_messages(voice_print, tmp_path, two_voices):
    with pytest.raises(ValueError, match="--speakers must be auto or 1 to 8"):
        diarise(voice_print, two_voices[0], SpeakerConfig(speakers=0))
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(3 * SAMPLE_RATE, np.float32), SAMPLE_RATE)
    found = diarise(voice_print, silent)
    assert found.turns == [] and found.notes == ["no speech was found in this recording"]
    with pytest.raises(AudioError, match="longer than the limit"):
        diarise(voice_print, two_voices[0], segment_cfg=SegmentConfig(max_seconds=5))


def test_an_utterance_is_cut_where_its_speaker_changes_and_short_stretches_are_not_turns():
    times = np.arange(0.8, 6.0, 0.4)                            # 13 windows over a 6.4-s utterance
    labels = np.array([0] * 6 + [1] * 7)
    turns = cut_utterance((0.0, 6.4), times, labels, SpeakerConfig(smooth=1))
    assert [(t.speaker, round(t.start, 1), round(t.end, 1)) for t in turns] == [(0, 0.0, 3.0), (1, 3.0, 6.4)]
    blip = np.array([0] * 6 + [1] + [0] * 6)                    # 0.4 s of "another voice" inside one
    assert [t.speaker for t in cut_utterance((0.0, 6.4), times, blip, SpeakerConfig(smooth=1))] == [0]


def test_a_turn_is_cut_at_its_sentence_ends_but_never_into_pieces_under_a_second():
    words = [("Hello", 0.0, 0.4), ("there.", 0.5, 1.2), ("How", 1.6, 1.8), ("are", 1.9, 2.0), ("you?", 2.1, 2.6),
             ("Fine.", 2.8, 3.1)]
    pieces = sentence_pieces(words, 10.0, 13.4)
    assert [(round(s, 2), round(e, 2), text) for s, e, text in pieces] == \
        [(10.0, 11.4, "Hello there."), (11.4, 13.4, "How are you? Fine.")]


def rows_for(labels):
    return [dict(start=2.0 * i, end=2.0 * i + 1.5, speaker=f"Speaker {i % 2 + 1}", text=f"words <{i}> & more",
                 label=labels[i % 4], confidence=0.7, probabilities={k: 0.7 if k == labels[i % 4] else 0.1 for k in labels},
                 answers={}, not_sure=i == 3) for i in range(5)]


def test_vtt_and_csv_hold_every_turn_with_its_speaker_emotion_and_words():
    labels = ["neutral", "happy", "angry", "sad"]
    rows = rows_for(labels)
    vtt = to_vtt(rows)
    assert vtt.startswith("WEBVTT\n\n")
    cues = vtt.strip().split("\n\n")[1:]
    assert len(cues) == 5
    for cue, row in zip(cues, rows):
        number, times, text = cue.split("\n")
        assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d\d\d --> \d\d:\d\d:\d\d\.\d\d\d", times)
        assert text.startswith(f"<v {row['speaker']}>") and "&lt;" in text and "&amp;" in text and "<" not in text[3:]
    assert "[not sure, sad? 70%]" in cues[3]
    assert timestamp(3725.5) == "01:02:05.500"
    table = list(csv.DictReader(io.StringIO(to_csv(rows, labels))))
    assert [r["speaker"] for r in table] == [r["speaker"] for r in rows]
    assert table[1]["text"] == "words <1> & more" and float(table[1]["p_happy"]) == pytest.approx(0.7)


def test_each_speaker_gets_a_summary_of_their_time():
    summary = speaker_summary(rows_for(["neutral", "happy", "angry", "sad"]), ["neutral", "happy", "angry", "sad"])
    assert [s["speaker"] for s in summary] == ["Speaker 1", "Speaker 2"]
    first = summary[0]                       # turns 0, 2, 4: neutral, angry, neutral
    assert first["turns"] == 3 and first["seconds"] == 4.5
    assert first["emotions"] == pytest.approx({"neutral": 2 / 3, "happy": 0.0, "angry": 1 / 3, "sad": 0.0}, abs=1e-3)
    assert summary[1]["not_sure"] == 0.5


@pytest.mark.slow
def test_every_turn_of_a_conversation_carries_a_speaker_and_an_answer(voice_print, two_voices, test_checkpoint):
    from mgcma.infer.recognizer import EmotionRecognizer
    recognizer = EmotionRecognizer(test_checkpoint, asr="none")
    result = conversation(recognizer, voice_print, two_voices[0], SpeakerConfig(speakers=2))
    assert {r["speaker"] for r in result["segments"]} == {"Speaker 1", "Speaker 2"}
    assert all(r["label"] in recognizer.config.labels for r in result["segments"])
    assert [s["speaker"] for s in result["speakers"]] == ["Speaker 1", "Speaker 2"]


@pytest.mark.slow
def test_the_command_writes_json_vtt_and_csv_with_speakers(two_voices, test_checkpoint, tmp_path, capsys):
    from mgcma.predict import main
    vtt, table = tmp_path / "talk.vtt", tmp_path / "talk.csv"
    assert main(["--audio", str(two_voices[0]), "--checkpoint", str(test_checkpoint), "--asr", "none", "--segments",
                 "--speakers", "auto", "--json", "--vtt", str(vtt), "--csv", str(table)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["segments"] and all(s["speaker"].startswith("Speaker ") for s in result["segments"])
    assert vtt.read_text().count(" --> ") == len(result["segments"])
    assert len(list(csv.DictReader(table.open()))) == len(result["segments"])
    assert main(["--audio", str(two_voices[0]), "--checkpoint", str(test_checkpoint), "--segments",
                 "--speakers", "two"]) == 1
    assert "--speakers must be auto or a number" in capsys.readouterr().err
