"""Evaluate a folder of label PNGs (pseudo labels or predictions) against ground-truth PNGs."""

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
from wsss.evaluation.context import context_shares, format_context_shares
from wsss.evaluation.folders import evaluate_label_folders
from wsss.evaluation.tables import format_table, save_json

DESCRIPTION = """\
Prints the mmsegmentation-style table (per-class IoU and Acc, then aAcc / mIoU / mAcc, percent) and
optionally writes everything, per-class FP/FN ratios and the confusion matrix included, as JSON.
Pixels whose ground truth is 255 are ignored; predictions of 254 (MARS's biased pixels) and 255
count as background; any other value beyond the class list stops the run with the file named (PNGs of
another dataset, or the wrong --classes); classes absent from both ground truth and prediction are
left out of the means.

  python tools/eval_seg.py --pred work_dirs/pseudo --gt VOCdevkit/VOC2012/SegmentationClass \\
      --list VOCdevkit/VOC2012/ImageSets/Segmentation/train.txt --classes voc --json result.json
"""


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(DESCRIPTION)
    parser.add_argument("--pred", required=True, type=Path, help="folder of predicted label PNGs, <id>.png")
    add_ground_truth(parser, "folder of ground-truth label PNGs, <id>.png")
    parser.add_argument(
        "--json", type=Path, help="also write the full result (per class, matrix) to this JSON file"
    )
    parser.add_argument(
        "--fp-fn", action="store_true", help="add MARS's false-positive / false-negative ratio columns"
    )
    parser.add_argument(
        "--context",
        type=Path,
        help="a context-mask folder (the shapes data's ContextMasks/, with contexts.json): also print how "
        "much of each context region (water, rails) the labels give to the class it co-occurs with",
    )
    add_workers(parser, "processes decoding PNGs in parallel")
    add_progress(parser)
    return parser


def evaluate(args: argparse.Namespace) -> int:
    check_positive(args.workers, "--workers")
    check_output_file(args.json, "--json")
    ids = read_split(args.list)
    class_names = class_names_from_spec(args.classes, args.gt.parent)
    counts = evaluate_label_folders(
        args.pred, args.gt, ids, len(class_names), args.workers, not args.no_progress
    )
    result = counts.compute()
    shares = context_shares(args.pred, args.context, ids, class_names) if args.context is not None else None
    print(f"{len(ids)} images, {len(class_names)} classes")
    print(format_table(result, class_names, show_errors=args.fp_fn))
    if shares is not None:
        print(format_context_shares(shares))
    if args.json is not None:
        save_json(result, args.json, class_names, **({"context_share": shares} if shares is not None else {}))
        print(f"wrote {args.json}")
    return 0


main = entry_point(evaluate, build_parser)


if __name__ == "__main__":
    sys.exit(main())
