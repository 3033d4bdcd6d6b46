"""--precision int8 (mgcma/encoders/precision.py): the same labels as float32 on real clips, where it can run."""
from pathlib import Path

import pytest
import torch

from mgcma.config import DEFAULT_CHECKPOINT
from mgcma.infer.recognizer import EmotionRecognizer, InputError
from mgcma.encoders.precision import check_precision, frame_cosine

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data"
REAL = sorted((ROOT / "app" / "examples").glob("*.flac"))   # RAVDESS actors 20-23, committed with the app


def real_clips() -> list[tuple[Path, str]]:
    """The app's real examples, and where your copy of RAVDESS is beside the checkout, 12 held-out clips."""
    clips = [(p, "") for p in REAL]
    if (SHARED / "ravdess").is_dir():
        from mgcma.data.corpora import read_ravdess
        test = [r for r in read_ravdess(SHARED / "ravdess") if r.split == "test"]
        clips += [(r.path, r.text) for r in test[::len(test) // 12][:12]]
    return clips


@pytest.fixture(scope="module")
def recognizers():
    return {p: EmotionRecognizer(DEFAULT_CHECKPOINT, asr="none", device="cpu", precision=p) for p in ("float32", "int8")}


@pytest.mark.slow
def test_int8_encoders_give_the_labels_of_float32(recognizers):
    clips = real_clips()
    assert len(clips) >= 4
    for clip, text in clips:
        a, b = (recognizers[p].predict(clip, text or None, use_asr=False) for p in ("float32", "int8"))
        assert max(abs(a.probabilities[k] - b.probabilities[k]) for k in a.probabilities) < 0.15, clip
        (_, first), (_, second) = a.top_two
        if first - second > 0.2:    # a clip on the fence may tip either way
            assert a.label == b.label, clip


def test_int8_linear_layers_are_quantised_and_the_rest_is_not(recognizers):
    from torch.ao.nn.quantized.dynamic import Linear as Int8Linear
    model = recognizers["int8"].model
    encoders = [*model.speech_encoder.modules(), *model.text_encoder.modules()]
    assert sum(isinstance(m, Int8Linear) for m in encoders) == 6 * 5 + 6 * 5 + 1   # Whisper base, MiniLM (+ pooler)
    kept = [m for m in encoders if type(m) is torch.nn.Linear]                   # the MLPs' down-projections
    assert len(kept) == 6 + 6 and all(m.in_features == 4 * m.out_features for m in kept)
    assert all(type(m) is torch.nn.Linear for m in model.classifier.modules() if isinstance(m, torch.nn.Linear))


@torch.inference_mode()
def test_int8_frames_stay_close_to_float32(recognizers):
    wave, _ = recognizers["float32"].load(REAL[0])
    audio = torch.from_numpy(wave)[None]
    mask = torch.ones_like(audio, dtype=torch.bool)
    a, frames = recognizers["float32"].model.encode_speech(audio, mask)
    b, _ = recognizers["int8"].model.encode_speech(audio, mask)
    cosine = frame_cosine(a, b, frames)
    assert cosine.shape == (a.shape[2],) and float(cosine.min()) > 0.98


def test_frame_cosine_counts_real_frames_only():
    a = torch.tensor([[[1.0, 0.0], [1.0, 0.0]]])
    b = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    assert float(frame_cosine(a, b, torch.tensor([[True, False]]))) == pytest.approx(1.0)
    assert float(frame_cosine(a, b, torch.tensor([[True, True]]))) == pytest.approx(0.5)


def test_int8_is_refused_where_it_cannot_run():
    with pytest.raises(ValueError, match="CPU only"):
        check_precision("int8", "cuda")
    with pytest.raises(ValueError, match="unknown precision"):
        check_precision("int4", "cpu")
    with pytest.raises(InputError, match="unknown precision"):
        EmotionRecognizer(DEFAULT_CHECKPOINT, asr="none", device="cpu", precision="half")
