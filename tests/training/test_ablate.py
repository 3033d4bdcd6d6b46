import json

import pytest

from mgcma import ablate
from mgcma.training import ablation
from mgcma.model import MGCMA


@pytest.mark.slow
def test_seeds_x_folds_table_with_paired_test_and_one_encoder_pass_per_clip(tiny_corpus, tmp_path, monkeypatch):
    encoded = []
    original = MGCMA.encode_speech

    def counting(self, audio, audio_mask):
        encoded.append(int(audio_mask.any(-1).sum()))
        return original(self, audio, audio_mask)
    monkeypatch.setattr(MGCMA, "encode_speech", counting)
    out = tmp_path / "ablation"
    rc = ablate.main(["--data", "manifest", "--data-path", str(tiny_corpus), "--preset", "test", "--freeze-encoders",
                      "--epochs", "1", "--batch-size", "8", "--num-workers", "0", "--folds", "0,1",
                      "--settings", "full,none,speech-only", "--seeds", "0,1", "--out", str(out)])
    assert rc == 0
    # 64 clips, each through the frozen speech encoder once for 3 settings x 2 seeds x 2 folds
    assert sum(encoded) == 64
    summary = json.loads((out / "ablation.json").read_text())
    assert set(summary) == {"full", "none", "speech-only"}
    for name, s in summary.items():
        assert len(s["runs"]) == 4 and {(r["seed"], r["fold"]) for r in s["runs"]} == {(0, 0), (0, 1), (1, 0), (1, 1)}
        assert (out / name / "seed-1" / "fold-1" / "metrics.json").is_file()
        assert s["seconds"] > 0
    none = summary["none"]["versus_full"]
    full_ua = {(r["seed"], r["fold"]): r["UA"] for r in summary["full"]["runs"]}
    diffs = [r["UA"] - full_ua[(r["seed"], r["fold"])] for r in summary["none"]["runs"]]
    assert none["n"] == 4 and none["mean"] == pytest.approx(sum(diffs) / 4)
    table = (out / "ablation.md").read_text()
    assert "UA - full (paired)" in table and "(n=4" in table and table.count("\n") == 5
    assert summary["full"]["versus_none"]["mean"] == pytest.approx(-none["mean"])


def test_an_interrupted_ablation_resumes_without_retraining(tiny_corpus, tmp_path):
    args = ["--data", "manifest", "--data-path", str(tiny_corpus), "--preset", "test", "--freeze-encoders",
            "--epochs", "1", "--batch-size", "8", "--num-workers", "0", "--folds", "0",
            "--settings", "full,none", "--seeds", "0", "--out", str(tmp_path / "a")]
    assert ablate.main(args) == 0
    before = (tmp_path / "a" / "none" / "seed-0" / "fold-0" / "metrics.json").read_text()
    assert ablate.main(args) == 1   # refuses to overwrite
    assert ablate.main(args + ["--resume"]) == 0
    assert (tmp_path / "a" / "none" / "seed-0" / "fold-0" / "metrics.json").read_text() == before


def test_paired_test_is_wilcoxon_over_matching_seed_and_fold():
    full = [dict(seed=s, fold=f, UA=0.5) for s in range(2) for f in range(3)]
    better = [dict(seed=s, fold=f, UA=0.5 + 0.01 * (1 + s + 2 * f)) for s in range(2) for f in range(3)]
    result = ablation.paired_test(full, better)
    assert result["n"] == 6 and result["mean"] == pytest.approx(0.01 * (1 + 0.5 + 2))
    assert result["p"] == pytest.approx(2 / 2 ** 6)   # all six differences positive: exact two-sided p
    assert ablation.paired_test(full, full)["p"] is None
    assert ablation.paired_test(full, [dict(seed=9, fold=0, UA=0.1)]) is None


def test_unknown_setting_is_named():
    with pytest.raises(ValueError, match="nope"):
        ablation.chosen_settings("full,nope", unimodal=False)


def test_label_positives_are_chosen_by_name_only():
    assert "full-label" not in ablation.chosen_settings("all", unimodal=True)
    assert ablation.chosen_settings("full-label", unimodal=False) == {
        "full-label": dict(dist_positives="label", inst_positives="label")}


def test_the_table_can_be_limited_to_some_seeds(tiny_corpus, tmp_path):
    args = ["--data", "manifest", "--data-path", str(tiny_corpus), "--preset", "test", "--freeze-encoders",
            "--epochs", "1", "--batch-size", "8", "--num-workers", "0", "--folds", "0",
            "--settings", "full,none", "--seeds", "0,1", "--out", str(tmp_path / "a")]
    assert ablate.main(args) == 0
    assert all(len(s["runs"]) == 2 for s in ablation.ablation_summary(tmp_path / "a").values())
    only = ablation.ablation_summary(tmp_path / "a", seeds={1})
    assert all([r["seed"] for r in s["runs"]] == [1] for s in only.values())
    assert "(n=1)" in ablation.ablation_table(only)   # one pair: no p


def test_runs_of_an_earlier_ablation_json_fill_what_the_folders_lack(tiny_corpus, tmp_path):
    args = ["--data", "manifest", "--data-path", str(tiny_corpus), "--preset", "test", "--freeze-encoders",
            "--epochs", "1", "--batch-size", "8", "--num-workers", "0", "--folds", "0",
            "--settings", "full,none", "--seeds", "1", "--out", str(tmp_path / "a")]
    assert ablate.main(args) == 0
    here = ablation.ablation_summary(tmp_path / "a")
    earlier = {name: dict(runs=[dict(seed=0, fold=0, UA=0.25 + k / 10, WA=0.3), dict(s["runs"][0], UA=0.0)])
               for k, (name, s) in enumerate(here.items())}   # seed 0 is new; seed 1 clashes with a folder
    (tmp_path / "earlier.json").write_text(json.dumps(earlier))
    merged = ablation.ablation_summary(tmp_path / "a", earlier=tmp_path / "earlier.json")
    for name, s in merged.items():
        assert [(r["seed"], r["fold"]) for r in s["runs"]] == [(0, 0), (1, 0)]
        assert s["runs"][1]["UA"] == here[name]["runs"][0]["UA"]   # the folder wins over the record
        assert s["timed"] == 1 and s["seconds"] == pytest.approx(here[name]["seconds"])
    assert merged["none"]["versus_full"]["n"] == 2
    assert "(1 of 2 runs timed)" in ablation.ablation_table(merged)


def test_the_table_can_score_the_voice_only_answer(tiny_corpus, tmp_path):
    out = tmp_path / "a"
    assert ablate.main(["--data", "manifest", "--data-path", str(tiny_corpus), "--preset", "test", "--freeze-encoders",
                        "--epochs", "1", "--batch-size", "8", "--num-workers", "0", "--folds", "0",
                        "--settings", "full,speech-only,text-only", "--out", str(out)]) == 0
    full, speech_only = (json.loads((out / n / "fold-0" / "metrics.json").read_text()) for n in ("full", "speech-only"))
    voice = ablation.ablation_summary(out, answer="speech")
    assert set(voice) == {"full", "speech-only"}   # a words-only model has no voice-only answer
    assert voice["full"]["UA_mean"] == full["by_modality"]["speech"]["UA"]
    assert voice["speech-only"]["UA_mean"] == speech_only["UA"]
    assert ablation.ablation_summary(out)["full"]["UA_mean"] == full["UA"]


def test_another_ablation_is_compared_pair_by_pair_over_the_runs_both_have():
    def runs(*uas):
        return {"runs": [dict(seed=s, fold=f, UA=ua) for (s, f), ua in zip([(0, 0), (0, 1), (1, 0)], uas)]}
    here = {"full": runs(0.80, 0.70, 0.60), "none": runs(0.5)}
    frozen = {"full": {"runs": runs(0.70, 0.60)["runs"]}}            # seed 1 fold 0 never ran there
    table = ablation.versus_table(here, frozen, "frozen")
    (row,) = [line for line in table.splitlines() if line.startswith("| MGCMA")]
    assert "| 2 | 75.00 +- 5.00 | 65.00 +- 5.00 | +10.00 +- 0.00 (n=2" in row
    assert "no alignment" not in table                              # nothing to pair it with
