import pytest
import torch

from mgcma.data.records import read_manifest
from mgcma.training.config import TrainConfig
from mgcma.training.loop import train
from mgcma.training.run_files import TrainingError
from mgcma.training.voice_offsets import VoiceOffsets


def offsets(p=0.5, voices=5, rows=40, layers=3, width=8, seed=0):
    means = torch.randn(voices, layers, width, generator=torch.Generator().manual_seed(1))
    voice_of_row = torch.arange(rows) % (voices + 1) - 1     # every sixth row has no audio (-1)
    return VoiceOffsets(means, voice_of_row, p, seed)


def test_a_moved_row_takes_another_voices_mean_in_place_of_its_own():
    o = offsets(p=1.0)
    rows = torch.arange(40)
    shifts = o.layer_shifts(rows, step=3)
    for row, shift in zip(rows, shifts):
        own = o.voice_of_row[row]
        if own < 0:
            assert not shift.any()     # no audio: nothing to move
            continue
        became = [v for v in range(len(o.means)) if torch.allclose(o.means[own] + shift, o.means[v])]
        assert became and became[0] != own


def test_the_share_moved_follows_p_and_the_draw_follows_the_step_alone():
    rows = torch.arange(40).repeat(50)
    voiced = offsets().voice_of_row[rows] >= 0
    moved = offsets(p=0.5).layer_shifts(rows, step=7).flatten(1).any(1)
    assert 0.4 < moved[voiced].float().mean() < 0.6
    assert not offsets(p=0.0).layer_shifts(rows, step=7).any()
    assert torch.equal(offsets().layer_shifts(rows, step=7), offsets().layer_shifts(rows, step=7))
    assert not torch.equal(offsets().layer_shifts(rows, step=7), offsets().layer_shifts(rows, step=8))


def quick(corpus, out, **kw):
    return TrainConfig(data="manifest", data_path=str(corpus), preset="test", epochs=2, batch_size=8, num_workers=0,
                       folds="0", out=str(out), **kw)


def test_voice_offsets_need_a_cached_speech_encoder(tiny_corpus, tmp_path):
    with pytest.raises(TrainingError, match="frozen speech encoder"):
        train(quick(tiny_corpus, tmp_path / "run", augment_voice_offset=0.5))


@pytest.mark.slow
def test_a_run_with_voice_offsets_measures_the_training_voices_alone(tiny_corpus, tmp_path, monkeypatch):
    import mgcma.training.loop as loop
    original, measured = loop.measure_voices, []
    monkeypatch.setattr(loop, "measure_voices", lambda *a: measured.append(original(*a)) or measured[-1])
    summary = train(quick(tiny_corpus, tmp_path / "run", freeze_encoders=True, augment_voice_offset=0.5))
    assert 0.0 <= summary["UA_mean"] <= 1.0
    (voices,) = measured
    heard = set(voices.voice_of_row[voices.voice_of_row >= 0].tolist())
    speakers = {r.speaker for r in read_manifest(tiny_corpus)}
    assert len(voices.means) == len(heard) < len(speakers)     # the test and validation speakers are not among them
    assert torch.isfinite(voices.means).all()
