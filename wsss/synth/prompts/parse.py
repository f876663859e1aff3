"""What a caption says about classes and contexts: mentions, their colour / size / count words, prepositions.

A rule-based reader (no language model): a caption is lower-cased into word tokens; class names
(with synonyms and plurals) and context words of the :class:`~wsss.synth.prompts.lexicon.Lexicon`
are matched longest first, left to right. The words of a class mention's noun phrase are the up to
four tokens before it, stopping at a conjunction, a preposition or another match: colour and size
words there are that mention's attributes, and a number word (``two``), an article (one) or a
plural noun without a number (many) gives its count. A caption's count of a class is the sum over
its mentions (``a boat beside a boat`` is two). A context's preposition is the word before it
(skipping an article), kept when it is one of the lexicon's prepositions, and belongs to the
nearest class mentioned before the context. Adjacent names of one class (``jet airplane``) are one
mention.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from wsss.synth.prompts.lexicon import COUNT_VALUES, NUMBER_WORDS, Lexicon, plural, tokens

# Tokens that end a noun phrase when reading back from a class word.
_PHRASE_BREAKS = frozenset({"and", "or", "with", "of", "beside", "behind", "next", "to", "while", "picture",
                            "photo", "image", "is", "are", "there"})  # fmt: skip
_ARTICLES = frozenset({"a", "an", "the"})
_WINDOW = 4


def count_value(n: int) -> str:
    """The count candidate of ``n`` objects: one, two, three or many (4 and more)."""
    return COUNT_VALUES[min(max(n, 1), len(COUNT_VALUES)) - 1]


@dataclass
class ClassFacts:
    """What one caption says about one class: its mentions and the attribute words of each."""

    mentions: int = 0
    colours: list[str] = field(default_factory=list)
    sizes: list[str] = field(default_factory=list)
    objects: int = 0

    @property
    def count(self) -> str:
        return count_value(self.objects)


@dataclass
class CaptionFacts:
    """Classes and contexts one caption names; ``prepositions`` maps (class, context) to the word linking them."""

    classes: dict[str, ClassFacts] = field(default_factory=dict)
    contexts: Counter = field(default_factory=Counter)
    prepositions: dict[tuple[str, str], str] = field(default_factory=dict)


class CaptionReader:
    """Reads captions against a class list and a lexicon (the matcher is built once)."""

    def __init__(self, class_names: Sequence[str], lexicon: Lexicon):
        self.lexicon = lexicon
        phrases: dict[tuple[str, ...], tuple[str, str, bool]] = {}
        for name in class_names:
            for form in lexicon.class_phrases(name):
                phrases.setdefault(form, ("class", name, False))
                phrases.setdefault((*form[:-1], plural(form[-1])), ("class", name, True))
        for name, context in lexicon.contexts.items():
            for word in (name, *context.words):
                phrases.setdefault(tokens(word), ("context", name, False))
        self._phrases = phrases
        self._longest = max((len(p) for p in phrases), default=1)
        self._colours = frozenset(lexicon.colours)
        self._stops = _PHRASE_BREAKS | frozenset(lexicon.prepositions)

    def _matches(self, toks: tuple[str, ...]) -> list[tuple[int, int, str, str, bool]]:
        found, i = [], 0
        while i < len(toks):
            for length in range(min(self._longest, len(toks) - i), 0, -1):
                hit = self._phrases.get(toks[i : i + length])
                if hit is not None:
                    found.append((i, i + length, *hit))
                    i += length
                    break
            else:
                i += 1
        return found

    def read(self, caption: str) -> CaptionFacts:
        """The facts of one caption."""
        toks = tokens(caption)
        facts = CaptionFacts()
        matches = self._matches(toks)
        taken = {k for start, end, *_ in matches for k in range(start, end)}
        last_class, last_end = None, -1
        for start, end, kind, name, is_plural in matches:
            if kind == "context":
                facts.contexts[name] += 1
                word = self._preposition(toks, start)
                if last_class is not None and word is not None:
                    facts.prepositions.setdefault((last_class, name), word)
                continue
            if name == last_class and start == last_end:  # a compound such as "jet airplane": one mention
                last_end = end
                continue
            last_class, last_end = name, end
            entry = facts.classes.setdefault(name, ClassFacts())
            entry.mentions += 1
            number = None
            for j in range(start - 1, max(-1, start - 1 - _WINDOW), -1):
                word = toks[j]
                if j in taken or word in self._stops:
                    break
                if word in self._colours:
                    entry.colours.append(word)
                elif self.lexicon.size_of(word) is not None:
                    entry.sizes.append(self.lexicon.size_of(word))
                elif word in NUMBER_WORDS and number is None:
                    number = NUMBER_WORDS[word]
            entry.objects += number if number is not None else (4 if is_plural else 1)
        return facts

    def _preposition(self, toks: tuple[str, ...], start: int) -> str | None:
        j = start - 1
        if j >= 0 and toks[j] in _ARTICLES:
            j -= 1
        return toks[j] if j >= 0 and toks[j] in self.lexicon.prepositions else None


@dataclass
class ImageFacts:
    """One image: the facts of each caption, and its labelled classes when labels exist."""

    image_id: str
    captions: list[CaptionFacts]
    labels: frozenset[str] | None = None

    @property
    def classes(self) -> frozenset[str]:
        """Classes present: the labels when given, else every class a caption names."""
        if self.labels is not None:
            return self.labels
        return frozenset(name for c in self.captions for name in c.classes)

    @property
    def contexts(self) -> Counter:
        """``{context: mentions over all captions}``."""
        total: Counter = Counter()
        for caption in self.captions:
            total.update(caption.contexts)
        return total


def read_images(captions: Mapping[str, Sequence[str]], reader: CaptionReader,
                labels: Mapping[str, Sequence[str]] | None = None) -> list[ImageFacts]:  # fmt: skip
    """:class:`ImageFacts` of every image: captioned ones, plus labelled images without captions."""
    ids = list(captions) + [i for i in (labels or {}) if i not in captions]
    return [
        ImageFacts(image_id, [reader.read(text) for text in captions.get(image_id, ())],
                   None if labels is None or image_id not in labels else frozenset(labels[image_id]))
        for image_id in ids
    ]  # fmt: skip
