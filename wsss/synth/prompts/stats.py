"""The few estimates the belief graph is made of: smoothed frequencies, entropy, (normalised) PMI.

- :func:`smoothed`: add-alpha (symmetric Dirichlet) frequencies over a fixed candidate set,
  ``p(v) = (n_v + alpha) / (n + alpha K)``; with no counts it is uniform.
- :func:`entropy`: Shannon entropy in nats, ``-sum p log p`` (0 log 0 = 0).
- :func:`npmi`: pointwise mutual information of two image-level events from a 2x2 table smoothed
  by adding one to each cell (N + 4 in all): ``p(a,b) = (n_ab + 1) / (N + 4)``,
  ``p(a) = (n_a + 2) / (N + 4)``, ``p(b) = (n_b + 2) / (N + 4)``, ``pmi = log p(a,b) / (p(a) p(b))``,
  normalised (Bouma 2009) to ``npmi = pmi / -log p(a,b)`` in [-1, 1]: 1 always together, 0
  independent, -1 never together. The *importance* of a relation is ``|npmi|`` (a strong tie either
  way matters; independence does not).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence


def smoothed(counts: Mapping[str, float], candidates: Sequence[str], alpha: float = 1.0) -> dict[str, float]:
    """``{candidate: (n + alpha) / (total + alpha K)}``; counts of names outside ``candidates`` are ignored."""
    if alpha < 0:
        raise ValueError(f"smoothing alpha must be >= 0, got {alpha}")
    total = sum(float(counts.get(c, 0.0)) for c in candidates)
    denominator = total + alpha * len(candidates)
    if denominator <= 0:
        return {c: 1.0 / len(candidates) for c in candidates}
    return {c: (float(counts.get(c, 0.0)) + alpha) / denominator for c in candidates}


def entropy(probs: Mapping[str, float] | Sequence[float]) -> float:
    """Shannon entropy in nats of a distribution (values), 0 for a point mass."""
    values = probs.values() if isinstance(probs, Mapping) else probs
    return float(-sum(p * math.log(p) for p in values if p > 0))


def pmi(n_ab: float, n_a: float, n_b: float, n: float) -> tuple[float, float]:
    """``(pmi, npmi)`` of events a, b seen together ``n_ab`` times, ``n_a`` and ``n_b`` times, in ``n`` trials."""
    total = n + 4.0
    p_ab, p_a, p_b = (n_ab + 1.0) / total, (n_a + 2.0) / total, (n_b + 2.0) / total
    value = math.log(p_ab / (p_a * p_b))
    return value, value / -math.log(p_ab)


def normalise(weights: Mapping[str, float]) -> dict[str, float]:
    """Weights scaled to sum to 1 (ValueError when they are not positive)."""
    total = float(sum(weights.values()))
    if total <= 0 or any(w < 0 for w in weights.values()):
        raise ValueError(f"weights must be >= 0 with a positive sum, got {dict(weights)}")
    return {k: float(w) / total for k, w in weights.items()}
