"""Self-play: how fast questions move the belief toward held-out truth (the paper's progress metric).

A graph is built on the training captions; every held-out image gives a *true graph*: its classes
and contexts, per class the values its captions state (colour and size: uniform over the distinct
values stated, one per object; count: the most frequent per-caption count) and its relations
(``context``: uniform over the image's contexts, else ``none``; ``with``: uniform over its other
classes, else ``none``). The session starts as a user's prompt would: the image's classes are named
(probability 1, every other class excluded and ``with`` renormalised over the named ones). A
simulated user then answers each question from the truth (the stated values, ``unknown`` for an
attribute its captions never state).

The score after each question is the importance-weighted negative log-likelihood of the truth
under the belief, with the importances of the prior graph:
``sum_e w_e (-log p(e)) + sum_(e,a) w_e w_a H(q_a, p_a) + sum_r w_r H(q_r, p_r)``, summed over the
true entities, their stated attributes and their relations, where ``H(q, p) = -sum_v q(v) log p(v)``
(cross-entropy; ``-log p(true value)`` for a single value) and probabilities are floored at 1e-10.
The question order is the entropy rule of :mod:`wsss.synth.prompts.questions` or uniformly random.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from wsss.synth.prompts.answers import answer, close, exclude
from wsss.synth.prompts.graph import NONE, BeliefGraph
from wsss.synth.prompts.parse import ImageFacts
from wsss.synth.prompts.questions import Question, next_question

FLOOR = 1e-10
RULES = ("entropy", "random")


@dataclass
class TrueGraph:
    """What one held-out image holds: entities, ``{(entity, attribute): q}`` and ``{(subject, kind): q}``."""

    image_id: str
    classes: list[str]
    contexts: list[str]
    attributes: dict[tuple[str, str], dict[str, float]] = field(default_factory=dict)
    relations: dict[tuple[str, str], dict[str, float]] = field(default_factory=dict)


def _uniform(values: Sequence[str]) -> dict[str, float]:
    values = sorted(set(values))
    return {v: 1.0 / len(values) for v in values}


def true_graph(image: ImageFacts, graph: BeliefGraph) -> TrueGraph:
    """The true graph of one image (see the module docstring), over the entities of ``graph``."""
    classes = sorted(c for c in image.classes if c in graph.entities)
    contexts = sorted(k for k in image.contexts if k in graph.entities)
    truth = TrueGraph(image.image_id, classes, contexts)
    for c in classes:
        facts = [caption.classes[c] for caption in image.captions if c in caption.classes]
        colours = [v for f in facts for v in f.colours]
        sizes = [v for f in facts for v in f.sizes]
        if colours:
            truth.attributes[(c, "colour")] = _uniform(colours)
        if sizes:
            truth.attributes[(c, "size")] = _uniform(sizes)
        if facts:
            counts = Counter(f.count for f in facts)
            truth.attributes[(c, "count")] = {max(counts, key=lambda v: (counts[v], v)): 1.0}
        truth.relations[(c, "context")] = _uniform(contexts or [NONE])
        truth.relations[(c, "with")] = _uniform([o for o in classes if o != c] or [NONE])
    return truth


def _cross_entropy(q: dict[str, float], p: dict[str, float]) -> float:
    return -sum(w * math.log(max(p.get(v, 0.0), FLOOR)) for v, w in q.items())


def weighted_nll(belief: BeliefGraph, truth: TrueGraph, prior: BeliefGraph) -> float:
    """Importance-weighted NLL of ``truth`` under ``belief``, weights from ``prior``."""
    total = 0.0
    for name in (*truth.classes, *truth.contexts):
        total -= prior.entities[name].importance * math.log(max(belief.entities[name].probability, FLOOR))
    for (entity, attribute), q in truth.attributes.items():
        weight = prior.entities[entity].importance * prior.entities[entity].attributes[attribute].importance
        total += weight * _cross_entropy(q, belief.entities[entity].attributes[attribute].candidates)
    for key, q in truth.relations.items():
        total += prior.relations[key].importance * _cross_entropy(q, belief.relations[key].candidates)
    return total


def start_belief(prior: BeliefGraph, truth: TrueGraph) -> BeliefGraph:
    """The belief after the user's prompt names the image's classes (see the module docstring)."""
    belief = prior.copy()
    for entity in belief.classes():
        if entity.name in truth.classes:
            entity.probability = 1.0
        else:
            exclude(belief, entity.name)
    for c in truth.classes:
        relation = belief.relations[(c, "with")]
        kept = {o: p for o, p in relation.candidates.items() if o == NONE or o in truth.classes}
        total = sum(kept.values())
        relation.candidates = {o: kept.get(o, 0.0) / total for o in relation.candidates}
    return belief


def user_reply(truth: TrueGraph, question: Question) -> str | list[str]:
    """The simulated user's answer: the true values, ``unknown`` when not stated, ``absent`` for a missing entity."""
    if question.entity not in truth.classes and question.entity not in truth.contexts:
        return "absent"
    table = truth.attributes if question.kind == "attribute" else truth.relations
    q = table.get((question.entity, question.name))
    return sorted(q) if q else "unknown"


def play(prior: BeliefGraph, truth: TrueGraph, n_questions: int, rule: str,
         rng: np.random.Generator) -> list[float]:  # fmt: skip
    """NLL after 0..n_questions questions of one self-play session (the last value repeats once none is left)."""
    belief = start_belief(prior, truth)
    curve = [weighted_nll(belief, truth, prior)]
    for _ in range(n_questions):
        question = next_question(belief, rule, rng)
        if question is not None:
            reply = user_reply(truth, question)
            if not answer(belief, question.entity, question.name, reply):
                # "unknown": close the question without changing the belief
                close(belief, question)
        curve.append(weighted_nll(belief, truth, prior))
    return curve


def split_holdout(
    images: Sequence[ImageFacts], fraction: float, seed: int
) -> tuple[list[ImageFacts], list[ImageFacts]]:
    """``(train, held out)``: a seeded random ``fraction`` of the captioned images is held out."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"the held-out fraction must lie in (0, 1), got {fraction}")
    captioned = [i for i, image in enumerate(images) if image.captions]
    order = np.random.default_rng(seed).permutation(len(captioned))
    held = {captioned[i] for i in order[: max(1, int(round(fraction * len(captioned))))]}
    if len(held) >= len(images):
        raise ValueError("too few images to hold some out; give more captioned images")
    return (
        [img for i, img in enumerate(images) if i not in held],
        [img for i, img in enumerate(images) if i in held],
    )


def self_play(prior: BeliefGraph, held_out: Sequence[ImageFacts], n_questions: int, seed: int = 0,
              rules: Sequence[str] = RULES) -> tuple[dict[str, list[float]], int]:  # fmt: skip
    """``({rule: mean NLL after 0..n_questions questions}, images)`` over the held-out images holding a class."""
    truths = [t for t in (true_graph(image, prior) for image in held_out) if t.classes]
    if not truths:
        raise ValueError("no held-out image holds a class of the graph; hold out more images")
    result = {}
    for rule in rules:
        rng = np.random.default_rng(seed)
        curves = np.array([play(prior, truth, n_questions, rule, rng) for truth in truths])
        result[rule] = [float(v) for v in curves.mean(axis=0)]
    return result, len(truths)


def format_table(result: dict[str, list[float]]) -> str:
    """A plain-text table: questions asked, then the mean NLL of each rule."""
    rules = list(result)
    lines = ["questions  " + "  ".join(f"{r:>8}" for r in rules)]
    for step in range(len(result[rules[0]])):
        lines.append(f"{step:>9}  " + "  ".join(f"{result[r][step]:8.3f}" for r in rules))
    return "\n".join(lines)
