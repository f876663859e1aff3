"""How segmentation scores are shown and kept: the mmsegmentation-style table and the JSON file."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from wsss.evaluation.confusion import SegmentationResult
from wsss.fileio import write_json_atomic


def _format_score(value: float, undefined: str) -> str:
    return undefined if math.isnan(value) else f"{value:.2f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], align_first_left: bool) -> list[str]:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def line(cells: Sequence[str], is_header: bool) -> str:
        parts = []
        for i, (cell, width) in enumerate(zip(cells, widths)):
            if is_header:
                parts.append(cell.center(width))
            elif i == 0 and align_first_left:
                parts.append(cell.ljust(width))
            else:
                parts.append(cell.rjust(width))
        return "| " + " | ".join(parts) + " |"

    return [rule, line(header, True), rule, *(line(row, False) for row in rows), rule]


def format_table(result: SegmentationResult, class_names: Sequence[str], show_errors: bool = False) -> str:
    """The per-class table users know from mmsegmentation (IoU and Acc, percent, two decimals),
    then aAcc / mIoU / mAcc; ``show_errors`` adds MARS's FP and FN ratio columns."""
    if len(class_names) != result.num_classes:
        raise ValueError(f"got {len(class_names)} class names for {result.num_classes} classes")
    header = ["Class", "IoU", "Acc"] + (["FP", "FN"] if show_errors else [])
    rows = []
    for i, name in enumerate(class_names):
        if result.absent[i]:
            rows.append([name] + ["absent"] * (len(header) - 1))
            continue
        row = [name, _format_score(result.iou[i], "-"), _format_score(result.acc[i], "no gt")]
        if show_errors:
            row += [_format_score(result.fp_ratio[i], "-"), _format_score(result.fn_ratio[i], "-")]
        rows.append(row)
    summary = [[_format_score(v, "nan") for v in (result.aAcc, result.mIoU, result.mAcc)]]
    lines = _table(header, rows, align_first_left=True)
    lines += _table(["aAcc", "mIoU", "mAcc"], summary, align_first_left=False)
    notes = []
    if result.absent.any():
        notes.append("absent: no pixel of the class in ground truth or prediction; left out of mIoU and mAcc")
    if np.any(~result.absent & np.isnan(result.acc)):
        notes.append("no gt: predicted but not in the ground truth; IoU 0, left out of mAcc")
    return "\n".join(lines + notes)


def save_json(
    result: SegmentationResult, path: str | os.PathLike, class_names: Sequence[str], **extra: object
) -> None:
    """Write :meth:`SegmentationResult.to_dict` (and any ``extra`` entries) to ``path`` atomically (NaN as null)."""
    write_json_atomic(path, {**result.to_dict(class_names), **extra})


def load_json(path: str | os.PathLike) -> tuple[SegmentationResult, tuple[str, ...]]:
    """Read a file written by :func:`save_json`: the result and its class names."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return SegmentationResult.from_dict(data), tuple(row["class"] for row in data["per_class"])
