"""Which question to ask next: the paper's rule-based scores over the belief graph.

- attribute question (entity e, attribute a): ``importance(e) * importance(a) * p(e) * H(a)``;
- relation question r: ``importance(r) * H(r)``;
- yes/no mode, one question per candidate v: ``importance(e) * importance(a) * p(v) (1 - p(v))`` for
  attributes, ``importance(r) * p(v) (1 - p(v))`` for relations (highest when the agent is unsure
  whether v holds).

H is the entropy of the candidates (nats). Pinned (answered) attributes and relations are skipped
(their entropy counts as 0), and so is everything about an entity with probability 0 (excluded).
Ties go to the first in graph order, so the ranking is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wsss.synth.prompts.graph import BeliefGraph
from wsss.synth.prompts.stats import entropy

SHOWN_CANDIDATES = 5


@dataclass(frozen=True)
class Question:
    """About ``entity``'s attribute or relation ``name`` (``kind`` attribute|relation); ``value`` in yes/no mode."""

    kind: str
    entity: str
    name: str
    score: float
    value: str | None = None

    def text(self, graph: BeliefGraph) -> str:
        """The question as shown to a user, with the top candidates and their probabilities."""
        candidates = candidates_of(graph, self)
        if self.value is not None:
            return (
                f"{self.entity} {self.name}: is it {self.value}? (p = {candidates[self.value]:.2f}; yes/no)"
            )
        top = sorted(candidates.items(), key=lambda kv: -kv[1])[:SHOWN_CANDIDATES]
        shown = ", ".join(f"{value} {p:.2f}" for value, p in top)
        rest = f" (+{len(candidates) - len(top)} more)" if len(candidates) > len(top) else ""
        return f"{self.entity} {self.name}? {shown}{rest}, or unknown"


def candidates_of(graph: BeliefGraph, question: Question) -> dict[str, float]:
    """The candidate distribution a question is about."""
    if question.kind == "attribute":
        return graph.entities[question.entity].attributes[question.name].candidates
    return graph.relations[(question.entity, question.name)].candidates


def rank_questions(graph: BeliefGraph, yes_no: bool = False) -> list[Question]:
    """Every question still open, highest score first."""
    questions: list[Question] = []
    for entity, attribute in graph.iter_attributes():
        if attribute.pinned or entity.probability <= 0:
            continue
        weight = entity.importance * attribute.importance
        if yes_no:
            questions += [Question("attribute", entity.name, attribute.name, weight * p * (1 - p), v)
                          for v, p in attribute.candidates.items()]  # fmt: skip
        else:
            questions.append(Question("attribute", entity.name, attribute.name,
                                      weight * entity.probability * entropy(attribute.candidates)))  # fmt: skip
    for relation in graph.relations.values():
        subject = graph.entities.get(relation.subject)
        if relation.pinned or (subject is not None and subject.probability <= 0):
            continue
        if yes_no:
            questions += [Question("relation", relation.subject, relation.kind, relation.importance * p * (1 - p), v)
                          for v, p in relation.candidates.items()]  # fmt: skip
        else:
            questions.append(Question("relation", relation.subject, relation.kind,
                                      relation.importance * entropy(relation.candidates)))  # fmt: skip
    order = sorted(range(len(questions)), key=lambda i: (-questions[i].score, i))
    return [questions[i] for i in order]


def next_question(graph: BeliefGraph, rule: str = "entropy", rng: np.random.Generator | None = None,
                  yes_no: bool = False) -> Question | None:  # fmt: skip
    """The question to ask: the top-ranked (``entropy``) or a uniformly random open one (``random``); None when done."""
    questions = rank_questions(graph, yes_no)
    if not questions:
        return None
    if rule == "entropy":
        return questions[0]
    if rule == "random":
        return questions[int((rng or np.random.default_rng()).integers(len(questions)))]
    raise ValueError(f"question rule {rule!r}; known: entropy, random")
