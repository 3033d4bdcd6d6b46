import string

import numpy as np

from mgcma.data.records import Utterance
from mgcma.data.batching import Collator, UtteranceDataset
from mgcma.data.text_augment import TextAugmentConfig, TextAugmenter, plain

LABELS = ["neutral", "happy", "angry", "sad"]
SENTENCES = ["Fine! I'm sorry for your loss.", "What a lovely day, let's go out.",
             "I can't believe you did that again!", "Nothing happened at work today."]


def words(text):
    return plain(text).split()


def test_the_same_seed_gives_the_same_text_and_seeds_differ():
    augment = TextAugmenter.from_texts(SENTENCES)
    for seed in range(20):
        assert augment(SENTENCES[0], seed) == TextAugmenter.from_texts(SENTENCES)(SENTENCES[0], seed)
    assert len({augment(SENTENCES[2], seed) for seed in range(20)}) >= 5


def test_plain_form_is_lower_case_without_punctuation():
    assert plain("Fine! I'm SORRY, really...") == "fine i'm sorry really"
    augment = TextAugmenter.from_texts(SENTENCES, TextAugmentConfig(p_plain=1.0, p_drop=0, p_substitute=0))
    out = augment(SENTENCES[1], 3)
    assert out == "what a lovely day let's go out" and not set(out) & (set(string.punctuation) - {"'"})


def test_words_are_dropped_and_misheard_at_the_configured_rates():
    text = " ".join(f"w{i}ord" for i in range(200))
    vocabulary = ["wonder", "water", "window"]
    dropped = TextAugmenter(TextAugmentConfig(p_plain=0, p_drop=0.1, p_substitute=0), vocabulary)
    misheard = TextAugmenter(TextAugmentConfig(p_plain=0, p_drop=0, p_substitute=0.1), vocabulary)
    drop_share = np.mean([1 - len(dropped(text, s).split()) / 200 for s in range(20)])
    swaps = [misheard(text, s).split() for s in range(20)]
    swap_share = np.mean([sum(w in vocabulary for w in out) / 200 for out in swaps])
    assert 0.07 < drop_share < 0.13 and 0.07 < swap_share < 0.13
    # a misheard word is a real training word with the same first letter, in the same place
    assert all(len(out) == 200 for out in swaps)


def test_a_text_is_never_emptied():
    augment = TextAugmenter(TextAugmentConfig(p_plain=0, p_drop=1.0, p_substitute=0))
    assert [augment("Hello there", s) for s in range(5)] == ["Hello"] * 5


def test_dataset_views_read_augmented_text_but_view_zero_and_the_positives_keep_the_sentence(tokenizer):
    records = [Utterance(f"u{k}", None, SENTENCES[k], LABELS[k], "s1") for k in range(4)]
    augment = TextAugmenter.from_texts(SENTENCES, TextAugmentConfig(p_plain=1.0, p_drop=0.3))
    dataset = UtteranceDataset(records, LABELS, views=4, text_augment=augment, seed=1)
    assert len(dataset) == 16
    assert [dataset[4 * k]["text"] for k in range(4)] == SENTENCES          # view 0: as typed
    views = [dataset[4 * k + v]["text"] for k in range(4) for v in range(1, 4)]
    assert views == [dataset[4 * k + v]["text"] for k in range(4) for v in range(1, 4)]   # every visit alike
    assert sum(v != plain(SENTENCES[i // 3]) for i, v in enumerate(views)) >= 6          # words were dropped
    batch = Collator(tokenizer)([dataset[0], dataset[1], dataset[5]])
    assert batch["texts"][0] != batch["texts"][1]
    assert batch["text_keys"][0] == batch["text_keys"][1] != batch["text_keys"][2]


def test_training_loader_reads_recogniser_like_text_only_when_asked(tokenizer):
    from mgcma.model import MGCMA
    from mgcma.training.loop import make_loader, model_config
    from mgcma.training.config import TrainConfig
    records = [Utterance(f"u{k}", None, SENTENCES[k % 4], LABELS[k % 4], f"s{k}") for k in range(8)]
    for asked in (False, True):
        cfg = TrainConfig(preset="test", modality="text", augment_views=3, text_augment=asked, num_workers=0)
        model = MGCMA(model_config(cfg, LABELS))
        loader = make_loader(records, list(range(8)), model, tokenizer, cfg, shuffle=True, seed=0, training=True)
        texts = [t for epoch in range(3) for batch in (loader.batch_sampler.set_epoch(epoch), *loader)[1:]
                 for t in batch["texts"]]
        assert (set(texts) != set(SENTENCES)) == asked
        plain_loader = make_loader(records, list(range(8)), model, tokenizer, cfg, shuffle=False, seed=0)
        assert {t for batch in plain_loader for t in batch["texts"]} == set(SENTENCES)
