"""Turn seed files (<id>.npz: keys + maps) into pseudo-label PNGs, optionally refined by a dense CRF."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from wsss.cli.common import (
    UserError,
    add_progress,
    add_workers,
    check_output_dir,
    check_positive,
    entry_point,
    make_parser,
    require_crf,
)
from wsss.data.dataset import read_split
from wsss.data.label_io import IGNORE_INDEX
from wsss.evaluation.seeds import best_sweep, read_sweep
from wsss.localize.seed_io import list_seed_ids
from wsss.pseudo.make import LabelRule, make_pseudo_labels

DESCRIPTION = """\
Three ways to choose the rule:
  --bg-threshold T               background where no class map exceeds T, else the strongest class;
  --fg-threshold H --bg-low L    IRN style: the strongest class where its map exceeds H, background
                                 where the strongest map is at most L, 255 (ignore) in between;
  --from-sweeps J1 [J2 ...]      sweep files of tools/eval_seeds.py --json: the seeds of the one
                                 with the highest mIoU, at its best threshold (no --seeds needed);
  --threshold-from J             with --seeds: one background threshold, the best of sweep file J
                                 (images without masks, such as synthetic ones, labelled at the
                                 threshold the same localizer's seeds reached on real images).
A map equal to a threshold counts as background, as in tools/eval_seeds.py, so the best threshold of
that sweep reproduces the labels it scored. --crf refines each threshold's label map by IRN's dense CRF
(pip install 'wsss[crf]').

Output: OUT/<id>.png palette PNGs whose values are class indices (0 background, 1..C, 255 ignore),
read as they are by tools/eval_seg.py, mmsegmentation and IRN-style loaders (a viewer that ignores the
palette shows them almost black; the values are right), and OUT/manifest.json with the settings, the
seeds folder, the counts and the share of pixels per value. Resumable with the same command; a folder
made with other settings is refused.

  python tools/make_pseudo_labels.py --seeds work_dirs/bas/seeds --images VOC2012/JPEGImages \\
      --out work_dirs/bas/pseudo_t0.25 --bg-threshold 0.25 --crf
"""


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(DESCRIPTION)
    parser.add_argument("--seeds", type=Path, help="folder of seed files <id>.npz")
    parser.add_argument(
        "--images", required=True, type=Path, help="folder of the original images <id>.jpg (or .png, ...)"
    )
    parser.add_argument(
        "--out", required=True, type=Path, help="output folder for <id>.png and manifest.json"
    )
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--bg-threshold", type=float, help="one background threshold in (0, 1)")
    mode.add_argument("--fg-threshold", type=float, help="IRN-style high threshold in (0, 1), with --bg-low")
    mode.add_argument(
        "--from-sweeps", nargs="+", type=Path, metavar="JSON", help="choose seeds and threshold by sweep"
    )
    mode.add_argument("--threshold-from", type=Path, metavar="JSON",
                      help="with --seeds: the best threshold of this sweep file (images without ground truth, "
                           "e.g. synthetic ones, labelled at the threshold swept on real images of the same localizer)")  # fmt: skip
    parser.add_argument("--bg-low", type=float, help="IRN-style low threshold in (0, --fg-threshold)")
    parser.add_argument(
        "--crf", action="store_true", help="refine with IRN's dense CRF (pip install 'wsss[crf]')"
    )
    parser.add_argument("--list", type=Path, help="split file of the ids to label (default: every seed file)")
    add_workers(parser, "worker processes")
    add_progress(parser)
    return parser


def make(args: argparse.Namespace) -> int:
    check_positive(args.workers, "--workers")
    check_output_dir(args.out, "--out")
    if args.from_sweeps is not None:
        if args.seeds is not None:
            raise UserError("--from-sweeps names the seeds folder itself; drop --seeds")
        choice = best_sweep(args.from_sweeps)
        print(
            f"seeds {choice.seeds_dir} (swept mIoU {choice.miou:.2f} in {choice.path}) at threshold {choice.threshold:.2f}"
        )
        seeds, rule = choice.seeds_dir, LabelRule(bg_threshold=choice.threshold, crf=args.crf)
    elif args.seeds is None:
        raise UserError("give --seeds (or --from-sweeps)")
    elif args.threshold_from is not None:
        choice = read_sweep(args.threshold_from)
        print(f"threshold {choice.threshold:.2f}: the best of {choice.path} (seeds {choice.seeds_dir})")
        seeds, rule = args.seeds, LabelRule(bg_threshold=choice.threshold, crf=args.crf)
    else:
        seeds = args.seeds
        rule = LabelRule(args.bg_threshold, args.fg_threshold, args.bg_low, args.crf)
    if args.crf:
        require_crf()
    ids = list(dict.fromkeys(read_split(args.list))) if args.list is not None else list_seed_ids(seeds)
    manifest = make_pseudo_labels(seeds, args.images, args.out, ids, rule, args.workers, not args.no_progress)
    counts, fractions = manifest["counts"], manifest["pixel_fractions"]
    print(f"{counts['images']} images in {args.out}: {counts['written']} written, {counts['existing']} already there; "
          f"background {fractions.get('0', 0):.1%}, ignore {fractions.get(str(IGNORE_INDEX), 0):.1%} of pixels")  # fmt: skip
    return 0


main = entry_point(make, build_parser)


if __name__ == "__main__":
    sys.exit(main())
