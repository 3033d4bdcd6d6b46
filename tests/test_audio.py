import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import example, given, settings, strategies as st
from hypothesis.extra.numpy import arrays

from mgcma.audio import AudioError, AudioLimits, load_audio, prepare_waveform


def speech_like(seconds, sr):
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * 180 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)


@pytest.mark.parametrize("sr", [8000, 16000, 22050, 44100, 48000])
def test_any_rate_becomes_16k_mono_float32(tmp_path, sr):
    sf.write(tmp_path / "a.wav", np.stack([speech_like(1.0, sr)] * 2, axis=1), sr, subtype="PCM_24")
    wave = load_audio(tmp_path / "a.wav")
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert abs(len(wave) - 16000) <= 2 and np.abs(wave).max() <= 1.0


@pytest.mark.parametrize("fmt", ["FLAC", "OGG"])
def test_other_containers(tmp_path, fmt):
    sf.write(tmp_path / f"a.{fmt.lower()}", speech_like(0.5, 16000), 16000, format=fmt)
    assert len(load_audio(tmp_path / f"a.{fmt.lower()}")) == pytest.approx(8000, abs=2)


@pytest.mark.parametrize("make,message", [
    (lambda p: p.write_bytes(b""), "empty"),
    (lambda p: p.write_bytes(b"this is not audio at all" * 10), "not a readable audio file"),
    (lambda p: p.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt "), "not a readable audio file"),
    (lambda p: sf.write(p, speech_like(0.05, 16000), 16000), "too short"),
    (lambda p: sf.write(p, np.zeros(16000, np.float32), 16000), "silent"),
])
def test_bad_files_get_a_clear_message(tmp_path, make, message):
    path = tmp_path / "bad.wav"
    make(path)
    with pytest.raises(AudioError, match=message):
        load_audio(path)


def test_missing_file(tmp_path):
    with pytest.raises(AudioError, match="no such file"):
        load_audio(tmp_path / "nope.wav")


def test_nan_and_inf_are_refused():
    wave = speech_like(0.5, 16000)
    wave[100] = np.nan
    with pytest.raises(AudioError, match="NaN or infinite"):
        prepare_waveform(wave, 16000)


def test_long_clip_is_cropped_with_a_warning_and_very_long_refused(tmp_path):
    with pytest.warns(UserWarning, match="longer than the maximum 2.0 s"):
        wave = prepare_waveform(speech_like(3.0, 16000), 16000, AudioLimits(max_seconds=2.0))
    assert len(wave) == 32000
    sf.write(tmp_path / "long.wav", speech_like(5.0, 8000), 8000)
    with pytest.raises(AudioError, match="too long"):
        load_audio(tmp_path / "long.wav", AudioLimits(refuse_seconds=4.0))


def test_int16_as_gradio_gives_it():
    pcm = (speech_like(0.5, 48000) * 32767).astype(np.int16)
    wave = prepare_waveform(np.stack([pcm, pcm], axis=1), 48000)
    assert wave.dtype == np.float32 and len(wave) == 8000 and 0.2 < np.abs(wave).max() <= 1.0


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=2000))
def test_random_bytes_never_crash_the_loader(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("h") / "x.wav"
    path.write_bytes(data)
    try:
        wave = load_audio(path)
    except AudioError:
        return
    assert wave.dtype == np.float32 and np.all(np.isfinite(wave))


@settings(max_examples=60, deadline=None)
@given(wave=arrays(np.float32, st.integers(0, 4000), elements=st.floats(width=32, allow_nan=True, allow_infinity=True)),
       sr=st.sampled_from([8000, 16000, 44100]))
@example(wave=np.full(1854, 3.67e35, dtype=np.float32), sr=8000)   # finite, but resampling overflowed float32
@example(wave=np.full((1854, 2), 3e38, dtype=np.float32), sr=16000)   # finite, but the channel mean overflowed
def test_random_arrays_never_crash_the_loader(wave, sr):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = prepare_waveform(wave, sr)
    except AudioError:
        return
    assert out.dtype == np.float32 and np.all(np.isfinite(out)) and np.abs(out).max() <= 1.0


def test_saturated_audio_is_used_with_a_warning():
    wave = np.clip(3 * speech_like(1.0, 16000), -1, 1)
    with pytest.warns(UserWarning, match="saturated"):
        out = prepare_waveform(wave, 16000)
    assert len(out) == 16000


def test_mp3_and_24_bit(tmp_path):
    sf.write(tmp_path / "a.mp3", speech_like(1.0, 44100), 44100, format="MP3")
    assert abs(len(load_audio(tmp_path / "a.mp3")) - 16000) < 1200  # MP3 frames pad the ends
    sf.write(tmp_path / "b.wav", speech_like(1.0, 48000), 48000, subtype="PCM_24")
    assert len(load_audio(tmp_path / "b.wav")) == 16000


def test_nan_inside_a_float_wav_file(tmp_path):
    wave = speech_like(0.5, 16000)
    wave[10] = np.inf
    sf.write(tmp_path / "n.wav", wave, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN or infinite"):
        load_audio(tmp_path / "n.wav")


def test_clean_speech_trims_the_silence_around_speech_and_reaches_the_level():
    from mgcma.audio import Hygiene, clean_speech
    speech, sr = sf.read(Path(__file__).resolve().parents[1] / "app" / "examples" / "neutral-neutral-spk00.wav",
                         dtype="float32")
    speech = 0.05 * speech / np.abs(speech).max()
    rng = np.random.default_rng(0)
    hush = lambda seconds: (1e-4 * rng.standard_normal(int(seconds * sr))).astype(np.float32)   # a quiet room
    padded = np.concatenate([hush(1.5), speech, hush(2.0)])
    cleaned = clean_speech(padded, Hygiene(trim=True, trim_pad_seconds=0.15, loudness_dbfs=-23.0))
    # the 3.5 s of room tone are gone, up to the VAD's padding of 0.15 s on each side
    assert len(speech) - 0.1 * sr <= len(cleaned) <= len(speech) + 0.5 * sr
    rms_dbfs = 20 * np.log10(np.sqrt(np.mean(cleaned.astype(np.float64) ** 2)))
    assert rms_dbfs == pytest.approx(-23.0, abs=0.1) and np.abs(cleaned).max() <= 0.99
    untouched = clean_speech(padded, Hygiene(trim=False, loudness_dbfs=None))
    np.testing.assert_array_equal(untouched, padded)
    loud_only = clean_speech(padded, Hygiene(trim=False, loudness_dbfs=-30.0))
    assert len(loud_only) == len(padded)


def test_loudness_never_pushes_a_peaky_clip_past_full_scale():
    from mgcma.audio import normalise_loudness
    click = np.zeros(16000, np.float32)
    click[100] = 0.5                       # its RMS is tiny: -23 dBFS would need a gain of hundreds
    out = normalise_loudness(click, -23.0)
    assert np.abs(out).max() == pytest.approx(0.99, abs=1e-6)
