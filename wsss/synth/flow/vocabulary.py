"""The words a flow model understands: built from its training captions and saved inside the model.

Captions are lower-cased and split on anything that is not a letter or digit. The vocabulary also
keeps the dataset's class names (background excluded): a prompt must name at least one of them, so a
generator is never asked for an image whose label it cannot know. Both lists travel in the checkpoint
as a fixed-size byte buffer (:meth:`Vocabulary.to_buffer`), since checkpoints hold tensors only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch

from wsss.synth.prompts.lexicon import IRREGULAR_PLURALS

PAD_ID = 0  # padding, after the last token of a shorter prompt
START_ID = 1  # every prompt starts with it, so the empty prompt (classifier-free guidance) is one token
FIRST_WORD_ID = 2
_WORD = re.compile(r"[a-z0-9]+")
SINGULARS = {plural: word for word, plural in IRREGULAR_PLURALS.items()}


def tokenize(text: str) -> list[str]:
    """The words of ``text``: lower case, letters and digits only."""
    return _WORD.findall(text.lower())


@dataclass(frozen=True)
class Vocabulary:
    """Known words (ids from :data:`FIRST_WORD_ID` in this order) and the class names a prompt may name."""

    words: tuple[str, ...]
    classes: tuple[str, ...]

    @classmethod
    def from_captions(cls, captions: Iterable[str], classes: Sequence[str]) -> Vocabulary:
        """Every word of ``captions`` (sorted) plus the words of the class names."""
        words = {word for text in captions for word in tokenize(text)}
        words |= {word for name in classes for word in tokenize(name)}
        return cls(tuple(sorted(words)), tuple(classes))

    @property
    def size(self) -> int:
        """Number of token ids, padding and start included."""
        return FIRST_WORD_ID + len(self.words)

    def encode(self, prompt: str) -> list[int]:
        """Token ids of ``prompt`` (start first); ValueError naming unknown words or a prompt without a class.

        The empty prompt (only whitespace) is the unconditional prompt of classifier-free guidance.
        """
        words = tokenize(prompt)
        if not words:
            return [START_ID]
        index = {word: i for i, word in enumerate(self.words, start=FIRST_WORD_ID)}
        unknown = sorted({word for word in words if word not in index})
        if unknown:
            raise ValueError(
                f"prompt {prompt!r}: unknown words {unknown}; the model knows only: {' '.join(self.words)}"
            )
        if not any(_names(words, name) for name in self.classes):
            raise ValueError(f"prompt {prompt!r} names no class; name one of: {', '.join(self.classes)}")
        return [START_ID] + [index[word] for word in words]

    def keep_known(self, prompt: str) -> tuple[str, list[str]]:
        """``prompt`` with the words the model does not know left out (lower case, single spaces), and those words.

        For prompts written for any generator (the prompt planner's ``a photo of ...``) sent to a model
        that knows only its training captions' words; what remains must still name a class to be encoded.
        A plural the model does not know becomes its known singular (``aeroplanes`` -> ``aeroplane``,
        ``people`` -> ``person``).
        """
        known = set(self.words)
        read = [_singular(word, known) for word in tokenize(prompt)]
        dropped = sorted({word for word, kept in zip(tokenize(prompt), read) if kept is None})
        return " ".join(word for word in read if word is not None), dropped

    def classes_in(self, prompt: str) -> list[str]:
        """The class names ``prompt`` mentions, in the vocabulary's order (its image-level label)."""
        words = tokenize(prompt)
        return [name for name in self.classes if _names(words, name)]

    def batch(self, prompts: Sequence[str], max_length: int) -> torch.Tensor:
        """``(B, L)`` int64 token ids, padded with :data:`PAD_ID`; L is the longest prompt, at most ``max_length``."""
        encoded = [self.encode(prompt) for prompt in prompts]
        longest = max(len(ids) for ids in encoded)
        if longest > max_length:
            raise ValueError(
                f"a prompt has {longest - 1} words but the text encoder reads at most {max_length - 1}; "
                "shorten it or raise text_encoder.max_length in the config"
            )
        tokens = torch.full((len(encoded), longest), PAD_ID, dtype=torch.long)
        for row, ids in enumerate(encoded):
            tokens[row, : len(ids)] = torch.tensor(ids)
        return tokens

    def to_buffer(self, capacity: int) -> torch.Tensor:
        """The vocabulary as JSON bytes in a uint8 tensor of ``capacity`` (zero padded)."""
        data = json.dumps({"words": self.words, "classes": self.classes}).encode("utf-8")
        if len(data) > capacity:
            raise ValueError(
                f"the vocabulary ({len(self.words)} words) takes {len(data)} bytes but the model keeps "
                f"{capacity}; raise text_encoder.vocab_bytes in the config"
            )
        buffer = torch.zeros(capacity, dtype=torch.uint8)
        buffer[: len(data)] = torch.frombuffer(bytearray(data), dtype=torch.uint8)
        return buffer

    @classmethod
    def from_buffer(cls, buffer: torch.Tensor) -> Vocabulary | None:
        """The vocabulary a buffer of :meth:`to_buffer` holds; None for an empty (all-zero) buffer."""
        data = bytes(buffer.cpu().numpy().tobytes()).rstrip(b"\0")
        if not data:
            return None
        table = json.loads(data.decode("utf-8"))
        return cls(tuple(table["words"]), tuple(table["classes"]))


def _singular(word: str, known: set[str]) -> str | None:
    """``word`` when known, else its singular when that is known (``people`` -> ``person``: the planner's
    irregular plurals; else without ``s`` / ``es``, ``ies`` -> ``y``), else None."""
    forms = (word, SINGULARS.get(word), word[:-1] if word.endswith("s") else None,
             word[:-2] if word.endswith("es") else None, word[:-3] + "y" if word.endswith("ies") else None)  # fmt: skip
    for form in forms:
        if form and form in known:
            return form
    return None


def _names(words: Sequence[str], class_name: str) -> bool:
    """Whether the word sequence contains the (possibly multi-word) class name."""
    target = tokenize(class_name)
    return any(list(words[i : i + len(target)]) == target for i in range(len(words) - len(target) + 1))
