"""The words the planner reads in captions and writes in prompts: contexts, attribute values, class synonyms.

Everything is data, so a dataset with other backgrounds or words extends it with a JSON/YAML file
(:func:`load_lexicon`) instead of code. The default lexicon:

- **contexts** (background entities): ``water, rails, grass, sky, road, indoor, snow, beach, trees,
  runway``, each with the caption words that signal it (``water``: water, lake, sea, river, ...),
  the noun phrase a prompt uses (``the water``), the preposition used when a caption gives none
  (``on``) and the phrase of a context-only prompt (``a lake with no objects``);
- **attributes** of classes: ``colour`` (12 colour names), ``size`` (small / large, with synonyms
  such as tiny, big) and ``count`` (one, two, three, many; read from number words, plurals and
  repeated mentions);
- **synonyms** of VOC and COCO class names (``aeroplane``: airplane, plane, jet, ...). Every class
  is also found by its own name, with ``_`` read as a space; plurals add ``s``/``es``.

A lexicon file has the same keys as :data:`DEFAULT_LEXICON` (``contexts``, ``colours``, ``sizes``,
``synonyms``, ``prepositions``); its entries are added to (or replace, per name) the defaults.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

COUNT_VALUES: tuple[str, ...] = ("one", "two", "three", "many")
NUMBER_WORDS: dict[str, int] = {"one": 1, "a": 1, "an": 1, "two": 2, "pair": 2, "three": 3, "four": 4, "five": 5,
                                "six": 6, "several": 4, "many": 4, "some": 4, "multiple": 4, "few": 3}  # fmt: skip


@dataclass(frozen=True)
class Context:
    """A background entity: the words that signal it, and how prompts say it."""

    words: tuple[str, ...]
    phrase: str
    preposition: str
    scene: str


@dataclass
class Lexicon:
    """All the words the planner knows; see the module docstring."""

    contexts: dict[str, Context]
    colours: tuple[str, ...]
    sizes: dict[str, tuple[str, ...]]
    synonyms: dict[str, tuple[str, ...]]
    prepositions: tuple[str, ...]
    counts: tuple[str, ...] = COUNT_VALUES
    _size_of: dict[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._size_of = {word: name for name, words in self.sizes.items() for word in (name, *words)}

    def attribute_values(self) -> dict[str, tuple[str, ...]]:
        """``{attribute: candidate values}`` of class entities."""
        return {"colour": self.colours, "size": tuple(self.sizes), "count": self.counts}

    def size_of(self, word: str) -> str | None:
        """The canonical size a word means (``big`` -> ``large``), or None."""
        return self._size_of.get(word)

    def class_phrases(self, name: str) -> list[tuple[str, ...]]:
        """Token sequences that name class ``name`` (singular forms), longest first."""
        forms = {tokens(name.replace("_", " ")), tokens(name)}
        forms |= {tokens(word) for word in self.synonyms.get(name, ())}
        return sorted((f for f in forms if f), key=len, reverse=True)


def tokens(text: str) -> tuple[str, ...]:
    """Lower-case word tokens of ``text`` (letters only)."""
    return tuple(re.findall(r"[a-z]+", text.lower()))


DEFAULT_LEXICON: dict[str, Any] = {
    "contexts": {
        "water": {
            "words": ["water", "lake", "sea", "river", "ocean", "harbour", "harbor", "pond", "waves"],
            "phrase": "the water",
            "preposition": "on",
            "scene": "a lake with no objects",
        },
        "rails": {
            "words": ["rails", "rail", "tracks", "track", "railway", "railroad"],
            "phrase": "rails",
            "preposition": "on",
            "scene": "railway tracks with no objects",
        },
        "grass": {
            "words": ["grass", "field", "lawn", "meadow", "pasture", "grassy"],
            "phrase": "the grass",
            "preposition": "on",
            "scene": "a grassy field with no objects",
        },
        "sky": {
            "words": ["sky", "clouds", "cloudy"],
            "phrase": "the sky",
            "preposition": "in",
            "scene": "an empty sky",
        },
        "road": {
            "words": ["road", "street", "highway", "parking lot"],
            "phrase": "the road",
            "preposition": "on",
            "scene": "an empty road",
        },
        "indoor": {
            "words": ["room", "kitchen", "indoors", "indoor", "living room", "bedroom", "bathroom", "office"],
            "phrase": "a room",
            "preposition": "in",
            "scene": "an empty room",
        },
        "snow": {
            "words": ["snow", "snowy", "ski slope"],
            "phrase": "the snow",
            "preposition": "in",
            "scene": "a snowy landscape with no objects",
        },
        "beach": {
            "words": ["beach", "sand", "sandy"],
            "phrase": "the beach",
            "preposition": "on",
            "scene": "an empty beach",
        },
        "trees": {
            "words": ["trees", "tree", "forest", "woods"],
            "phrase": "trees",
            "preposition": "by",
            "scene": "a forest with no objects",
        },
        "runway": {
            "words": ["runway", "airport", "tarmac"],
            "phrase": "a runway",
            "preposition": "on",
            "scene": "an empty runway",
        },
    },  # fmt: skip
    "colours": [
        "red",
        "orange",
        "yellow",
        "green",
        "cyan",
        "blue",
        "purple",
        "pink",
        "brown",
        "white",
        "grey",
        "black",
    ],  # fmt: skip
    "sizes": {"small": ["little", "tiny"], "large": ["big", "huge", "giant"]},
    "synonyms": {
        "aeroplane": ["airplane", "plane", "jet", "aircraft"],
        "airplane": ["aeroplane", "plane", "jet"],
        "bicycle": ["bike"],
        "motorbike": ["motorcycle"],
        "motorcycle": ["motorbike"],
        "person": ["man", "woman", "people", "child", "boy", "girl", "men", "women", "persons", "kid"],
        "diningtable": ["dining table", "table"],
        "dining table": ["table"],
        "pottedplant": ["potted plant", "plant", "houseplant"],
        "potted plant": ["plant", "houseplant"],
        "tvmonitor": ["tv", "monitor", "television"],
        "tv": ["television", "monitor"],
        "sofa": ["couch"],
        "couch": ["sofa"],
        "boat": ["ship"],
        "cell phone": ["phone"],
    },  # fmt: skip
    "prepositions": ["on", "in", "by", "near", "over", "under", "beside", "at", "across", "along", "above"],
}

# Irregular plurals of class words; other words add "s" or "es".
IRREGULAR_PLURALS = {"person": "people", "man": "men", "woman": "women", "child": "children", "sheep": "sheep",
                     "mouse": "mice", "knife": "knives", "bus": "buses", "glass": "glasses"}  # fmt: skip


def plural(word: str) -> str:
    """The plural of a (last) word: irregular ones from a table, else ``s``/``es``."""
    if word in IRREGULAR_PLURALS:
        return IRREGULAR_PLURALS[word]
    if word.endswith(("s", "x", "ch", "sh")):
        return word + "es"
    if word.endswith("y") and word[-2:-1] not in ("a", "e", "o", "u"):
        return word[:-1] + "ies"
    return word + "s"


def make_lexicon(spec: Mapping[str, Any] | None = None) -> Lexicon:
    """A :class:`Lexicon` from the defaults updated by ``spec`` (same keys; per-name replacement)."""
    merged: dict[str, Any] = {key: (dict(value) if isinstance(value, dict) else value)
                              for key, value in DEFAULT_LEXICON.items()}  # fmt: skip
    for key, value in (spec or {}).items():
        if key not in DEFAULT_LEXICON:
            raise ValueError(f"lexicon: unknown key {key!r}; known: {', '.join(DEFAULT_LEXICON)}")
        if isinstance(DEFAULT_LEXICON[key], dict):
            if not isinstance(value, Mapping):
                raise ValueError(f"lexicon: {key!r} must be a mapping of names")
            merged[key].update(value)
        else:
            merged[key] = list(dict.fromkeys([*merged[key], *value]))
    try:
        contexts = {
            name: Context(tuple(c["words"]), str(c.get("phrase", name)),
                          str(c.get("preposition", "with")), str(c.get("scene", f"{name} with no objects")))
            for name, c in merged["contexts"].items()
        }  # fmt: skip
    except (KeyError, TypeError) as err:
        raise ValueError(f"lexicon: every context needs a list of 'words' ({err})") from None
    return Lexicon(
        contexts=contexts,
        colours=tuple(merged["colours"]),
        sizes={name: tuple(words) for name, words in merged["sizes"].items()},
        synonyms={name: tuple(words) for name, words in merged["synonyms"].items()},
        prepositions=tuple(merged["prepositions"]),
    )


def read_mapping_file(path: str | os.PathLike, what: str) -> Any:
    """The contents of a JSON or YAML file (by suffix; YAML also reads JSON); errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {what} file not found")
    import yaml

    text = path.read_text(encoding="utf-8")
    try:
        return json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ValueError(f"{path}: cannot read the {what} ({reason}); write JSON or YAML") from None


def load_lexicon(path: str | os.PathLike | None) -> Lexicon:
    """The default lexicon, extended by a JSON/YAML file when ``path`` is given."""
    if path is None:
        return make_lexicon()
    spec = read_mapping_file(path, "lexicon")
    if not isinstance(spec, Mapping):
        raise ValueError(f"{path}: a lexicon file holds a mapping with keys {', '.join(DEFAULT_LEXICON)}")
    try:
        return make_lexicon(spec)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
