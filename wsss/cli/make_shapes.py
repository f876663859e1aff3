"""Write the procedural "shapes" dataset (the toolkit's embedded data) in VOC layout."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from wsss.cli.common import check_output_dir, check_positive, entry_point, make_parser
from wsss.data.shapes import (
    DIFFICULTIES,
    MIN_IMAGE_SIZE,
    SHAPES_CLASSES,
    SHAPES_CONTEXTS,
    make_shapes_dataset,
)

DESCRIPTION = (
    "Draw a synthetic segmentation dataset in VOC layout: "
    f"{len(SHAPES_CLASSES) - 1} object classes ({', '.join(SHAPES_CLASSES[1:])}) with distinct shapes and "
    "textures but overlapping colours, 1-3 objects per image, and a deliberate co-occurrence bias ("
    + ", ".join(f"{s.name} under {s.class_name}" for s in SHAPES_CONTEXTS)
    + "). Writes JPEGImages/, SegmentationClass/ (VOC palette PNGs, 255 = boundary), ContextMasks/ "
    "(0 none, 1 water, 2 rails, where visible), ImageSets/Segmentation/{train,val}.txt, class_names.txt, "
    "cls_labels.json, captions.json (COCO captions format) and bias.json. "
    "The same seed and size give identical files; rerunning into the same folder skips finished images.\n\n"
    "  python tools/make_shapes.py --out data/shapes --n-train 2000 --n-val 500 --size 96 --seed 0"
)


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(DESCRIPTION)
    parser.add_argument(
        "--out", required=True, type=Path, metavar="DIR", help="output folder (created if missing)"
    )
    parser.add_argument(
        "--n-train", type=int, default=2000, metavar="N", help="training images (default 2000)"
    )
    parser.add_argument("--n-val", type=int, default=500, metavar="M", help="validation images (default 500)")
    parser.add_argument(
        "--size",
        type=int,
        default=96,
        metavar="S",
        help=f"image side in pixels, at least {MIN_IMAGE_SIZE} (default 96)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="K",
        help="random seed; every image depends only on it, its split and index",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=min(2, os.cpu_count() or 1),
        metavar="W",
        help="processes drawing images",
    )
    parser.add_argument("--difficulty", choices=sorted(DIFFICULTIES), default="default",
                        help="easy, default or hard: object size, colour contrast, background texture and clutter, "
                             "noise, occlusion (see wsss.data.shapes.Difficulty)")  # fmt: skip
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a shapes dataset drawn into --out with other settings",
    )
    return parser


def make(args: argparse.Namespace) -> int:
    for flag, value, minimum in (("--n-train", args.n_train, 1), ("--n-val", args.n_val, 1),
                                 ("--size", args.size, MIN_IMAGE_SIZE), ("--seed", args.seed, 0), ("--workers", args.workers, 1)):  # fmt: skip
        check_positive(value, flag, minimum)
    check_output_dir(args.out, "--out")
    summary = make_shapes_dataset(args.out, args.n_train, args.n_val, args.size, args.seed, workers=args.workers,
                                  overwrite=args.overwrite, difficulty=args.difficulty)  # fmt: skip
    total = summary["written"] + summary["skipped"]
    print(f"wrote {summary['written']} images ({summary['skipped']} already present) to {args.out} "
          f"in {summary['seconds']:.1f} s ({total / max(summary['seconds'], 1e-9):.0f} images/s)")  # fmt: skip
    measured = summary["measured"]["all"]
    for spec in SHAPES_CONTEXTS:
        with_class = measured["context_given_class"][spec.name][spec.class_name]
        without = measured["context_without_biased_class"][spec.name]
        shown = ["n/a" if v is None else f"{v:.0%}" for v in (with_class, without)]
        print(f"  {spec.name}: in {shown[0]} of {spec.class_name} images, in {shown[1]} of the other images")
    return 0


main = entry_point(make, build_parser)


if __name__ == "__main__":
    sys.exit(main())
