"""Make seeds: multi-scale + flip maps of a trained localizer for every image of a split."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from wsss.cli.common import (
    UserError,
    add_base_size,
    add_cfg_options,
    add_data_root,
    add_model_run_flags,
    add_test_scales,
    check_device,
    check_output_dir,
    entry_point,
    make_parser,
)  # fmt: skip
from wsss.engine.checkpoint import checkpoint_settings
from wsss.engine.config import load_config
from wsss.engine.datasets import seed_dataset
from wsss.engine.inference import model_from_checkpoint
from wsss.engine.launch import launched
from wsss.engine.per_image import sum_counts
from wsss.localize.bas import MAP_SOURCES
from wsss.localize.multiscale import DEFAULT_SCALES
from wsss.localize.seed_io import check_seed_out_dir, write_seed_manifest
from wsss.localize.seeds import SeedSettings, class_maps_function, generate_seeds

DESCRIPTION = """\
For each image of --split (read with the config's test/val dataset settings: same root, classes and
image-level labels, original size, no augmentation) the localizer runs at every --scales factor on
the image and its horizontal flip; the maps are resized to the image, summed, restricted to the
image's ground-truth classes and each divided by its maximum. Output: OUT/<id>.npz with 'keys'
(1-based class indices) and 'maps' (float16, K x H x W), as tools/eval_seeds.py and
tools/make_pseudo_labels.py read them. CHECKPOINT is a .pth file or a training work dir.

--fuse-cam CONFIG CHECKPOINT also runs a plain CAM model and fuses the two as the BAS authors do:
normalise(normalise(CAM) + normalise(BAS)).

Resumable: ids whose .npz is whole are skipped (a truncated file is made again), and every file is
written under a temporary name then renamed. OUT/seeds.json records the checkpoint and the map
settings; a folder made with other ones is refused. Under torchrun each process takes every
world-size-th image on its own device.

  python tools/make_seeds.py configs/bas/bas_r50_voc.py work_dirs/bas_r50_voc --out work_dirs/seeds \\
      --split train --data-root data/VOCdevkit/VOC2012
"""


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(DESCRIPTION)
    parser.add_argument("config", help="config of the localizer, e.g. configs/bas/bas_r50_voc.py")
    parser.add_argument(
        "checkpoint", help="its trained weights (.pth written by tools/train.py, or its work dir)"
    )
    parser.add_argument("--out", required=True, type=Path, help="output folder for <id>.npz seed files")
    parser.add_argument("--split", default="train", help="split list to make seeds for (default train)")
    add_data_root(parser)
    add_test_scales(parser, DEFAULT_SCALES)
    parser.add_argument("--no-flip", action="store_true", help="leave out the horizontally flipped inputs")
    add_base_size(parser)
    parser.add_argument("--source", choices=MAP_SOURCES, help="BAS maps: 'fpm' (the default) or 'cam'")
    parser.add_argument("--fuse-cam", nargs=2, metavar=("CAM_CONFIG", "CAM_CHECKPOINT"),
                        help="also run this CAM model and fuse its maps with the localizer's")  # fmt: skip
    add_cfg_options(parser, what="the localizer config")
    add_cfg_options(parser, "--cam-cfg-options", "the --fuse-cam config")
    add_model_run_flags(parser)
    return parser


def run_settings(args: argparse.Namespace) -> dict[str, Any]:
    """What decides the seeds' values, as recorded in (and compared with) OUT/seeds.json."""
    return {
        **checkpoint_settings(args.checkpoint),
        "split": args.split,
        "scales": [float(s) for s in args.scales],
        "flip": not args.no_flip,
        "source": args.source,
        "base_size": args.base_size,
        **(checkpoint_settings(args.fuse_cam[1], "fuse_cam_checkpoint") if args.fuse_cam else {}),
    }


def make_seeds(args: argparse.Namespace) -> int:
    if args.workers < 0:
        raise UserError(f"--workers must be 0 or more, got {args.workers}")
    if args.base_size is not None and args.base_size < 16:
        raise UserError(f"--base-size must be at least 16 pixels, got {args.base_size}")
    if not all(0.1 <= scale <= 8 for scale in args.scales):  # NaN fails this too
        raise UserError(
            f"--scales must lie in 0.1..8 (a map at 1% of the image is constant), got {args.scales}"
        )
    check_device(args.device)
    check_output_dir(args.out, "--out")
    with launched(args.device, args.launcher) as (device, rank, world_size):
        settings = run_settings(args)
        check_seed_out_dir(args.out, settings)
        cfg = load_config(args.config, data_root=args.data_root, cfg_options=args.cfg_options)
        dataset = seed_dataset(cfg, args.split)
        model = model_from_checkpoint(
            cfg, args.checkpoint, device, needs="class_maps", num_classes=dataset.num_classes
        )
        class_maps_function(model, args.source)  # fails now, not at the first image, for a model without maps
        cam_model = None
        if args.fuse_cam:
            cam_cfg = load_config(
                args.fuse_cam[0], data_root=args.data_root, cfg_options=args.cam_cfg_options
            )
            cam_model = model_from_checkpoint(
                cam_cfg, args.fuse_cam[1], device, needs="class_maps", num_classes=dataset.num_classes
            )
        if rank == 0:
            write_seed_manifest(args.out, settings, config=str(Path(args.config).resolve()))
        counts = generate_seeds(
            model, dataset, args.out, SeedSettings(tuple(args.scales), not args.no_flip, args.source, args.base_size), cam_model,
            rank=rank, world_size=world_size, workers=args.workers, progress=rank == 0 and not args.no_progress,
        )  # fmt: skip
        counts = sum_counts(counts, device)
        if rank == 0:
            print(counts.describe(f"of split {args.split!r} in {args.out}"))
    return 0


main = entry_point(make_seeds, build_parser)


if __name__ == "__main__":
    sys.exit(main())
