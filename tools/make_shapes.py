"""Write the procedural "shapes" dataset (the toolkit's default data) in VOC layout.

Example::

    python tools/make_shapes.py --out data/shapes --n-train 2000 --n-val 500 --size 96 --seed 0
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from wsss.data.shapes import MIN_IMAGE_SIZE, SHAPES_CLASSES, SHAPES_CONTEXTS, make_shapes_dataset


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=(
            "Draw a synthetic segmentation dataset in VOC layout: "
            f"{len(SHAPES_CLASSES) - 1} object classes ({', '.join(SHAPES_CLASSES[1:])}) with distinct shapes and "
            "textures but overlapping colours, 1-3 objects per image, and a deliberate co-occurrence bias ("
            + ", ".join(f"{s.name} under {s.class_name}" for s in SHAPES_CONTEXTS)
            + "). Writes JPEGImages/, SegmentationClass/ (VOC palette PNGs, 255 = boundary), "
            "ImageSets/Segmentation/{train,val}.txt, class_names.txt, cls_labels.json and bias.json. "
            "The same seed and size give identical files; rerunning into the same folder skips finished images."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--out",
        required=True,
        type=Path,
        default=argparse.SUPPRESS,
        metavar="DIR",
        help="output folder (created if missing)",
    )
    parser.add_argument("--n-train", type=int, default=2000, metavar="N", help="number of training images")
    parser.add_argument("--n-val", type=int, default=500, metavar="M", help="number of validation images")
    parser.add_argument(
        "--size", type=int, default=96, metavar="S", help=f"image side in pixels (at least {MIN_IMAGE_SIZE})"
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="K",
        help="random seed; every image depends only on it, its split and its index",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=min(2, os.cpu_count() or 1),
        metavar="W",
        help="processes drawing images in parallel",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the files of a shapes dataset drawn earlier into --out with another seed or size",
    )
    return parser


def _percent(fraction: float | None) -> str:
    return "n/a" if fraction is None else f"{fraction:.0%}"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for flag, value, minimum in (
        ("--n-train", args.n_train, 1),
        ("--n-val", args.n_val, 1),
        ("--size", args.size, MIN_IMAGE_SIZE),
        ("--seed", args.seed, 0),
        ("--workers", args.workers, 1),
    ):
        if value < minimum:
            raise SystemExit(f"error: {flag} must be at least {minimum}, got {value}")
    try:
        summary = make_shapes_dataset(
            args.out,
            args.n_train,
            args.n_val,
            args.size,
            args.seed,
            workers=args.workers,
            overwrite=args.overwrite,
        )
    except (ValueError, OSError) as err:
        raise SystemExit(f"error: {err}") from err

    total = summary["written"] + summary["skipped"]
    print(
        f"wrote {summary['written']} images ({summary['skipped']} already present) to {args.out} "
        f"in {summary['seconds']:.1f} s ({total / max(summary['seconds'], 1e-9):.0f} images/s)"
    )
    measured = summary["measured"]["all"]
    for spec in SHAPES_CONTEXTS:
        with_class = _percent(measured["context_given_class"][spec.name][spec.class_name])
        without = _percent(measured["context_without_biased_class"][spec.name])
        print(f"  {spec.name}: in {with_class} of {spec.class_name} images, in {without} of the other images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
