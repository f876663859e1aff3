"""Evaluate seeds (<id>.npz: keys + maps) against ground-truth label PNGs by a background-threshold sweep.

For every threshold t a pixel is background when no class map exceeds t (a map equal to t counts as
background), else the class of its strongest map; mIoU is accumulated over the whole list. Prints the
mIoU curve, the best t and its mmsegmentation-style per-class table (percent); optionally writes the
whole sweep as JSON and the curve as a PNG plot. Pixels whose ground truth is 255 are ignored; classes
absent from both ground truth and prediction are left out of the mean. Pass the best t to
tools/make_pseudo_labels.py --bg-threshold to get exactly the labels scored here.

Example:
    python tools/eval_seeds.py --seeds work_dirs/bas/seeds --gt VOC2012/SegmentationClass \\
        --list VOC2012/ImageSets/Segmentation/train.txt --classes voc --json seeds.json --plot seeds.png
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from wsss.data.classes import class_names_from_spec
from wsss.data.dataset import read_split
from wsss.data.label_io import read_label_png
from wsss.evaluation.confusion import format_table, map_id_chunks
from wsss.evaluation.seeds import SweepResult, ThresholdSweep, format_curve
from wsss.fileio import atomic_write
from wsss.pseudo_labels.seed_io import check_seeds_exist, load_seeds, seed_path

DEFAULT_RANGE = "0.05:0.60:0.05"


def parse_thresholds(spec: str) -> tuple[float, ...]:
    """Thresholds from ``START:STOP:STEP`` (STOP included when the steps land on it) or ``t1,t2,...``;
    every value must lie strictly between 0 and 1."""
    try:
        if ":" in spec:
            start, stop, step = (float(part) for part in spec.split(":"))
            if step <= 0 or stop < start:
                raise ValueError
            # The small slack keeps STOP when float steps land a hair beyond it (0.05 * 12 > 0.6).
            count = math.floor((stop - start) / step + 1e-9) + 1
            values = tuple(round(start + i * step, 10) for i in range(count))
        else:
            values = tuple(float(part) for part in spec.split(","))
    except ValueError:
        raise SystemExit(
            f"error: --thresholds {spec!r}: give START:STOP:STEP with STEP > 0 and START <= STOP "
            "(e.g. 0.05:0.60:0.05), or a comma list (e.g. 0.2,0.25,0.3)"
        ) from None
    outside = [t for t in values if not 0.0 < t < 1.0]
    if outside:
        raise SystemExit(
            f"error: --thresholds {spec!r}: thresholds must lie strictly between 0 and 1, got {outside}"
        )
    return values


def sweep_chunk(
    seeds_dir: Path, gt_dir: Path, num_classes: int, thresholds: Sequence[float], ids: Sequence[str]
) -> tuple[np.ndarray, int]:
    """The sweep counts of one chunk of ids and the chunk's length; errors name the files."""
    sweep = ThresholdSweep(num_classes, thresholds)
    for image_id in ids:
        seed_file = seed_path(seeds_dir, image_id)
        gt_file = gt_dir / f"{image_id}.png"
        keys, maps = load_seeds(seed_file)
        gt = read_label_png(gt_file)
        if maps.shape[1:] != gt.shape:
            raise ValueError(
                f"{seed_file}: seed maps are {maps.shape[1]}x{maps.shape[2]} (HxW) but ground truth {gt_file} is "
                f"{gt.shape[0]}x{gt.shape[1]}; seeds must be at the image's original size"
            )
        try:
            sweep.update(keys, maps, gt)
        except ValueError as err:
            raise ValueError(f"{seed_file} / {gt_file}: {err}") from None
    return sweep.counts, len(ids)


def run_sweep(
    seeds_dir: Path,
    gt_dir: Path,
    ids: Sequence[str],
    num_classes: int,
    thresholds: Sequence[float],
    workers: int,
    progress: bool,
) -> SweepResult:
    """Sweep every threshold over ``ids``, in chunks spread over ``workers`` processes."""
    count_chunk = partial(sweep_chunk, seeds_dir, gt_dir, num_classes, tuple(thresholds))
    total = ThresholdSweep(num_classes, thresholds)
    for counts in map_id_chunks(count_chunk, ids, workers, progress, "seed sweep", max_chunk=32):
        total.counts += counts
    return total.compute()


def _json_number(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def sweep_to_dict(
    result: SweepResult, class_names: Sequence[str], sources: dict[str, str], num_images: int
) -> dict[str, Any]:
    """The sweep as plain JSON data: sources, the curve, the best threshold and its full result."""
    return {
        **sources,
        "num_images": num_images,
        "unit": "percent",
        "tie_rule": "a pixel whose strongest map equals t is background",
        "thresholds": list(result.thresholds),
        "curve": [
            {
                "threshold": t,
                "aAcc": _json_number(r.aAcc),
                "mIoU": _json_number(r.mIoU),
                "mAcc": _json_number(r.mAcc),
            }
            for t, r in zip(result.thresholds, result.results)
        ],
        "best_threshold": result.best_threshold,
        "best": result.best.to_dict(class_names),
    }


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as JSON atomically (NaN is not allowed; use None)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n", encoding="utf-8")


def plot_curve(path: Path, result: SweepResult, title: str) -> None:
    """Save the mIoU-versus-threshold curve, best point starred, as a PNG (Agg canvas, no display
    needed), atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 4), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.plot(result.thresholds, [r.mIoU for r in result.results], marker="o")
    axes.axvline(result.best_threshold, color="grey", linestyle="--")
    axes.plot([result.best_threshold], [result.best.mIoU], marker="*", markersize=14, color="tab:red")
    axes.set_xlabel("background threshold t")
    axes.set_ylabel("mIoU (%)")
    axes.set_title(f"{title}\nbest t = {result.best_threshold:.2f}: mIoU {result.best.mIoU:.2f}")
    axes.grid(True, alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp:
        figure.savefig(tmp, format="png")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="A listed id without a seed or ground-truth file, or a seed whose size differs from its "
        "ground truth, stops the run with an error naming the file. Scores are percent.",
    )
    parser.add_argument("--seeds", required=True, type=Path, help="folder of seed files <id>.npz")
    parser.add_argument("--gt", required=True, type=Path, help="folder of ground-truth label PNGs <id>.png")
    parser.add_argument("--list", required=True, type=Path, help="split file with one image id per line")
    parser.add_argument(
        "--classes",
        required=True,
        help="'voc', 'coco', a class_names.txt (one name per line, background first) or an mmengine config .py",
    )
    parser.add_argument(
        "--thresholds",
        default=DEFAULT_RANGE,
        help=f"START:STOP:STEP, STOP included (default {DEFAULT_RANGE}), or a comma list; each in (0, 1)",
    )
    parser.add_argument("--json", type=Path, help="write the curve and the best result (per class) as JSON")
    parser.add_argument("--plot", type=Path, help="save the mIoU curve as a PNG image")
    parser.add_argument(
        "--workers",
        type=int,
        default=len(os.sched_getaffinity(0)),
        help="processes reading files in parallel (default: number of usable cores)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    thresholds = parse_thresholds(args.thresholds)
    if args.workers < 1:
        raise SystemExit(f"error: --workers must be at least 1, got {args.workers}")
    if not args.gt.is_dir():
        raise SystemExit(f"error: --gt {args.gt} is not a folder; give the folder of ground-truth PNGs")
    try:
        class_names = class_names_from_spec(args.classes)
        ids = read_split(args.list)
        check_seeds_exist(args.seeds, ids)
        missing_gt = [image_id for image_id in ids if not (args.gt / f"{image_id}.png").is_file()]
        if missing_gt:
            shown = ", ".join(missing_gt[:5]) + (", ..." if len(missing_gt) > 5 else "")
            raise FileNotFoundError(
                f"{args.gt}: {len(missing_gt)} of {len(ids)} listed ids have no ground-truth PNG (first: {shown})"
            )
        result = run_sweep(
            args.seeds, args.gt, ids, len(class_names), thresholds, args.workers, not args.no_progress
        )
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f"error: {err}") from None
    print(f"{len(ids)} images, {len(class_names)} classes")
    print(format_curve(result))
    print(f"best background threshold {result.best_threshold:.2f}: mIoU {result.best.mIoU:.2f}")
    print(format_table(result.best, class_names))
    if len(thresholds) > 1 and result.best_threshold in (min(thresholds), max(thresholds)):
        print("note: the best threshold is at the end of the range; widen --thresholds to be sure")
    if args.json is not None:
        sources = {
            "seeds": str(args.seeds.resolve()),
            "gt": str(args.gt.resolve()),
            "list": str(args.list.resolve()),
        }
        write_json(args.json, sweep_to_dict(result, class_names, sources, len(ids)))
        print(f"wrote {args.json}")
    if args.plot is not None:
        plot_curve(args.plot, result, f"{args.seeds}: {len(ids)} images")
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
