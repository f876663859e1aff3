"""Evaluate seeds against ground-truth label PNGs by a background-threshold sweep."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from wsss.cli.common import (
    add_ground_truth,
    add_progress,
    add_workers,
    check_output_file,
    check_positive,
    entry_point,
    make_parser,
)
from wsss.data.classes import class_names_from_spec
from wsss.data.dataset import read_split
from wsss.evaluation.seeds import (
    DEFAULT_THRESHOLD_RANGE,
    format_curve,
    parse_thresholds,
    sweep_seed_folder,
    sweep_to_dict,
)  # fmt: skip
from wsss.evaluation.tables import format_table
from wsss.fileio import write_json_atomic
from wsss.visualize.plots import plot_threshold_curve

DESCRIPTION = """\
For every threshold t a pixel is background when no class map exceeds t (a map equal to t counts as
background), else the class of its strongest map; mIoU is accumulated over the whole list. Prints the
mIoU curve, the best t and its mmsegmentation-style per-class table (percent), and warns when the
best t is at an end of the range swept; optionally writes the sweep as JSON (the seeds folder, the
curve, the best t and its per-class result) and the curve as a PNG. Pixels whose ground truth is 255
are ignored; classes absent from both ground truth and prediction are left out of the mean. The JSON
is what tools/make_pseudo_labels.py --from-sweeps reads; its best t reproduces the labels scored here.

  python tools/eval_seeds.py --seeds work_dirs/bas/seeds --gt VOC2012/SegmentationClass \\
      --list VOC2012/ImageSets/Segmentation/train.txt --classes voc --json seeds.json --plot seeds.png
"""


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(DESCRIPTION)
    parser.add_argument("--seeds", required=True, type=Path, help="folder of seed files <id>.npz")
    add_ground_truth(parser, "folder of ground-truth label PNGs <id>.png")
    parser.add_argument("--thresholds", default=DEFAULT_THRESHOLD_RANGE,
                        help=f"START:STOP:STEP, STOP included (default {DEFAULT_THRESHOLD_RANGE}), or a comma list")  # fmt: skip
    parser.add_argument(
        "--json", type=Path, help="write the sweep (curve, best threshold, per class) as JSON"
    )
    parser.add_argument("--plot", type=Path, help="save the mIoU curve as a PNG image")
    add_workers(parser)
    add_progress(parser)
    return parser


def evaluate(args: argparse.Namespace) -> int:
    thresholds = parse_thresholds(args.thresholds)
    check_positive(args.workers, "--workers")
    check_output_file(args.json, "--json")
    check_output_file(args.plot, "--plot")
    class_names = class_names_from_spec(args.classes, args.gt.parent)
    ids = read_split(args.list)
    result = sweep_seed_folder(
        args.seeds, args.gt, ids, len(class_names), thresholds, args.workers, not args.no_progress
    )
    print(f"{len(ids)} images, {len(class_names)} classes")
    print(format_curve(result))
    print(f"best background threshold {result.best_threshold:.2f}: mIoU {result.best.mIoU:.2f}")
    print(format_table(result.best, class_names))
    if result.best_at_edge:
        print(f"warning: the best threshold {result.best_threshold:.2f} is at an end of the range swept; "
              "widen --thresholds to be sure", file=sys.stderr)  # fmt: skip
    if args.json is not None:
        write_json_atomic(args.json, sweep_to_dict(result, class_names, args.seeds, args.gt, len(ids)))
        print(f"wrote {args.json}")
    if args.plot is not None:
        mious = [r.mIoU for r in result.results]
        plot_threshold_curve(
            args.plot, result.thresholds, mious, result.best_threshold, f"{args.seeds}: {len(ids)} images"
        )
        print(f"wrote {args.plot}")
    return 0


main = entry_point(evaluate, build_parser)


if __name__ == "__main__":
    sys.exit(main())
