"""Check a PASCAL VOC 2012 devkit and write the files WSSS training reads.

Writes ImageSets/Segmentation/train_aug.txt, cls_labels.json (image-level labels from the XML tags)
and class_names.txt into VOC2012/, converting SBD masks to SegmentationClassAug/ when --sbd is given.
Anything missing is reported by name and count; the exit code is non-zero only when training
cannot work at all.
"""

from __future__ import annotations

import argparse
import sys

from wsss.data.voc_prepare import prepare_voc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--devkit", required=True, help="VOCdevkit or VOCdevkit/VOC2012 folder")
    parser.add_argument(
        "--sbd",
        default=None,
        help="SBD benchmark_RELEASE folder (its dataset/cls/*.mat masks make SegmentationClassAug)",
    )
    args = parser.parse_args(argv)
    try:
        report = prepare_voc(args.devkit, args.sbd)
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f"error: {err}") from None
    print(report.format())
    return 1 if report.fatal else 0


if __name__ == "__main__":
    sys.exit(main())
