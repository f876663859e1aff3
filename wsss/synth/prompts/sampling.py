"""Prompts sampled from a belief graph, and counter-bias balancing of class-context ties.

One prompt (its own generator ``default_rng([seed, index])``, so prompt i does not depend on n):

1. with probability ``context_only_share``: a context-only prompt (a background image with no
   class), the context drawn from P(context) (``meta['context_marginal']`` without ``none``);
2. else a class c drawn in proportion to the class probabilities, a companion from c's ``with``
   relation and a context from c's ``context`` relation (either may be ``none``; entities with
   probability 0 are left out and the rest renormalised), and for each class its count, colour and
   size from their candidates; an attribute is written with probability equal to its importance
   (how often captions state it), always when pinned.

:func:`balance_contexts` moves every unpinned ``context`` relation toward independence of class and
context: ``P'(k | c) = (1 - s) P(k | c) + s P(k)``, with P(k) the class-free marginal and strength
``s`` in [0, 1]; at ``s = 1`` every class has the same context distribution (PMI 0 in the prompts).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from wsss.synth.prompts.graph import NONE, BeliefGraph
from wsss.synth.prompts.lexicon import plural

SEED_RANGE = 2**31 - 1
_COUNT_WORDS = {"one": None, "two": "two", "three": "three", "many": "several"}


def balance_contexts(graph: BeliefGraph, strength: float = 1.0) -> BeliefGraph:
    """A copy with unpinned class -> context relations mixed toward the marginal P(context) (see above)."""
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"balance strength must lie in [0, 1], got {strength}")
    marginal = graph.meta.get("context_marginal")
    if not marginal:
        raise ValueError("the belief graph has no context_marginal in its meta; rebuild it from captions")
    balanced = graph.copy()
    for relation in balanced.relations.values():
        if relation.kind != "context" or relation.pinned:
            continue
        relation.candidates = {k: (1.0 - strength) * p + strength * float(marginal.get(k, 0.0))
                               for k, p in relation.candidates.items()}  # fmt: skip
    balanced.meta = {**balanced.meta, "balanced_contexts": strength}
    return balanced


def _draw(rng: np.random.Generator, weights: Mapping[str, float]) -> str | None:
    names = [k for k, w in weights.items() if w > 0]
    if not names:
        return None
    p = np.array([weights[k] for k in names], dtype=np.float64)
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def _article(phrase: str) -> str:
    return ("an " if phrase[:1] in "aeiou" else "a ") + phrase


def _noun_phrase(graph: BeliefGraph, name: str, rng: np.random.Generator) -> str:
    entity = graph.entities[name]
    chosen = {}
    for attribute in entity.attributes.values():
        if attribute.pinned or rng.random() < attribute.importance:
            chosen[attribute.name] = _draw(rng, attribute.candidates)
    words = [w for w in (chosen.get("size"), chosen.get("colour")) if w]
    count = _COUNT_WORDS.get(chosen.get("count") or "one")
    noun = entity.phrase
    if count is None:
        return _article(" ".join([*words, noun]))
    head, _, last = noun.rpartition(" ")
    return " ".join([count, *words, *([head] if head else []), plural(last)])


def _open(graph: BeliefGraph, weights: Mapping[str, float]) -> dict[str, float]:
    """Candidates whose entity is not excluded (``none`` always stays)."""
    return {k: p for k, p in weights.items() if k == NONE or graph.entities.get(k) is None
            or graph.entities[k].probability > 0}  # fmt: skip


def sample_prompt(
    graph: BeliefGraph, seed: int, index: int, context_only_share: float = 0.0
) -> dict[str, Any]:
    """Prompt ``index`` of the run with ``seed``: ``{"prompt", "classes", "contexts", "seed"}``."""
    rng = np.random.default_rng([seed, index])
    image_seed = int(rng.integers(SEED_RANGE))
    if rng.random() < context_only_share:
        marginal = {k: p for k, p in graph.meta["context_marginal"].items() if k != NONE}
        context = _draw(rng, _open(graph, marginal))
        if context is not None:
            scene = graph.entities[context].scene
            return {"prompt": f"a photo of {scene}", "classes": [], "contexts": [context], "seed": image_seed}
    first = _draw(rng, {e.name: e.probability for e in graph.classes()})
    if first is None:
        raise ValueError(
            "every class of the belief graph has probability 0; answer 'absent' for fewer classes"
        )
    companion = _draw(rng, _open(graph, graph.relations[(first, "with")].candidates))
    context_relation = graph.relations[(first, "context")]
    context = _draw(rng, _open(graph, context_relation.candidates))
    classes = [first] + ([companion] if companion not in (None, NONE) else [])
    text = " and ".join(_noun_phrase(graph, name, rng) for name in classes)
    contexts = [context] if context not in (None, NONE) else []
    if contexts:
        preposition = context_relation.prepositions.get(context, "with")
        text += f" {preposition} {graph.entities[context].phrase}"
    return {"prompt": f"a photo of {text}", "classes": classes, "contexts": contexts, "seed": image_seed}


def sample_prompts(
    graph: BeliefGraph, n: int, seed: int, context_only_share: float = 0.0
) -> list[dict[str, Any]]:
    """``n`` prompts (see :func:`sample_prompt`)."""
    if not 0.0 <= context_only_share <= 1.0:
        raise ValueError(f"the context-only share must lie in [0, 1], got {context_only_share}")
    return [sample_prompt(graph, seed, i, context_only_share) for i in range(n)]
