"""Keep the synthetic images the project's classifier agrees with; the kept ones become the folder's train split."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from wsss.cli.common import (
    UserError,
    add_cfg_options,
    add_device,
    add_progress,
    check_device,
    check_positive,
    entry_point,
    make_parser,
)  # fmt: skip
from wsss.engine.checkpoint import resolve_checkpoint
from wsss.engine.config import load_config
from wsss.engine.inference import classifier_from_checkpoint
from wsss.synth.filter import FilterRule, classifier_scorer, filter_folder, read_synthetic_folder

DESCRIPTION = """\
Runs a classifier trained on the real images (CONFIG and CHECKPOINT of a CAM or BAS model: a .pth or
its training work dir) on every image of a synthetic folder made by tools/generate_synthetic.py
--classes, at the classifier's validation size, and keeps an image when each class its prompt names
scores at least --threshold (the sigmoid of its logit) and, with --reject-unprompted R, no class it
does not name scores R or more. An image prompted with no class (background only) is kept when no
class scores R (or --threshold without R) or more.

The candidates are every image manifest.json records, so a second run with another threshold starts
from the same images. Writes the kept ids to SYNTH/ImageSets/Segmentation/train.txt (atomically)
and, in manifest.json, per image the classifier's scores, kept and the reason, and under 'filter'
the settings and totals (kept, filtered, per class). A manifest that disagrees with the images
(missing or unrecorded JPEGs, another prompt or seed, other classes in cls_labels.json) is refused,
naming the ids.

  python tools/filter_synthetic.py configs/bas/cam_shapes.py work_dirs/cam --synthetic work_dirs/synth \\
      --threshold 0.5 --reject-unprompted 0.9
"""


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(DESCRIPTION)
    parser.add_argument("config", help="config of the classifier, e.g. configs/bas/cam_shapes.py")
    parser.add_argument(
        "checkpoint", help="its trained weights (.pth written by tools/train.py, or its work dir)"
    )
    parser.add_argument("--synthetic", required=True, type=Path, metavar="DIR",
                        help="folder written by tools/generate_synthetic.py --classes")  # fmt: skip
    parser.add_argument("--threshold", type=float, default=0.5,
                        help="least sigmoid score of every prompted class (default 0.5)")  # fmt: skip
    parser.add_argument("--reject-unprompted", type=float, metavar="R",
                        help="also drop images where a class the prompt does not name scores R or more")  # fmt: skip
    parser.add_argument("--batch-size", type=int, default=32, help="images per classifier call (default 32)")
    add_cfg_options(parser, what="the classifier config")
    add_device(parser)
    add_progress(parser)
    return parser


def filter_synthetic(args: argparse.Namespace) -> int:
    check_positive(args.batch_size, "--batch-size")
    check_device(args.device)
    try:
        rule = FilterRule(args.threshold, args.reject_unprompted)
    except ValueError as err:
        raise UserError(f"--threshold / --reject-unprompted: {err}") from None
    folder = read_synthetic_folder(args.synthetic)
    cfg = load_config(args.config, data_root=args.synthetic, cfg_options=args.cfg_options)
    model, pipeline = classifier_from_checkpoint(cfg, args.checkpoint, args.device, len(folder.class_names))
    source = {
        "config": str(Path(args.config).resolve()),
        "checkpoint": str(resolve_checkpoint(args.checkpoint).resolve()),
    }
    score = classifier_scorer(model, pipeline, args.batch_size)
    totals = filter_folder(
        folder, score, rule, source, batch_size=args.batch_size, progress=not args.no_progress
    )
    print(f"kept {totals['kept']} of {totals['total']} images of {args.synthetic} (threshold {rule.threshold:g}"
          + (f", unprompted below {rule.reject:g}" if rule.reject is not None else "") + "): "
          + ", ".join(f"{name} {row['kept']}/{row['prompted']}" for name, row in totals["per_class"].items()))  # fmt: skip
    if totals["kept"] == 0:
        raise UserError(f"{args.synthetic}: the classifier agrees with none of the {totals['total']} images; "
                        "lower --threshold, or check the generator (tools/eval_generator.py)")  # fmt: skip
    return 0


main = entry_point(filter_synthetic, build_parser)


if __name__ == "__main__":
    sys.exit(main())
