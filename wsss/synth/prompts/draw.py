"""A picture of the belief graph (matplotlib only): classes left, contexts right, relations as edges.

Each node shows the entity's probability and its most likely attribute values; a class -> context
edge is drawn when P(context | class) >= ``min_probability``, its width growing with that
probability and its colour giving the normalised PMI (red: together more than chance, blue: less);
class <-> class edges (the ``with`` relation) are arcs on the left.
"""

from __future__ import annotations

import os

from wsss.fileio import atomic_write
from wsss.synth.prompts.graph import BeliefGraph


def _label(graph: BeliefGraph, name: str) -> str:
    entity = graph.entities[name]
    lines = [f"{name}  p={entity.probability:.2f}"]
    for attribute in entity.attributes.values():
        value, p = max(attribute.candidates.items(), key=lambda kv: kv[1])
        lines.append(f"{attribute.name}: {value} {p:.2f}" + (" *" if attribute.pinned else ""))
    return "\n".join(lines)


def draw_graph(
    graph: BeliefGraph, path: str | os.PathLike, min_probability: float = 0.05, dpi: int = 110
) -> None:
    """Write the PNG of ``graph`` to ``path`` atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch

    classes = [e.name for e in graph.classes()]
    contexts = [e.name for e in graph.contexts()]
    rows = max(len(classes), len(contexts), 1)
    fig, ax = plt.subplots(figsize=(9, 1.1 * rows + 1.2))
    y_class = {c: rows - 1 - i * (rows - 1) / max(len(classes) - 1, 1) for i, c in enumerate(classes)}
    y_context = {k: rows - 1 - i * (rows - 1) / max(len(contexts) - 1, 1) for i, k in enumerate(contexts)}
    cmap = plt.get_cmap("coolwarm")
    for (subject, kind), relation in graph.relations.items():
        for obj, p in relation.candidates.items():
            npmi = relation.npmi.get(obj, 0.0)
            colour = cmap(0.5 + 0.5 * npmi)
            if kind == "context" and obj in y_context and p >= min_probability:
                ax.plot([0.25, 1.75], [y_class[subject], y_context[obj]], color=colour, lw=0.5 + 6 * p, alpha=0.8,
                        zorder=1)  # fmt: skip
                word = relation.prepositions.get(obj, "")
                ax.text(0.6, 0.7 * y_class[subject] + 0.3 * y_context[obj], f"{word} {p:.2f}", fontsize=6,
                        ha="center", va="center", color="0.25", zorder=2)  # fmt: skip
            elif kind == "with" and obj in y_class and p >= min_probability and subject < obj:
                ax.add_patch(FancyArrowPatch((-0.05, y_class[subject]), (-0.05, y_class[obj]), arrowstyle="-",
                                             connectionstyle="arc3,rad=0.4", color=colour, lw=0.5 + 4 * p,
                                             alpha=0.7))  # fmt: skip
    for name, y in y_class.items():
        ax.text(0.0, y, _label(graph, name), fontsize=7, ha="center", va="center", zorder=3,
                bbox={"boxstyle": "round", "fc": "#fff3d6", "ec": "0.4"})  # fmt: skip
    for name, y in y_context.items():
        ax.text(2.0, y, _label(graph, name), fontsize=7, ha="center", va="center", zorder=3,
                bbox={"boxstyle": "round", "fc": "#dcefff", "ec": "0.4"})  # fmt: skip
    ax.set_xlim(-0.7, 2.5)
    ax.set_ylim(-0.8, rows - 0.2)
    ax.axis("off")
    ax.set_title(
        "belief graph: edge width P(context | class), colour npmi (red +, blue -), * pinned", fontsize=8
    )
    fig.tight_layout()
    try:
        with atomic_write(path) as tmp:
            fig.savefig(tmp, format="png", dpi=dpi)
    finally:
        plt.close(fig)
