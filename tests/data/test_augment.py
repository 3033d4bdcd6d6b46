"""Each degradation changes the signal as its name says, measured back from the output."""
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mgcma.data.augment import AugmentConfig, Augmenter, degrade, telephone

EXAMPLES = Path(__file__).resolve().parents[2] / "app" / "examples"
SR = 16000


def clip(name="neutral-neutral-spk00.wav", level=0.1):
    wave, sr = sf.read(EXAMPLES / name, dtype="float32")
    assert sr == SR
    return (level * wave / np.abs(wave).max()).astype(np.float32)   # well below full scale: no peak rescaling


def snr_db(clean, noisy):
    return 10 * np.log10(np.mean(clean.astype(np.float64) ** 2) / np.mean((noisy - clean).astype(np.float64) ** 2))


@pytest.mark.parametrize("snr", [5, 10, 20])
def test_white_noise_is_added_at_the_named_snr(snr):
    wave = clip()
    out = degrade(wave, f"white-{snr}", seed=1)
    assert out.shape == wave.shape and snr_db(wave, out) == pytest.approx(snr, abs=1.0)
    noise = out - wave
    assert abs(np.corrcoef(noise[:-1], noise[1:])[0, 1]) < 0.05    # white: no correlation between neighbours


@pytest.mark.parametrize("snr", [5, 10])
def test_babble_is_another_speaker_at_the_named_snr(snr, tmp_path):
    other = tmp_path / "other.wav"
    sf.write(other, clip("sad-negative-spk12.wav", 0.5), SR)
    wave = clip()
    out = degrade(wave, f"babble-{snr}", seed=2, babble_paths=[str(other)])
    assert snr_db(wave, out) == pytest.approx(snr, abs=1.0)
    with pytest.raises(ValueError, match="babble needs"):
        degrade(wave, "babble-10")


def band_energy(wave, lo, hi):
    spectrum = np.abs(np.fft.rfft(wave)) ** 2
    freqs = np.fft.rfftfreq(len(wave), 1 / SR)
    return spectrum[(freqs >= lo) & (freqs < hi)].sum()


def test_telephone_keeps_300_to_3400_hz_and_removes_the_rest():
    rng = np.random.default_rng(0)
    noise = (0.1 * rng.standard_normal(SR * 2)).astype(np.float32)    # flat spectrum: every band has energy
    out = telephone(noise)
    assert len(out) == len(noise)
    def kept(lo, hi):
        return band_energy(out, lo, hi) / band_energy(noise, lo, hi)
    assert kept(500, 3000) > 0.5                                   # the voice band passes
    assert kept(3600, 3900) < 0.3 and kept(150, 250) < 0.3         # just outside 300-3400 Hz: mostly gone
    assert kept(4200, 8000) < 0.001 and kept(0, 100) < 0.05        # far outside: gone
    np.testing.assert_array_equal(degrade(noise, "telephone", seed=4), degrade(noise, "telephone", seed=4))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_reverberation_spreads_the_energy_in_time(seed):
    impulse = np.zeros(SR, np.float32)
    impulse[1000] = 0.5
    out = degrade(impulse, "reverb", seed=seed)
    assert len(out) == len(impulse)
    direct = int(np.argmax(np.abs(out)))
    tail = np.sum(out[direct + SR // 100:] ** 2) / np.sum(out ** 2)   # energy later than 10 ms after the direct sound
    assert tail > 0.001
    np.testing.assert_array_equal(out, degrade(impulse, "reverb", seed=seed))   # the same room for the same seed


def test_clean_is_untouched_and_unknown_conditions_are_refused():
    wave = clip()
    assert degrade(wave, "clean") is wave
    with pytest.raises(ValueError, match="unknown condition"):
        degrade(wave, "underwater-3")


def test_training_views_are_seeded_changed_and_never_clip():
    wave = clip(level=0.9)
    augment = Augmenter(AugmentConfig(p_noise=1.0, p_gain=1.0, p_reverb=1.0, p_speed_pitch=1.0))   # every kind drawn
    a, b, c = augment(wave, seed=5), augment(wave, seed=5), augment(wave, seed=6)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c) and not np.allclose(a[:len(wave)], wave[:len(a)])
    assert np.abs(a).max() <= 1.0 and np.abs(c).max() <= 1.0


QUIET = dict(p_noise=0.0, p_speed_pitch=0.0, p_telephone=0.0, p_reverb=0.0, p_gain=0.0)


def test_another_microphone_colours_the_bands_by_at_most_a_few_db():
    noise = (0.05 * np.random.default_rng(1).standard_normal(SR * 2)).astype(np.float32)
    colour = Augmenter(AugmentConfig(p_colour=1.0, **QUIET))
    for seed in range(4):
        out = colour(noise, seed)
        gains = [10 * np.log10(band_energy(out, lo, 2 * lo) / band_energy(noise, lo, 2 * lo)) for lo in (100, 200, 400, 800, 1600, 3200)]
        assert len(out) == len(noise) and max(np.abs(gains)) < 13
        assert max(gains) - min(gains) > 1.0                      # a colour, not a gain
        np.testing.assert_array_equal(out, colour(noise, seed))
    np.testing.assert_array_equal(degrade(noise, "colour", seed=3), degrade(noise, "colour", seed=3))


def test_the_codec_keeps_the_speech_and_loses_detail():
    wave = clip()
    codec = Augmenter(AugmentConfig(p_codec=1.0, **QUIET))
    for seed in range(3):
        out = codec(wave, seed)
        assert len(out) == len(wave) and not np.array_equal(out, wave)
        assert np.corrcoef(out, wave)[0, 1] > 0.9 and snr_db(wave, out) > 5
        np.testing.assert_array_equal(out, codec(wave, seed))
    low = degrade(wave, "mp3-16", seed=0)                          # a test condition at one bit rate
    assert snr_db(wave, low) < snr_db(wave, degrade(wave, "mp3-64", seed=0))


def test_shifted_views_start_later_by_at_most_the_named_time():
    wave = clip()
    assert wave[0] != 0                                       # so the first non-zero sample marks the delay
    quiet = dict(p_noise=0.0, p_speed_pitch=0.0, p_telephone=0.0, p_reverb=0.0, p_gain=0.0)
    shift = Augmenter(AugmentConfig(max_shift_ms=32.0, **quiet))
    delays = []
    for seed in range(8):
        out = shift(wave, seed=seed)
        delay = int(np.argmax(out != 0))
        assert len(out) == len(wave) and delay <= 32 * SR // 1000
        np.testing.assert_array_equal(out[delay:], wave[:len(wave) - delay])
        delays.append(delay)
    assert len(set(delays)) > 4                               # drawn afresh for each view
    np.testing.assert_array_equal(Augmenter(AugmentConfig(**quiet))(wave, seed=0), wave)   # off by default


def dominant_hz(wave):
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    return np.fft.rfftfreq(len(wave), 1 / SR)[np.argmax(spectrum)]


def test_wider_speed_and_pitch_ranges_reach_beyond_the_default_ones():
    tone = (0.1 * np.sin(2 * np.pi * 200 * np.arange(SR) / SR)).astype(np.float32)
    still = dict(QUIET, p_speed_pitch=1.0)
    slower = Augmenter(AugmentConfig(tempo_rates=(0.75, 0.8), semitones=0.0, **still))
    lengths = {len(slower(tone, seed)) for seed in range(8)}
    assert lengths - {len(tone)} and all(1.2 <= n / len(tone) <= 1.4 for n in lengths - {len(tone)})   # 20-25 % slower
    wide = Augmenter(AugmentConfig(tempo_rates=(1.0, 1.0), semitones=4.0, **still))
    semitones = [12 * np.log2(dominant_hz(wide(tone, seed)) / 200) for seed in range(16)]
    assert max(np.abs(semitones)) <= 4.2 and max(np.abs(semitones)) > 2.5   # beyond the default +-2
