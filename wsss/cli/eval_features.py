"""Probe a feature folder against ground truth: cluster probe, linear probe, context separability."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from wsss.cli.common import add_progress, check_input_dir, check_output_file, entry_point, make_parser
from wsss.data.classes import class_names_from_spec
from wsss.data.dataset import read_split
from wsss.features.probe import probe_features
from wsss.fileio import write_json_atomic

DESCRIPTION = """\
Scores on the feature grid (each cell takes the majority ground-truth label of its pixels):
  cluster probe   k-means (cosine) with one cluster per class (plus one per context with --context),
                  Hungarian-matched to the classes: mIoU
  linear probe    a linear classifier fitted on the even-numbered images, mIoU on the others
  context         with --context (a context-mask folder with contexts.json, as tools/make_shapes.py
                  writes ContextMasks/): per context, the balanced accuracy of a linear classifier
                  separating its cells from those of the class it co-occurs with (water vs boat)
Percentages; --json writes every number, per-class IoU included.

  python tools/eval_features.py --features work_dirs/feats --gt data/shapes/SegmentationClass \\
      --list data/shapes/ImageSets/Segmentation/train.txt --classes data/shapes/class_names.txt \\
      --context data/shapes/ContextMasks --json work_dirs/feats_probe.json
"""


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(DESCRIPTION)
    parser.add_argument("--features", required=True, type=Path, help="folder of <id>.npz feature files")
    parser.add_argument("--gt", required=True, type=Path, help="folder of ground-truth label PNGs")
    parser.add_argument("--list", required=True, type=Path, help="split file with one image id per line")
    parser.add_argument("--classes", required=True, help="'voc', 'coco', a class_names.txt or a config .py")
    parser.add_argument("--context", type=Path, help="context-mask folder (with contexts.json)")
    parser.add_argument("--json", type=Path, help="also write the result to this JSON file")
    add_progress(parser)
    return parser


def evaluate(args: argparse.Namespace) -> int:
    check_output_file(args.json, "--json")
    check_input_dir(args.features, "--features", "folder of feature files")
    check_input_dir(args.gt, "--gt", "folder of ground-truth PNGs")
    check_input_dir(args.context, "--context", "context-mask folder")
    ids = read_split(args.list)
    class_names = class_names_from_spec(args.classes, args.gt.parent)
    result = probe_features(args.features, args.gt, ids, class_names, args.context, not args.no_progress)
    print(f"{result['images']} images, {result['cells']} labelled cells, D={result['feature_dim']}")
    print(f"cluster probe ({result['cluster']['clusters']} clusters): mIoU {result['cluster']['mIoU']:.2f}")
    print(f"linear probe: mIoU {result['linear']['mIoU']:.2f}")
    for name, row in result.get("context", {}).items():
        accuracy = row["balanced_accuracy"]
        shown = "no cells on one side" if accuracy is None else f"{100 * accuracy:.2f}%"
        print(f"{name} vs its class, linear separability (balanced accuracy): {shown}")
    if args.json is not None:
        write_json_atomic(args.json, {"classes": list(class_names), **result})
        print(f"wrote {args.json}")
    return 0


main = entry_point(evaluate, build_parser)


if __name__ == "__main__":
    sys.exit(main())
