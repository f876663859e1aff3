"""The belief graph: entities with attributes, relations between entities, and its JSON form.

As in the proactive text-to-image agents paper: an *entity* (a class, or a context / background
such as water or a room) has an importance in [0, 1], a probability of appearing and attributes; an
*attribute* has an importance and candidates with probabilities summing to 1; a *relation* links
a subject class to candidate objects, here two kinds: ``context`` (where the class is: a context
name or ``none``) and ``with`` (which other class is beside it, or ``none``). A *pinned* attribute
or relation was answered by the user: questions skip it (its entropy counts as 0).
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from wsss.fileio import write_json_atomic

GRAPH_VERSION = 1
NONE = "none"  # the relation candidate "no such object"
RELATION_KINDS = ("context", "with")
ENTITY_KINDS = ("class", "context")


@dataclass
class Attribute:
    """An attribute of an entity: candidates ``{value: probability}``; ``pinned`` once answered."""

    name: str
    importance: float
    candidates: dict[str, float]
    pinned: bool = False


@dataclass
class Entity:
    """A class or a context: ``phrase`` is how a prompt names it, ``scene`` a context-only prompt."""

    name: str
    kind: str
    importance: float
    probability: float
    phrase: str
    scene: str = ""
    attributes: dict[str, Attribute] = field(default_factory=dict)


@dataclass
class Relation:
    """``subject`` -> one of ``candidates`` (kind ``context`` or ``with``).

    ``npmi`` holds the normalised PMI of subject and each candidate object (image co-occurrence),
    ``prepositions`` the word joining subject and context in prompts (``boat on the water``).
    """

    subject: str
    kind: str
    importance: float
    candidates: dict[str, float]
    npmi: dict[str, float] = field(default_factory=dict)
    prepositions: dict[str, str] = field(default_factory=dict)
    pinned: bool = False

    @property
    def name(self) -> str:
        return f"{self.subject}.{self.kind}"


@dataclass
class BeliefGraph:
    """Entities by name, relations by (subject, kind), and where the graph came from (``meta``)."""

    entities: dict[str, Entity]
    relations: dict[tuple[str, str], Relation]
    meta: dict[str, Any] = field(default_factory=dict)

    def classes(self) -> list[Entity]:
        return [e for e in self.entities.values() if e.kind == "class"]

    def contexts(self) -> list[Entity]:
        return [e for e in self.entities.values() if e.kind == "context"]

    def iter_attributes(self) -> Iterator[tuple[Entity, Attribute]]:
        for entity in self.entities.values():
            for attribute in entity.attributes.values():
                yield entity, attribute

    def copy(self) -> BeliefGraph:
        return copy.deepcopy(self)

    # --- JSON --------------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "version": GRAPH_VERSION,
            "meta": self.meta,
            "entities": [asdict(e) | {"attributes": [asdict(a) for a in e.attributes.values()]}
                         for e in self.entities.values()],
            "relations": [asdict(r) for r in self.relations.values()],
        }  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BeliefGraph:
        if data.get("version") != GRAPH_VERSION:
            raise ValueError(f"belief graph version {data.get('version')!r}, expected {GRAPH_VERSION}")
        entities = {}
        for raw in data["entities"]:
            attributes = {a["name"]: Attribute(**a) for a in raw["attributes"]}
            entities[raw["name"]] = Entity(**{**raw, "attributes": attributes})
        relations = {(r["subject"], r["kind"]): Relation(**r) for r in data["relations"]}
        return cls(entities, relations, dict(data.get("meta", {})))


def save_graph(graph: BeliefGraph, path: str | os.PathLike) -> None:
    """Write the graph as JSON, atomically."""
    write_json_atomic(path, graph.to_json())


def load_graph(path: str | os.PathLike) -> BeliefGraph:
    """Read a graph written by :func:`save_graph`; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: belief graph not found; write one with tools/plan_prompts.py --graph-out"
        )
    try:
        return BeliefGraph.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{path}: not a belief graph ({type(err).__name__}: {err})") from None
