"""Evaluate a folder of label PNGs (pseudo labels or predictions) against ground-truth PNGs.

Prints the mmsegmentation-style table (per-class IoU and Acc, then aAcc / mIoU / mAcc, percent) and
optionally writes everything, per-class FP/FN ratios and the confusion matrix included, as JSON.
Pixels whose ground truth is 255 are ignored; classes absent from both ground truth and prediction
are left out of the means.

Example:
    python tools/eval_seg.py --pred work_dirs/pseudo --gt VOCdevkit/VOC2012/SegmentationClass \\
        --list VOCdevkit/VOC2012/ImageSets/Segmentation/train.txt --classes voc --json result.json
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from wsss.data.classes import class_names_from_spec
from wsss.data.dataset import read_split
from wsss.evaluation.confusion import evaluate_label_folders, format_table, save_json, usable_cores


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Missing predictions, size mismatches and ground-truth values outside the class list stop "
        "the run with an error naming the file. Scores are percent.",
    )
    parser.add_argument("--pred", required=True, type=Path, help="folder of predicted label PNGs, <id>.png")
    parser.add_argument("--gt", required=True, type=Path, help="folder of ground-truth label PNGs, <id>.png")
    parser.add_argument("--list", required=True, type=Path, help="split file with one image id per line")
    parser.add_argument(
        "--classes",
        required=True,
        help="'voc', 'coco', a class_names.txt (one name per line, background first) or an mmengine config .py",
    )
    parser.add_argument(
        "--json", type=Path, help="also write the full result (per class, matrix) to this JSON file"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=usable_cores(),
        help="processes decoding PNGs in parallel (default: number of usable cores)",
    )
    parser.add_argument(
        "--fp-fn", action="store_true", help="add MARS's false-positive / false-negative ratio columns"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.workers < 1:
        raise SystemExit(f"error: --workers must be at least 1, got {args.workers}")
    for flag, folder in (("--pred", args.pred), ("--gt", args.gt)):
        if not folder.is_dir():
            raise SystemExit(f"error: {flag} {folder} is not a folder")
    try:
        ids = read_split(args.list)
        class_names = class_names_from_spec(args.classes)
        counts = evaluate_label_folders(
            args.pred, args.gt, ids, len(class_names), workers=args.workers, progress=not args.no_progress
        )
    except (ValueError, FileNotFoundError) as err:
        raise SystemExit(f"error: {err}") from None
    result = counts.compute()
    print(f"{len(ids)} images, {len(class_names)} classes")
    print(format_table(result, class_names, show_errors=args.fp_fn))
    if args.json is not None:
        save_json(result, args.json, class_names)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
