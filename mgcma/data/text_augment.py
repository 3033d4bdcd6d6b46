"""Training text as a speech recogniser may hand it over: lower case without punctuation, words
missed, words misheard. The app's words are Whisper's transcript, not what someone typed.

Every call is seeded (a training row's augmented view is the same text on every visit), so a
frozen text encoder's output can be cached per view as the audio views are.
"""
from __future__ import annotations

import random
import re
from collections import defaultdict
from dataclasses import dataclass

WORD = re.compile(r"[a-z0-9']+")


@dataclass(frozen=True)
class TextAugmentConfig:
    p_plain: float = 0.5         # lower case, no punctuation (as Whisper sometimes writes)
    p_drop: float = 0.08         # each word missed
    p_substitute: float = 0.08   # each word misheard: another training word with the same first letter


def plain(text: str) -> str:
    """Lower case, punctuation dropped (apostrophes kept: "don't")."""
    return " ".join(WORD.findall(text.lower()))


class TextAugmenter:
    """`augmenter(text, seed)` -> a recogniser-like variant of `text`, never empty. Substitutes come
    from `vocabulary` (the training texts' words), so a misheard word is still a real word."""

    def __init__(self, config: TextAugmentConfig = TextAugmentConfig(), vocabulary: list[str] = ()):
        self.config = config
        self.by_initial = defaultdict(list)
        for word in sorted(set(vocabulary)):
            self.by_initial[word[0]].append(word)

    @classmethod
    def from_texts(cls, texts, config: TextAugmentConfig = TextAugmentConfig()) -> "TextAugmenter":
        return cls(config, [w for t in texts for w in WORD.findall(t.lower()) if len(w) > 1])

    def __call__(self, text: str, seed: int) -> str:
        c, rng = self.config, random.Random(seed)
        words = plain(text).split() if rng.random() < c.p_plain else text.split()
        out = []
        for word in words:
            draw = rng.random()
            if draw < c.p_drop:
                continue
            if draw < c.p_drop + c.p_substitute:
                word = self.misheard(word, rng)
            out.append(word)
        return " ".join(out or words[:1])

    def misheard(self, word: str, rng: random.Random) -> str:
        candidates = self.by_initial.get(word[:1].lower())
        return rng.choice(candidates) if candidates else word
