"""Fuse BAS seeds with CAM seeds, as the BAS authors make their pseudo masks."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from wsss.cli.common import add_progress, check_output_dir, entry_point, make_parser
from wsss.data.dataset import read_split
from wsss.localize.seed_io import check_seed_out_dir, check_seeds_exist, list_seed_ids, write_seed_manifest
from wsss.localize.seeds import fuse_seed_folders

DESCRIPTION = """\
For every image, the two seed files (<id>.npz from tools/make_seeds.py, one from a BAS model and one
from a plain CAM model, same split) become normalise(normalise(CAM) + normalise(BAS)) per class:
the maps `make_seeds.py --fuse-cam` computes, without running either model again. The authors
report BAS seeds of 57.7 mIoU on VOC train and 58.2 fused with CAM.

Output: OUT/<id>.npz in the seed format and OUT/seeds.json naming the two folders. Resumable (whole
files are kept, each file is written under a temporary name, then renamed); a folder fused from
other seeds is refused.

  python tools/fuse_seeds.py --seeds work_dirs/bas/seeds --cam work_dirs/cam/seeds --out work_dirs/fused/seeds
"""


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(DESCRIPTION)
    parser.add_argument("--seeds", required=True, type=Path, help="folder of the BAS seed files <id>.npz")
    parser.add_argument("--cam", required=True, type=Path, help="folder of the CAM seed files <id>.npz")
    parser.add_argument("--out", required=True, type=Path, help="output folder for the fused <id>.npz files")
    parser.add_argument(
        "--list", type=Path, help="split file of the ids to fuse (default: every file in --seeds)"
    )
    add_progress(parser)
    return parser


def fuse(args: argparse.Namespace) -> int:
    check_output_dir(args.out, "--out")
    settings = {"fused_from": {"bas": str(args.seeds.resolve()), "cam": str(args.cam.resolve())}}
    ids = list(dict.fromkeys(read_split(args.list))) if args.list is not None else list_seed_ids(args.seeds)
    check_seeds_exist(args.seeds, ids)
    check_seeds_exist(args.cam, ids)
    check_seed_out_dir(args.out, settings)
    write_seed_manifest(args.out, settings, fusion="normalise(normalise(CAM) + normalise(BAS))")
    counts = fuse_seed_folders(args.seeds, args.cam, args.out, ids, progress=not args.no_progress)
    print(counts.describe(f"in {args.out}", "fused"))
    return 0


main = entry_point(fuse, build_parser)


if __name__ == "__main__":
    sys.exit(main())
