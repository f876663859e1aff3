"""How much of a context region (water, rails) a label folder gives to the class it co-occurs with (boat, train).

The question MARS answers: biased pseudo labels call the water under a boat "boat". Context masks
(the shapes data's ``ContextMasks/<id>.png``: 0 none, then one value per context) mark where a
context is visible; ``ContextMasks/contexts.json`` names each value's context and its class.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from wsss.data.label_io import check_labels_exist, read_label_fast

CONTEXTS_FILE = "contexts.json"


def read_contexts(context_dir: str | os.PathLike, class_names: Sequence[str]) -> dict[int, tuple[str, int]]:
    """``{mask value: (context name, class index)}`` from ``contexts.json`` of a context-mask folder."""
    path = Path(context_dir) / CONTEXTS_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: not found; a context-mask folder names its contexts in {CONTEXTS_FILE}"
        )
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))["contexts"]
        contexts = {int(e["value"]): (str(e["name"]), list(class_names).index(e["class"])) for e in entries}
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(
            f"{path}: needs {{'contexts': [{{'value', 'name', 'class'}}]}} with classes of the dataset ({err})"
        ) from None
    return contexts


def context_shares(
    label_dir: str | os.PathLike,
    context_dir: str | os.PathLike,
    ids: Sequence[str],
    class_names: Sequence[str],
) -> dict[str, dict[str, Any]]:
    """Per context: its visible pixels over ``ids`` and the share of them ``label_dir`` labels as its class."""
    contexts = read_contexts(context_dir, class_names)
    check_labels_exist(label_dir, ids, "label")
    check_labels_exist(context_dir, ids, "context-mask")
    pixels = {value: 0 for value in contexts}
    as_class = {value: 0 for value in contexts}
    for image_id in ids:
        label = read_label_fast(Path(label_dir) / f"{image_id}.png")
        context = read_label_fast(Path(context_dir) / f"{image_id}.png")
        if label.shape != context.shape:
            raise ValueError(
                f"{Path(label_dir) / image_id}.png: {label.shape} but its context mask is {context.shape}"
            )
        for value, (_, cls) in contexts.items():
            region = context == value
            pixels[value] += int(region.sum())
            as_class[value] += int((label[region] == cls).sum())
    return {
        name: {
            "class": class_names[cls],
            "pixels": pixels[v],
            "labelled_as_class": as_class[v],
            "share": as_class[v] / pixels[v] if pixels[v] else None,
        }  # fmt: skip
        for v, (name, cls) in contexts.items()
    }


def format_context_shares(shares: dict[str, dict[str, Any]]) -> str:
    """One line per context: its share labelled as its class."""
    return "\n".join(
        f"{name} labelled {row['class']}: "
        + ("no pixels" if row["share"] is None else f"{100 * row['share']:.2f}% of {row['pixels']} pixels")
        for name, row in shares.items()
    )
