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

from wsss.data.classes import resolve_class_names
from wsss.evaluation.confusion import evaluate_label_folders, format_table, save_json, usable_cores


def read_id_list(path: Path) -> list[str]:
    """Image ids from a split file: the first token of each non-blank line, reduced to its stem, so
    both ``2007_000032`` and ``/JPEGImages/2007_000032.jpg /SegmentationClassAug/2007_000032.png``
    lines work."""
    if not path.exists() or path.is_dir():
        raise SystemExit(f"error: id list {path} not found; give a split file with one image id per line")
    ids = [
        Path(line.split()[0]).stem for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    if not ids:
        raise SystemExit(f"error: id list {path} is empty; give a split file with one image id per line")
    return ids


def _config_class_names(path: Path) -> tuple[str, ...]:
    """Class names of the dataset of an mmengine config (test, then val, then train dataloader)."""
    from mmengine.config import Config

    cfg = Config.fromfile(str(path))
    for key in ("test_dataloader", "val_dataloader", "train_dataloader"):
        dataset = (cfg.get(key) or {}).get("dataset")
        while isinstance(dataset, dict) and "classes" not in dataset and "data_root" not in dataset:
            dataset = dataset.get("dataset")  # wrappers such as RepeatDataset
        if isinstance(dataset, dict):
            return resolve_class_names(dataset.get("classes"), dataset.get("data_root"))
    raise SystemExit(
        f"error: config {path} has no dataloader dataset with `classes` or `data_root`; pass --classes voc|coco|FILE"
    )


def load_class_names(spec: str) -> tuple[str, ...]:
    """Class names from ``voc``, ``coco``, a class_names.txt file or an mmengine config .py."""
    if spec.lower() in ("voc", "coco"):
        return resolve_class_names(spec)
    path = Path(spec)
    if not path.is_file():
        raise SystemExit(f"error: --classes {spec}: not voc, coco or an existing class file / config")
    try:
        if path.suffix == ".py":
            return _config_class_names(path)
        return resolve_class_names(path)
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None


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
    ids = read_id_list(args.list)
    class_names = load_class_names(args.classes)
    try:
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
