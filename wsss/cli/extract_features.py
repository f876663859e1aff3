"""Extract dense features: multi-scale + flip features of a feature model for every image of a split."""

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
from wsss.engine.inference import build_model, model_from_checkpoint
from wsss.engine.launch import launched
from wsss.engine.per_image import sum_counts
from wsss.features.extract import (
    DEFAULT_FEATURE_SCALES,
    ExtractionSettings,
    check_feature_model,
    extract_features,
)
from wsss.features.io import FEATURE_FORMAT
from wsss.manifest import check_folder_settings, write_manifest

# Feature configs train without validation: their images may come from the train loader alone.
DATASET_KEYS = ("test_dataloader", "val_dataloader", "train_dataloader")

DESCRIPTION = f"""\
For each image of --split (the config's test/val dataset settings: same root and images, original
size, no augmentation) the feature model runs at every --scales factor on the image (padded to a
multiple of its stride) and, with --flip, on its mirror image; the features are resampled onto the
image's grid at the model's stride and averaged. Output: {FEATURE_FORMAT},
and OUT/manifest.json (model, config, checkpoint, scales, flip, D, stride, count), as tools/mars.py
and tools/eval_features.py read them.

CHECKPOINT is a .pth file or a training work dir of a trained feature model (configs/features/*);
a frozen backbone whose config names its local weights (dino_vit) needs none; --random-init runs
the model as built, for the floor a trained model must beat. Resumable (whole files are skipped,
every file is written under a temporary name then renamed); a folder made with other settings is
refused. Under torchrun each process takes every world-size-th image.

  python tools/extract_features.py configs/features/scratch_shapes.py work_dirs/features \\
      --out work_dirs/feats --split train --data-root data/shapes --scales 1.0 0.5 1.5 --flip
"""


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(DESCRIPTION)
    parser.add_argument("config", help="config of the feature model, e.g. configs/features/scratch_shapes.py")
    parser.add_argument("checkpoint", nargs="?", help="its trained weights (.pth or a training work dir)")
    parser.add_argument("--out", required=True, type=Path, help="output folder for <id>.npz feature files")
    parser.add_argument("--split", default="train", help="split list to extract (default train)")
    add_data_root(parser)
    add_test_scales(parser, DEFAULT_FEATURE_SCALES)
    parser.add_argument("--flip", action="store_true", help="also average the mirrored image's features")
    add_base_size(parser)
    parser.add_argument(
        "--random-init", action="store_true", help="no weights: the untrained model (the floor)"
    )
    add_cfg_options(parser, what="the feature model config")
    add_model_run_flags(parser)
    return parser


def run_settings(args: argparse.Namespace) -> dict[str, Any]:
    """What decides the files' values, as recorded in (and compared with) OUT/manifest.json."""
    return {
        "config": str(Path(args.config).resolve()),
        **(checkpoint_settings(args.checkpoint) if args.checkpoint else {"checkpoint": None}),
        "random_init": args.random_init,
        "split": args.split,
        "scales": [float(s) for s in args.scales],
        "flip": args.flip,
        "base_size": args.base_size,
    }


def extract(args: argparse.Namespace) -> int:
    if args.workers < 0:
        raise UserError(f"--workers must be 0 or more, got {args.workers}")
    if any(scale < 0.1 or scale > 8 for scale in args.scales):
        raise UserError(f"--scales must lie in 0.1..8, got {args.scales}")
    if args.base_size is not None and args.base_size < 16:
        raise UserError(f"--base-size must be at least 16 pixels, got {args.base_size}")
    if args.checkpoint and args.random_init:
        raise UserError("give a CHECKPOINT or --random-init, not both")
    check_device(args.device)
    with launched(args.device, args.launcher) as (device, rank, world_size):
        settings = run_settings(args)
        check_folder_settings(args.out, settings, pattern="*.npz")
        check_output_dir(args.out, "--out")
        cfg = load_config(args.config, data_root=args.data_root, cfg_options=args.cfg_options)
        dataset = seed_dataset(cfg, args.split, DATASET_KEYS)
        if args.checkpoint:
            model = model_from_checkpoint(cfg, args.checkpoint, device)
        else:
            model = build_model(cfg).to(device).eval()
            if getattr(model, "needs_checkpoint", True) and not args.random_init:
                raise UserError(
                    f"{args.config}: {type(model).__name__} learns its weights; give its CHECKPOINT "
                    "(the work dir of tools/train.py), or --random-init for the untrained floor"
                )
        model = check_feature_model(model, args.config)
        if rank == 0:
            write_manifest(args.out, settings, model=type(model).__name__, feature_dim=model.feature_dim,
                           stride=model.stride, count=len(dataset), format=FEATURE_FORMAT, complete=False)  # fmt: skip
        counts = extract_features(
            model, dataset, args.out, ExtractionSettings(tuple(args.scales), args.flip, args.base_size),
            rank=rank, world_size=world_size, workers=args.workers, progress=rank == 0 and not args.no_progress,
        )  # fmt: skip
        counts = sum_counts(counts, device)
        if rank == 0:
            write_manifest(args.out, settings, model=type(model).__name__, feature_dim=model.feature_dim,
                           stride=model.stride, count=len(dataset), format=FEATURE_FORMAT, complete=True)  # fmt: skip
            where = f"of split {args.split!r} in {args.out}"
            print(f"{counts.describe(where)}; D={model.feature_dim}, stride {model.stride}")
    return 0


main = entry_point(extract, build_parser)


if __name__ == "__main__":
    sys.exit(main())
