"""The answer grammar, and how an answer changes (pins) the belief.

An answer to "boat colour?" or "boat context?" is one of:

- one value: ``red``; several values: ``red, blue`` or ``red or blue`` (uniform over them);
- a target mixture: ``water 0.3, grass 0.7`` (every item with a number >= 0; weights that do not sum
  to 1 are divided by their sum, with a warning saying so);
- ``unknown`` (or an empty answer, ``skip``, ``?``): no change, the question stays open;
- ``absent``: the entity is not wanted (probability 0; nothing about it is asked again).

Answer files (YAML or JSON) map entities to ``{attribute or relation: answer}``, e.g.
``{"boat": {"colour": "red", "context": "water 0.3, grass 0.7"}, "train": "absent"}``; an answer
there may also be a list (uniform) or a mapping ``{value: weight}`` (a mixture). Keys may be flat,
``"boat.colour": "red"``. An unknown entity, attribute or value is a one-line error naming it and
the known ones.

An answered attribute or relation is *pinned*: its candidates become the answer's distribution and
no question is asked about it again. Answering about an entity confirms it (probability 1), and a
relation answered with one object confirms that object too. Yes/no answers (:func:`apply_yes_no`):
yes makes the asked value certain; no sets it to 0 and renormalises the others (uniform over them
when they were all 0), pinning only when one value is left.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from wsss.synth.prompts.graph import NONE, Attribute, BeliefGraph, Relation
from wsss.synth.prompts.questions import Question
from wsss.synth.prompts.stats import normalise

SKIP_WORDS = frozenset({"", "unknown", "skip", "?", "don't know", "dont know"})
ABSENT = "absent"
SUM_TOLERANCE = 1e-6
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)%?")


class AnswerWarning(UserWarning):
    """An answer was accepted after a fix (a mixture not summing to 1 was normalised)."""


def _known(names: Sequence[str]) -> str:
    return ", ".join(names)


def _check_value(value: str, candidates: Sequence[str], where: str) -> str:
    value = value.strip().lower()
    if value not in candidates:
        raise ValueError(f"{where}: unknown value {value!r}; known: {_known(candidates)}")
    return value


def _number(text: str, where: str) -> float:
    try:
        number = float(text[:-1]) / 100.0 if text.endswith("%") else float(text)
    except ValueError:
        raise ValueError(f"{where}: {text!r} is not a number") from None
    if number < 0:
        raise ValueError(f"{where}: weight {text} is negative; give weights >= 0")
    return number


def _mixture(weights: Mapping[str, float], where: str) -> dict[str, float]:
    total = sum(weights.values())
    if total <= 0:
        raise ValueError(f"{where}: the weights sum to 0; give at least one positive weight")
    if abs(total - 1.0) > SUM_TOLERANCE:
        warnings.warn(f"{where}: weights sum to {total:g}, not 1; divided by {total:g}",
                      AnswerWarning, stacklevel=3)  # fmt: skip
    return normalise(weights)


def parse_answer(answer: Any, candidates: Sequence[str], where: str) -> dict[str, float] | str | None:
    """A distribution over (some of) ``candidates``, :data:`ABSENT`, or None (unknown); see the grammar."""
    if answer is None:  # an empty YAML value
        return None
    if isinstance(answer, Mapping):
        weights: dict[str, float] = {}
        for value, weight in answer.items():
            key = _check_value(str(value), candidates, where)
            weights[key] = weights.get(key, 0.0) + _number(str(weight), where)
        return _mixture(weights, where)
    if isinstance(answer, (list, tuple)):
        values = [_check_value(str(v), candidates, where) for v in answer]
        if not values:
            return None
        return {v: 1.0 / len(set(values)) for v in dict.fromkeys(values)}
    text = str(answer).strip().lower()
    if text in SKIP_WORDS:
        return None
    if text == ABSENT:
        return ABSENT
    items = [item.strip() for part in text.split(",") for item in part.split(" or ")]
    items = [item for item in items if item]
    parsed = []
    for item in items:
        head, _, tail = item.rpartition(" ")
        weight = None
        if head and _NUMBER.fullmatch(tail):
            item, weight = head.strip(), _number(tail, where)
        parsed.append((_check_value(item, candidates, where), weight))
    with_weight = [w is not None for _, w in parsed]
    if any(with_weight) and not all(with_weight):
        raise ValueError(
            f"{where}: {answer!r} gives weights to some values only; weigh all (water 0.3, grass 0.7) or none"
        )
    if all(with_weight):
        weights = {}
        for value, weight in parsed:
            weights[value] = weights.get(value, 0.0) + float(weight)
        return _mixture(weights, where)
    values = list(dict.fromkeys(value for value, _ in parsed))
    return {v: 1.0 / len(values) for v in values}


def target(graph: BeliefGraph, entity: str, name: str) -> Attribute | Relation:
    """The attribute or relation ``name`` of ``entity``; errors name it and list the known ones."""
    if entity not in graph.entities:
        raise ValueError(f"unknown entity {entity!r}; known: {_known(list(graph.entities))}")
    relation = graph.relations.get((entity, name))
    if relation is not None:
        return relation
    attributes = graph.entities[entity].attributes
    if name not in attributes:
        known = [*attributes, *(kind for (subject, kind) in graph.relations if subject == entity)]
        raise ValueError(f"unknown attribute {name!r} of {entity}; known: {_known(known) or 'none'}")
    return attributes[name]


def exclude(graph: BeliefGraph, entity: str) -> None:
    """The entity is not wanted: probability 0 and its own questions closed."""
    if entity not in graph.entities:
        raise ValueError(f"unknown entity {entity!r}; known: {_known(list(graph.entities))}")
    graph.entities[entity].probability = 0.0
    for attribute in graph.entities[entity].attributes.values():
        attribute.pinned = True
    for (subject, _kind), relation in graph.relations.items():
        if subject == entity:
            relation.pinned = True


def pin(graph: BeliefGraph, entity: str, name: str, distribution: Mapping[str, float]) -> None:
    """Set the candidates of ``entity.name`` to ``distribution`` (others 0) and pin it; confirms the entity."""
    item = target(graph, entity, name)
    item.candidates = {v: float(distribution.get(v, 0.0)) for v in item.candidates}
    item.pinned = True
    graph.entities[entity].probability = 1.0
    chosen = [v for v, p in distribution.items() if p > 0]
    if isinstance(item, Relation) and len(chosen) == 1 and chosen[0] != NONE and chosen[0] in graph.entities:
        graph.entities[chosen[0]].probability = 1.0


def answer(graph: BeliefGraph, entity: str, name: str, reply: Any) -> bool:
    """Apply one answer in the grammar above; True when the belief changed."""
    item = target(graph, entity, name)
    parsed = parse_answer(reply, list(item.candidates), f"{entity}.{name}")
    if parsed is None:
        return False
    if parsed == ABSENT:
        exclude(graph, entity)
    else:
        pin(graph, entity, name, parsed)
    return True


def close(graph: BeliefGraph, question: Question) -> None:
    """Stop asking ``question`` (the user does not know) without changing the belief."""
    target(graph, question.entity, question.name).pinned = True


def apply_yes_no(graph: BeliefGraph, question: Question, yes: bool) -> None:
    """Yes: the asked value becomes certain (pinned). No: it becomes 0 and the rest is renormalised."""
    item = target(graph, question.entity, question.name)
    if question.value not in item.candidates:
        raise ValueError(f"{question.entity}.{question.name}: unknown value {question.value!r}")
    if yes:
        pin(graph, question.entity, question.name, {question.value: 1.0})
        return
    rest = {v: p for v, p in item.candidates.items() if v != question.value}
    total = sum(rest.values())
    rest = {v: (p / total if total > 0 else 1.0 / len(rest)) for v, p in rest.items()}
    item.candidates = {v: rest.get(v, 0.0) for v in item.candidates}
    item.pinned = sum(p > 0 for p in rest.values()) <= 1


def parse_yes_no(text: str) -> bool | None:
    """True for y/yes, False for n/no, None for anything else (ask again)."""
    word = text.strip().lower()
    return True if word in ("y", "yes") else False if word in ("n", "no") else None


def apply_answers(graph: BeliefGraph, answers: Mapping[str, Any], where: str = "answers") -> int:
    """Apply an answers mapping (see the module docstring); returns how many answers changed the belief."""
    if not isinstance(answers, Mapping):
        raise ValueError(f"{where}: must map entities to answers, e.g. boat: {{colour: red}}")
    changed = 0
    for key, value in answers.items():
        key = str(key)
        if "." in key and key not in graph.entities:
            entity, name = key.split(".", 1)
            items: Mapping[str, Any] = {name: value}
        else:
            entity = key
            if isinstance(value, str) and value.strip().lower() == ABSENT:
                exclude(graph, entity)
                changed += 1
                continue
            if not isinstance(value, Mapping):
                raise ValueError(f"{where}: {key}: give {{attribute: answer}} or 'absent', got {value!r}")
            items = value
        for name, reply in items.items():
            try:
                changed += answer(graph, entity, str(name), reply)
            except ValueError as err:
                raise ValueError(f"{where}: {err}") from None
    return changed
