"""The pipeline's report, written from the stages' summaries: ``report.json`` and ``report.md``.

What goes in comes from the config: every stage entry with ``report=dict(key=..., label=...)`` gives a
row (its headline figure, absolute) and a key of ``report.json``; ``cfg.report`` names the stage whose
result is the upper bound (``upper_bound``), the stages shown beside it as a share of it
(``compare``), the stages whose per-class IoU form the table (``per_class``), those whose per-class
IoU, false-positive and false-negative ratios are compared (``errors``, MARS's table), those whose
context shares are compared (``context``: water labelled boat, ...), the folders ``report.json``
names under ``outputs`` (``outputs``: a key -> stage mapping, nested dicts allowed) and the figure.
``rows`` adds rows of any figure a stage measured: ``dict(key=..., label=..., stage=..., metric=...)``
with ``metric`` a name of its metrics (``water_as_boat``) or ``<kind>.<class>`` of its per-class
scores (``IoU.boat``); e.g. the synthetic-data comparison of boat IoU and water labelled boat.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from wsss.data.classes import resolve_class_names
from wsss.fileio import write_json_atomic, write_text_atomic
from wsss.pipeline.stage import PipelineContext, Stage

#: An upper bound below this (mIoU) means nothing learnt; the report says so before any ratio to it.
LOW_UPPER_BOUND = 30.0


def headline_value(summary: Mapping[str, Any]) -> float | None:
    """The figure a stage is known by (its summary's ``headline`` metric), or None."""
    name = summary.get("headline")
    value = summary.get("metrics", {}).get(name) if name else None
    return None if value is None else float(value)


def stage_metric(summary: Mapping[str, Any], metric: str) -> float | None:
    """A figure of a stage's summary: one of its ``metrics``, or ``<kind>.<class>`` of its ``per_class``."""
    if metric in summary.get("metrics", {}):
        value = summary["metrics"][metric]
    else:
        kind, _, name = metric.partition(".")
        value = summary.get("per_class", {}).get(kind, {}).get(name)
    return None if value is None else float(value)


def _set_dotted(target: dict[str, Any], key: str, value: Any) -> None:
    *parents, last = key.split(".")
    for part in parents:
        target = target.setdefault(part, {})
    target[last] = value


def build_report(
    stages: Mapping[str, Stage],
    summaries: Mapping[str, dict[str, Any]],
    ctx: PipelineContext,
    options: Mapping[str, Any],
) -> dict[str, Any]:
    """The report data: keyed figures, upper-bound comparisons, per-class IoU, times, outputs and notes."""
    report: dict[str, Any] = {
        "data_root": str(ctx.data_root),
        "classes": list(resolve_class_names(None, ctx.data_root)),
        "unit": "percent; classes absent from both ground truth and prediction are null and left out of means",
    }
    for name, stage in stages.items():
        if stage.report.get("key") and name in summaries:
            _set_dotted(report, stage.report["key"], headline_value(summaries[name]))
    for row in options.get("rows", []):
        if row["stage"] in summaries:
            _set_dotted(report, row["key"], stage_metric(summaries[row["stage"]], row["metric"]))
    upper = options.get("upper_bound")
    upper_value = headline_value(summaries[upper]) if upper in summaries else None
    report["upper_bound"] = {"stage": upper, "mIoU": upper_value}
    report["relative_to_upper_bound"] = {
        name: (headline_value(summaries[name]) / upper_value if upper_value else None)
        for name in options.get("compare", [])
        if name in summaries and headline_value(summaries[name]) is not None
    }
    report["per_class_iou"] = {
        name: summaries[name]["per_class"].get("IoU", {})
        for name in options.get("per_class", [])
        if name in summaries
    }
    report["errors"] = {
        name: {kind: summaries[name]["per_class"].get(kind, {}) for kind in ("IoU", "FP_ratio", "FN_ratio")}
        for name in options.get("errors", [])
        if name in summaries
    }
    report["context_share"] = {
        name: {k: v for k, v in summaries[name]["metrics"].items() if "_as_" in k}
        for name in options.get("context", [])
        if name in summaries
    }
    report["stage_seconds"] = {name: summary.get("seconds") for name, summary in summaries.items()}
    report["outputs"] = _folders(options.get("outputs", {}), summaries)
    report["notes"] = [
        f"{name}: {note}" for name, summary in summaries.items() for note in summary.get("notes", [])
    ]
    if upper_value is not None and upper_value < LOW_UPPER_BOUND:
        report["notes"].insert(0, (
            f"{upper}: even on ground truth the segmenter reached only {upper_value:.1f} mIoU: the models "
            "learnt little on these data, and shares of the upper bound say nothing"
        ))  # fmt: skip
    report["stages"] = dict(summaries)
    return report


def _folders(spec: Any, summaries: Mapping[str, dict[str, Any]]) -> Any:
    """``outputs`` of the report: each stage name of the (nested) mapping replaced by its folder."""
    if isinstance(spec, Mapping):
        return {key: _folders(value, summaries) for key, value in spec.items()}
    return summaries[spec]["outputs"]["folder"] if spec in summaries else None


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def markdown(
    report: Mapping[str, Any], stages: Mapping[str, Stage], options: Mapping[str, Any], work_dir: Path
) -> str:
    """The report as Markdown: the figures (absolute first), notes, stages with times, per-class IoU, figure."""
    summaries = report["stages"]
    upper = report["upper_bound"]
    lines = [
        "# Weakly supervised pipeline report",
        "",
        f"Data: `{report['data_root']}` ({len(report['classes'])} classes with background). Scores are percent; "
        "classes absent from both ground truth and prediction are left out of means.",
        "",
        "| result | value |",
        "| --- | --- |",
    ]
    for name, stage in stages.items():
        if not stage.report.get("label") or name not in summaries:
            continue
        value = _fmt(headline_value(summaries[name]))
        ratio = report["relative_to_upper_bound"].get(name)
        if ratio is not None:
            value += f" ({100 * ratio:.0f}% of the upper bound {_fmt(upper['mIoU'])})"
        lines.append(f"| {stage.report['label']} | {value} |")
    for row in options.get("rows", []):
        if row["stage"] in summaries and row.get("label"):
            lines.append(f"| {row['label']} | {_fmt(stage_metric(summaries[row['stage']], row['metric']))} |")
    if report["notes"]:
        lines += ["", "Notes:", *(f"- {note}" for note in report["notes"])]
    lines += ["", "## Stages", "", "| stage | what | seconds | headline |", "| --- | --- | --- | --- |"]
    for name, summary in summaries.items():
        seconds = "-" if summary.get("seconds") is None else f"{summary['seconds']:.0f}"
        headline = summary.get("headline")
        shown = f"{headline} {_fmt(headline_value(summary))}" if headline else "-"
        lines.append(f"| {name} | {summary['description']} | {seconds} | {shown} |")
    columns = list(report["per_class_iou"])
    if columns:
        lines += [
            "",
            "## Per-class IoU",
            "",
            "| class | " + " | ".join(columns) + " |",
            "|---" * (len(columns) + 1) + "|",
        ]
        for cls in report["classes"]:
            cells = [_fmt(report["per_class_iou"][column].get(cls)) for column in columns]
            lines.append(f"| {cls} | " + " | ".join(cells) + " |")
    errors = report["errors"]
    if errors:
        lines += ["", "## Per-class IoU / false-positive / false-negative ratios", "",
                  "FP = (P - TP) / union and FN = (T - TP) / union, as MARS reports them; biased (254) counts as background.",
                  "", "| class | " + " | ".join(errors) + " |", "|---" * (len(errors) + 1) + "|"]  # fmt: skip
        for cls in report["classes"]:
            cells = [" / ".join(_fmt(errors[name][kind].get(cls)) for kind in ("IoU", "FP_ratio", "FN_ratio"))
                     for name in errors]  # fmt: skip
            lines.append(f"| {cls} | " + " | ".join(cells) + " |")
    shares = report["context_share"]
    keys = sorted({key for row in shares.values() for key in row})
    if keys:
        lines += ["", "## Context regions labelled as their class (% of their pixels)", "",
                  "| stage | " + " | ".join(k.replace("_as_", " as ") for k in keys) + " |", "|---" * (len(keys) + 1) + "|"]  # fmt: skip
        for name, row in shares.items():
            lines.append(f"| {name} | " + " | ".join(_fmt(row.get(k)) for k in keys) + " |")
    figure = options.get("figure")
    if figure in summaries:
        path = Path(summaries[figure]["outputs"].get("figure", ""))
        if path.is_file():
            lines += ["", f"![examples]({os.path.relpath(path, work_dir)})"]
    return "\n".join(lines) + "\n"


def write_report(
    stages: Mapping[str, Stage],
    summaries: Mapping[str, dict[str, Any]],
    ctx: PipelineContext,
    options: Mapping[str, Any],
) -> dict[str, Any]:
    """Write ``WORK/report.json`` and ``WORK/report.md``; returns the report data."""
    report = build_report(stages, summaries, ctx, options)
    write_json_atomic(ctx.work_dir / "report.json", report)
    write_text_atomic(ctx.work_dir / "report.md", markdown(report, stages, options, ctx.work_dir))
    return report
