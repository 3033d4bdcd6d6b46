import numpy as np
import pytest
import torch

from mgcma.config import preset
from mgcma.data.batching import Collator
from mgcma.model import MGCMA
from mgcma.training.steps import FeatureCache, drop_modalities, model_inputs, selection_score


def test_modality_dropout_hides_each_side_in_its_share_of_the_paired_rows():
    torch.manual_seed(0)
    n = 20_000
    speech = torch.ones(n, 5, dtype=torch.bool)
    text = torch.ones(n, 3, dtype=torch.bool)
    speech[:1000] = False                       # text-only rows: nothing of theirs may be hidden
    text[1000:2000] = False                     # speech-only rows
    inputs = dict(speech_mask=speech.clone(), text_mask=text.clone())
    drop_modalities(inputs, 0.4)
    lost_speech = ~inputs["speech_mask"].any(-1) & speech.any(-1)
    lost_text = ~inputs["text_mask"].any(-1) & text.any(-1)
    paired = n - 2000
    assert lost_speech.sum() / paired == pytest.approx(0.2, abs=0.015)
    assert lost_text.sum() / paired == pytest.approx(0.2, abs=0.015)
    assert not (lost_speech & lost_text).any()                   # a row never loses both
    assert not lost_speech[:2000].any() and not lost_text[:2000].any()
    unchanged = dict(speech_mask=speech.clone(), text_mask=text.clone())
    drop_modalities(unchanged, 0.0)
    assert torch.equal(unchanged["speech_mask"], speech) and torch.equal(unchanged["text_mask"], text)


def test_cached_text_features_serve_a_batch_whose_rows_have_no_text(tokenizer):
    """A speech-only corpus (EmoDB, EMOVO) in a mixture: a batch may hold no text at all."""
    torch.manual_seed(0)
    model = MGCMA(preset("test", freeze_text_encoder=True, freeze_speech_encoder=True)).eval()
    collate = Collator(tokenizer)
    caches = {"speech": FeatureCache(), "text": FeatureCache()}
    rng = np.random.default_rng(0)
    def item(i, text):
        return dict(index=i, audio=rng.standard_normal(8000).astype(np.float32) * 0.1, text=text, label=i % 4,
                    speech_key=f"clip{i}")
    with_text = collate([item(0, "a sentence with several words in it"), item(1, "")])
    without_text = collate([item(2, ""), item(3, "")])
    for batch in (with_text, without_text):
        inputs = model_inputs(model, batch, caches)
        assert inputs["text_features"].shape[:2] == inputs["text_mask"].shape
        out = model(**inputs)
        assert torch.isfinite(out.loss)
    assert not without_text["text_mask"].any()


def test_selection_by_modalities_lets_one_spoken_corpus_weigh_as_much_as_two_text_corpora():
    scores = {"both": {"corpora": {"ravdess": {"UA": 0.9}, "goemotions": {"UA": 0.6}, "dialogue": {"UA": 0.3}}}}
    assert selection_score(scores) == pytest.approx(0.6)                                   # each corpus once
    assert selection_score(scores, {"ravdess"}, "modalities") == pytest.approx((0.9 + 0.45) / 2)
    spoken_only = {"both": {"corpora": {"ravdess": {"UA": 0.9}, "emodb": {"UA": 0.7}}}}
    assert selection_score(spoken_only, {"ravdess", "emodb"}, "modalities") == pytest.approx(0.8)
