"""Convert a COCO instances json into VOC-layout label PNGs, split lists and image-level labels for WSSS."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from wsss.cli.common import add_workers, check_output_dir, check_positive, entry_point, make_parser
from wsss.data.coco_convert import CROWD_POLICIES, convert_coco
from wsss.fileio import first_items

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
Images with no non-empty annotation are left out unless --keep-empty. An annotation that cannot be
painted (coordinates that are not finite or lie far outside the image, a size that disagrees with
the image) stops the run with a line naming its id, unless --skip-bad, which leaves it out and
lists the ids left out at the end.

Run train and val with the same --out to get one folder holding both splits (cls_labels.json is
merged). Reruns keep PNGs already there with the right size, so an interrupted run resumes; after
changing --crowd, delete OUT/SegmentationClass first.

  python tools/prepare_coco.py --ann annotations/instances_train2014.json --images train2014 --out data/coco
"""


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(DESCRIPTION)
    parser.add_argument(
        "--ann", required=True, help="COCO instances json, e.g. annotations/instances_train2014.json"
    )
    parser.add_argument("--images", required=True, help="folder holding this split's images, e.g. train2014/")
    parser.add_argument(
        "--out", required=True, help="output folder (VOC layout); shared by train and val runs"
    )
    parser.add_argument("--crowd", choices=CROWD_POLICIES, default="class",
                        help="crowd regions: 'class' paints their class (default), 'ignore' paints 255 on top")  # fmt: skip
    parser.add_argument("--keep-empty", action="store_true", help="also list images without annotations")
    parser.add_argument(
        "--skip-bad", action="store_true", help="leave out annotations that cannot be painted"
    )
    add_workers(parser, "worker processes", default=1)
    return parser


def prepare(args: argparse.Namespace) -> int:
    check_positive(args.workers, "--workers")
    check_output_dir(Path(args.out), "--out")
    logging.basicConfig(level=logging.WARNING, format="warning: %(message)s")
    summary = convert_coco(args.ann, args.images, args.out, crowd=args.crowd, keep_empty=args.keep_empty,
                           workers=args.workers, skip_bad=args.skip_bad)  # fmt: skip
    print(f"{summary.split}: {summary.listed} images listed in {summary.split_file} ({summary.written} PNGs written, "
          f"{summary.reused} already there), {summary.left_out_empty} without annotations left out")  # fmt: skip
    if summary.refused:
        print(f"warning: {len(summary.refused)} annotations could not be painted and were left out "
              f"(ids {first_items(summary.refused, 10)})",
              file=sys.stderr)  # fmt: skip
    return 0


main = entry_point(prepare, build_parser)


if __name__ == "__main__":
    sys.exit(main())
