import json

import pytest

from mgcma.config import PRESETS, ModelConfig, preset


@pytest.mark.parametrize("name", PRESETS)
def test_presets_round_trip_through_json(tmp_path, name):
    cfg = preset(name)
    cfg.save(tmp_path / "c.json")
    assert ModelConfig.load(tmp_path / "c.json") == cfg
    assert ModelConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_paper_preset_names_the_papers_backbones():
    cfg = preset("paper")
    assert cfg.speech_encoder == "facebook/wav2vec2-base" and cfg.text_encoder == "bert-base-uncased"


def test_bad_configs_are_named():
    with pytest.raises(ValueError, match="unknown model config field.*colour"):
        ModelConfig.from_dict({"colour": "red"})
    with pytest.raises(ValueError, match="modality"):
        ModelConfig(modality="video")
    with pytest.raises(ValueError, match="divisible"):
        ModelConfig(d_model=30, n_heads=4)
    with pytest.raises(ValueError, match="distinct"):
        ModelConfig(labels=["a", "a"])
    with pytest.raises(ValueError, match="unknown preset"):
        preset("huge")


def test_config_file_that_is_not_json(tmp_path):
    (tmp_path / "c.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        ModelConfig.load(tmp_path / "c.json")
