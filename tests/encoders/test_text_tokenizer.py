"""TextTokenizer (mgcma/encoders/tokenizer.py) against transformers' AutoTokenizer on the same files."""
import pytest
import torch
from transformers import AutoTokenizer

from mgcma.config import EMBEDDED_MINILM
from mgcma.encoders.build import resolve_source
from mgcma.encoders.tokenizer import TextTokenizer

TEXTS = ["Kids are talking by the door.", "", "I can't BELIEVE it!!! Ünïcode café [SEP] more " * 10,
         "Dogs are sitting by the door", "  spaces   and\ttabs\n"]


@pytest.fixture(scope="module")
def pair():
    path = resolve_source(EMBEDDED_MINILM)
    return TextTokenizer(path), AutoTokenizer.from_pretrained(path)


def test_a_padded_truncated_batch_has_the_same_ids_and_mask(pair):
    ours, theirs = pair
    a = ours(TEXTS, padding=True, truncation=True, max_length=16, return_tensors="pt")
    b = theirs(TEXTS, padding=True, truncation=True, max_length=16, return_tensors="pt")
    assert a["input_ids"].shape == (len(TEXTS), 16)
    assert torch.equal(a["input_ids"], b["input_ids"]) and torch.equal(a.attention_mask, b.attention_mask)


@pytest.mark.parametrize("text", TEXTS)
def test_one_text_has_the_same_ids_tokens_offsets_and_decoding(pair, text):
    ours, theirs = pair
    a, b = ours(text, return_offsets_mapping=True), theirs(text, return_offsets_mapping=True)
    assert a.input_ids == b["input_ids"]
    assert [tuple(o) for o in a["offset_mapping"]] == [tuple(o) for o in b["offset_mapping"]]
    assert ours.convert_ids_to_tokens(a.input_ids) == theirs.convert_ids_to_tokens(b["input_ids"])
    assert ours.batch_decode([a.input_ids], skip_special_tokens=True) == \
        theirs.batch_decode([b["input_ids"]], skip_special_tokens=True)


def test_unpadded_texts_of_different_lengths_are_not_one_tensor(pair):
    with pytest.raises(ValueError, match="padding=True"):
        pair[0](TEXTS[:2], return_tensors="pt")


def test_a_saved_copy_reads_back_in_both(pair, tmp_path):
    ours, theirs = pair
    ours.save_pretrained(tmp_path)
    ids = theirs(TEXTS[0])["input_ids"]
    assert TextTokenizer(tmp_path)(TEXTS[0]).input_ids == ids
    assert AutoTokenizer.from_pretrained(str(tmp_path))(TEXTS[0])["input_ids"] == ids
