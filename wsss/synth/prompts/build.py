"""Estimate a belief graph from a dataset's captions and image-level labels (no LLM).

Counts are over images (N in all; the captioned ones, M, for anything read from text), with the
smoothing of :mod:`wsss.synth.prompts.stats` (``alpha`` for candidates, add-one elsewhere):

- **class entity**: probability ``(n_c + 1) / (N + 2)`` (images holding the class, by label or, without
  labels, by caption); importance 1 (the classes are what the dataset is for).
- **context entity**: probability ``(m_k + 1) / (M + 2)`` (captioned images naming the context);
  importance ``max_c |npmi(c, k)|``, how strongly it is tied to some class (the bias it carries).
- **attributes** of a class (colour, size, count): candidates are the lexicon's values, with
  Dirichlet(alpha) smoothed frequencies of the words read with the class's mentions; importance
  ``(s + 1) / (m + 2)`` where ``s`` of the class's ``m`` mentions state the attribute (how often
  people bother to say it; 1/2 with no text). Count is stated by every caption naming the class.
- **relations** of a class c: ``context`` over the lexicon's contexts + ``none`` (from the M
  captioned images), ``with`` over the other classes + ``none`` (from all N images: labels suffice).
  Each image holding c adds weight 1, split evenly over its contexts (other classes), or to ``none``
  when it has none; probabilities are Dirichlet(alpha) smoothed. Importance ``max_k |npmi(c, k)|``
  over the candidates (image co-occurrence, rounded to 6 decimals), 1/2 when no image holds c. Prepositions are the most frequent ones read between c and the context,
  else the lexicon's.
- ``meta['context_marginal']``: the same ``context`` distribution over *all* captioned images, the
  class-free P(context) that counter-bias sampling uses.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from wsss.synth.prompts.graph import NONE, Attribute, BeliefGraph, Entity, Relation
from wsss.synth.prompts.lexicon import Lexicon
from wsss.synth.prompts.parse import ImageFacts
from wsss.synth.prompts.stats import pmi, smoothed

UNKNOWN_IMPORTANCE = 0.5


def _split(weights: Counter, names: Iterable[str]) -> None:
    names = sorted(names)
    if not names:
        weights[NONE] += 1.0
    for name in names:
        weights[name] += 1.0 / len(names)


def class_phrase(name: str, lexicon: Lexicon) -> str:
    """How prompts name a class: the first multi-word synonym of a fused VOC name (``diningtable``), else the name."""
    spaced = name.replace("_", " ")
    for synonym in lexicon.synonyms.get(name, ()):
        if " " in synonym and synonym.replace(" ", "") == spaced.replace(" ", ""):
            return synonym
    return spaced


def build_graph(images: Sequence[ImageFacts], class_names: Sequence[str], lexicon: Lexicon,
                alpha: float = 1.0, source: str = "") -> BeliefGraph:  # fmt: skip
    """The belief graph of ``images`` over the foreground ``class_names`` (see the module docstring)."""
    classes = list(class_names)
    contexts = list(lexicon.contexts)
    known = set(classes)
    present = [img.classes & known for img in images]
    captioned = [i for i, img in enumerate(images) if img.captions]
    seen_contexts = {i: set(images[i].contexts) for i in captioned}
    n, m = len(images), len(captioned)

    n_class = Counter(c for row in present for c in row)
    m_class = Counter(c for i in captioned for c in present[i])
    m_context = Counter(k for i in captioned for k in seen_contexts[i])
    together = Counter((c, k) for i in captioned for c in present[i] for k in seen_contexts[i])
    pairs = Counter((a, b) for row in present for a in row for b in row if a != b)
    context_npmi = {
        (c, k): pmi(together[(c, k)], m_class[c], m_context[k], m)[1] for c in classes for k in contexts
    }
    entities: dict[str, Entity] = {}
    relations: dict[tuple[str, str], Relation] = {}
    for c in classes:
        entities[c] = Entity(c, "class", 1.0, (n_class[c] + 1.0) / (n + 2.0), class_phrase(c, lexicon),
                             attributes=_attributes(c, images, lexicon, alpha))  # fmt: skip
        where, beside, words = Counter(), Counter(), {k: Counter() for k in contexts}
        for row in present:
            if c in row:
                _split(beside, row - {c})
        for i in captioned:
            if c in present[i]:
                _split(where, seen_contexts[i])
                for caption in images[i].captions:
                    for (subject, k), word in caption.prepositions.items():
                        if subject == c:
                            words[k][word] += 1
        npmi_k = {k: round(context_npmi[(c, k)], 6) for k in contexts}
        npmi_o = {o: round(pmi(pairs[(c, o)], n_class[c], n_class[o], n)[1], 6) for o in classes if o != c}
        relations[(c, "context")] = Relation(
            c, "context", UNKNOWN_IMPORTANCE if m_class[c] == 0 else max(map(abs, npmi_k.values()), default=0.0),
            smoothed(where, [*contexts, NONE], alpha), npmi_k,
            {k: (words[k].most_common(1)[0][0] if words[k] else lexicon.contexts[k].preposition) for k in contexts},
        )  # fmt: skip
        relations[(c, "with")] = Relation(
            c, "with", UNKNOWN_IMPORTANCE if n_class[c] == 0 else max(map(abs, npmi_o.values()), default=0.0),
            smoothed(beside, [*(o for o in classes if o != c), NONE], alpha), npmi_o,
        )  # fmt: skip
    for k in contexts:
        context = lexicon.contexts[k]
        importance = max(
            (abs(context_npmi[(c, k)]) for c in classes if m_class[c]), default=UNKNOWN_IMPORTANCE
        )
        entities[k] = Entity(k, "context", importance, (m_context[k] + 1.0) / (m + 2.0), context.phrase,
                             context.scene)  # fmt: skip
    marginal = Counter()
    for i in captioned:
        _split(marginal, seen_contexts[i])
    meta = {"source": source, "images": n, "captioned_images": m, "alpha": alpha,
            "context_marginal": smoothed(marginal, [*contexts, NONE], alpha)}  # fmt: skip
    return BeliefGraph(entities, relations, meta)


def _attributes(
    name: str, images: Sequence[ImageFacts], lexicon: Lexicon, alpha: float
) -> dict[str, Attribute]:
    mentions, captions = 0, 0
    observed: dict[str, Counter] = {"colour": Counter(), "size": Counter(), "count": Counter()}
    for image in images:
        for caption in image.captions:
            facts = caption.classes.get(name)
            if facts is None:
                continue
            mentions += facts.mentions
            captions += 1
            observed["colour"].update(facts.colours)
            observed["size"].update(facts.sizes)
            observed["count"][facts.count] += 1
    stated = {"colour": (sum(observed["colour"].values()), mentions),
              "size": (sum(observed["size"].values()), mentions), "count": (captions, captions)}  # fmt: skip
    attributes = {}
    for attribute, values in lexicon.attribute_values().items():
        s, total = stated[attribute]
        s = min(s, total)
        attributes[attribute] = Attribute(attribute, (s + 1.0) / (total + 2.0),
                                          smoothed(observed[attribute], values, alpha))  # fmt: skip
    return attributes
