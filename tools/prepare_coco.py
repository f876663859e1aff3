"""Convert a COCO instances json into VOC-layout label PNGs, split lists and image-level labels for WSSS."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from wsss.data.coco_convert import CROWD_POLICIES, convert_coco

DESCRIPTION = """\
Convert a COCO instances json (2014 or 2017) into the VOC layout the wsss datasets read:

  OUT/SegmentationClass/<image stem>.png  palette PNG: 0 background, 1..80 categories, 255 ignore
  OUT/ImageSets/Segmentation/<split>.txt  e.g. train2014.txt from instances_train2014.json
  OUT/class_names.txt                     background + the json's category names in id order
  OUT/cls_labels.json                     {image stem: [sorted 1-based class indices]}
  OUT/<split>                             symlink to --images (configs read images through it)
  OUT/JPEGImages                          symlink to the first split's images (made only if absent)

Class index = sorted(category ids).index(id) + 1, so COCO's ids 1..90 with gaps become 1..80.
Objects are painted largest first, so smaller objects end on top of larger ones they overlap.
Crowd regions: --crowd class paints them with their class in that same order; --crowd ignore
paints them 255 after every other object, so ignore wins wherever a crowd region overlaps.
cls_labels.json lists the classes of all non-empty annotations, crowd ones included.
Images with no non-empty annotation are left out unless --keep-empty.

Run train and val with the same --out to get one folder holding both splits (cls_labels.json is
merged). Reruns keep PNGs already there with the right size, so an interrupted run resumes; after
changing --crowd, delete OUT/SegmentationClass first. Label PNGs look almost black in viewers that
ignore the palette; their pixel values are still the class indices.
"""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--ann", required=True, help="COCO instances json, e.g. annotations/instances_train2014.json"
    )
    parser.add_argument("--images", required=True, help="folder holding this split's images, e.g. train2014/")
    parser.add_argument(
        "--out", required=True, help="output folder (VOC layout); shared by train and val runs"
    )
    parser.add_argument(
        "--crowd",
        choices=CROWD_POLICIES,
        default="class",
        help="crowd regions: 'class' paints their class (default), 'ignore' paints 255 on top of everything",
    )
    parser.add_argument(
        "--keep-empty",
        action="store_true",
        help="also list images without annotations, as all-background PNGs with an empty class list",
    )
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="warning: %(message)s")
    try:
        summary = convert_coco(
            args.ann,
            args.images,
            args.out,
            crowd=args.crowd,
            keep_empty=args.keep_empty,
            workers=args.workers,
        )
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f"error: {err}") from None
    print(
        f"{summary.split}: {summary.listed} images listed in {summary.split_file} "
        f"({summary.written} PNGs written, {summary.reused} already there), "
        f"{summary.left_out_empty} without annotations left out"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
