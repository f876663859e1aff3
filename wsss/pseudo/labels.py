"""Seed maps to label maps: one background threshold, or two thresholds with an ignore band.

Tie rule, shared with the seed sweep in :mod:`wsss.evaluation.seeds` so that a threshold chosen
there gives exactly the labels scored there: a pixel's label is the argmax over
``[t, map_1, ..., map_K]`` with the first plane winning ties. A pixel whose strongest map *equals*
``t`` is background, and two equal class maps go to the earlier key. The background plane has the
maps' dtype, so a float32 map equal to ``float32(t)`` is such a tie.

The two-threshold (IRN-style) labels follow from two such maps: foreground class where the strongest
map is above the high threshold, background where it is at or below the low one, 255 in between.
"""

from __future__ import annotations

import numpy as np

from wsss.data.label_io import IGNORE_INDEX


def check_threshold(value: float, name: str) -> float:
    """``value`` as a float, or ValueError unless it lies strictly between 0 and 1."""
    value = float(value)
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must lie strictly between 0 and 1, got {value}")
    return value


def check_two_thresholds(fg_threshold: float, bg_low: float) -> tuple[float, float]:
    """Both thresholds validated, with the low (background) one below the high (foreground) one."""
    fg_threshold = check_threshold(fg_threshold, "the foreground threshold")
    bg_low = check_threshold(bg_low, "the low background threshold")
    if not bg_low < fg_threshold:
        raise ValueError(
            f"the low background threshold ({bg_low}) must be below the foreground threshold ({fg_threshold})"
        )
    return fg_threshold, bg_low


def class_lookup(keys: np.ndarray) -> np.ndarray:
    """``[0, *keys]`` as uint8: maps a compact index (0 background, i = i-th key) to its class index."""
    keys = np.asarray(keys, dtype=np.int64).reshape(-1)
    if keys.size and (keys.min() < 1 or keys.max() >= IGNORE_INDEX):
        raise ValueError(f"keys must be class indices in 1..{IGNORE_INDEX - 1}, got {keys.tolist()}")
    return np.concatenate([[0], keys]).astype(np.uint8)


def compact_labels(maps: np.ndarray, threshold: float) -> np.ndarray:
    """``(H, W)`` int64 compact indices: 0 where no map exceeds ``threshold``, else 1 + the strongest map."""
    maps = np.asarray(maps)
    if maps.ndim != 3:
        raise ValueError(f"maps must be (K, H, W), got shape {maps.shape}")
    if maps.shape[0] == 0:
        return np.zeros(maps.shape[1:], dtype=np.int64)
    strongest = maps.argmax(axis=0)
    above = maps.max(axis=0) > np.asarray(threshold, dtype=maps.dtype)
    return np.where(above, strongest + 1, 0)


def combine_confident(fg_compact: np.ndarray, bg_compact: np.ndarray) -> np.ndarray:
    """Merge the high- and low-threshold compact maps: the high map's classes where it is foreground,
    0 where both are background, ``IGNORE_INDEX`` where only the low map sees an object."""
    confident = np.where(fg_compact > 0, fg_compact, IGNORE_INDEX)
    confident[(fg_compact == 0) & (bg_compact == 0)] = 0
    return confident


def to_class_labels(keys: np.ndarray, compact: np.ndarray) -> np.ndarray:
    """uint8 class labels from compact indices; ``IGNORE_INDEX`` passes through."""
    lookup = np.full(IGNORE_INDEX + 1, IGNORE_INDEX, dtype=np.uint8)
    classes = class_lookup(keys)
    lookup[: classes.size] = classes
    return lookup[compact]


def check_seed_pair(keys: np.ndarray, maps: np.ndarray) -> None:
    """ValueError unless ``maps`` is ``(K, H, W)`` with one map per key."""
    maps = np.asarray(maps)
    if maps.ndim != 3 or maps.shape[0] != np.asarray(keys).size:
        raise ValueError(
            f"maps must be (K, H, W) with K = {np.asarray(keys).size} keys, got shape {maps.shape}"
        )


def labels_from_threshold(keys: np.ndarray, maps: np.ndarray, bg_threshold: float) -> np.ndarray:
    """``(H, W)`` uint8 labels: 0 where no map exceeds ``bg_threshold``, else the strongest map's class."""
    bg_threshold = check_threshold(bg_threshold, "the background threshold")
    check_seed_pair(keys, maps)
    return to_class_labels(keys, compact_labels(maps, bg_threshold))


def labels_from_two_thresholds(
    keys: np.ndarray, maps: np.ndarray, fg_threshold: float, bg_low: float
) -> np.ndarray:
    """``(H, W)`` uint8 labels: the strongest class where the strongest map exceeds ``fg_threshold``,
    0 where it is at most ``bg_low``, 255 (ignore) in between."""
    fg_threshold, bg_low = check_two_thresholds(fg_threshold, bg_low)
    check_seed_pair(keys, maps)
    confident = combine_confident(compact_labels(maps, fg_threshold), compact_labels(maps, bg_low))
    return to_class_labels(keys, confident)
