"""Check a PASCAL VOC 2012 devkit and write the files WSSS training reads."""

from __future__ import annotations

import argparse
import sys

from wsss.cli.common import entry_point, make_parser
from wsss.data.voc_prepare import prepare_voc

DESCRIPTION = """\
Writes ImageSets/Segmentation/train_aug.txt, cls_labels.json (image-level labels from the XML tags)
and class_names.txt into VOC2012/, converting SBD masks to SegmentationClassAug/ when --sbd is given.
Anything missing is reported by name and count; the exit code is non-zero only when training cannot
work at all.

  python tools/prepare_voc.py --devkit data/VOCdevkit --sbd data/benchmark_RELEASE
"""


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(DESCRIPTION)
    parser.add_argument("--devkit", required=True, help="VOCdevkit or VOCdevkit/VOC2012 folder")
    parser.add_argument(
        "--sbd", help="SBD benchmark_RELEASE folder (its dataset/cls/*.mat masks make SegmentationClassAug)"
    )
    return parser


def prepare(args: argparse.Namespace) -> int:
    report = prepare_voc(args.devkit, args.sbd)
    print(report.format())
    return 1 if report.fatal else 0


main = entry_point(prepare, build_parser)


if __name__ == "__main__":
    sys.exit(main())
