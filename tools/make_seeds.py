"""Make seeds: multi-scale + flip maps of a trained localizer for every image of a split.

For each image of --split (read with the config's test/val dataset settings: same root, classes and
image-level labels, original size, no augmentation) the localizer runs at every --scales factor on
the image and its horizontal flip; the maps are resized to the image, summed, restricted to the
image's ground-truth classes and each divided by its maximum. Output: DIR/<id>.npz with 'keys'
(1-based class indices) and 'maps' (float16, K x H x W), as tools/eval_seeds.py and
tools/make_pseudo_labels.py read them.

--fuse-cam CONFIG CHECKPOINT also runs a plain CAM model and fuses the two as the BAS authors do:
normalise(normalise(CAM) + normalise(BAS)).

The run is resumable: ids whose .npz exists are skipped, and every file is written under a temporary
name then renamed, so a killed run leaves no half file. DIR/seeds.json records the checkpoint and the
map settings; a folder made with other ones is refused (use a new --out). Under torchrun each process
takes every world-size-th image on its own device (gloo on CPU, nccl on CUDA).

Examples:
  python tools/make_seeds.py configs/bas/bas_r50_voc.py work_dirs/bas_r50_voc/epoch_10.pth \\
      --out work_dirs/bas_r50_voc/seeds --split train --data-root data/VOCdevkit/VOC2012
  python -m torch.distributed.run --nproc_per_node 4 tools/make_seeds.py CONFIG CKPT --out DIR --launcher pytorch
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from mmengine.config import DictAction

from wsss.engine import load_config
from wsss.engine.inference import model_from_checkpoint
from wsss.engine.launch import join_torchrun_group
from wsss.localizer.multiscale import DEFAULT_SCALES
from wsss.localizer.seeds import (
    SeedRunCounts,
    SeedSettings,
    class_maps_function,
    generate_seeds,
    seed_dataset,
)
from wsss.models.bas import MAP_SOURCES
from wsss.pseudo_labels.seed_io import check_seed_out_dir, write_seed_manifest

INPUT_ERRORS = (FileNotFoundError, NotADirectoryError, ValueError, pickle.UnpicklingError)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("config", help="config of the localizer, e.g. configs/bas/bas_r50_voc.py")
    parser.add_argument("checkpoint", help="its trained weights (.pth written by tools/train.py)")
    parser.add_argument("--out", required=True, type=Path, help="output folder for <id>.npz seed files")
    parser.add_argument("--split", default="train", help="split list to make seeds for (default train)")
    parser.add_argument("--data-root", help="dataset folder replacing every data_root in the config(s)")
    parser.add_argument(
        "--scales",
        nargs="+",
        type=float,
        default=list(DEFAULT_SCALES),
        metavar="S",
        help=f"test scales (default {' '.join(map(str, DEFAULT_SCALES))})",
    )
    parser.add_argument("--no-flip", action="store_true", help="leave out the horizontally flipped inputs")
    parser.add_argument(
        "--source",
        choices=MAP_SOURCES,
        help="BAS maps: 'fpm' foreground prediction maps (the model's default) or 'cam' class activation maps",
    )
    parser.add_argument(
        "--fuse-cam",
        nargs=2,
        metavar=("CAM_CONFIG", "CAM_CHECKPOINT"),
        help="also run this CAM model and fuse its maps with the localizer's, as the BAS authors do",
    )
    parser.add_argument(
        "--cfg-options",
        nargs="+",
        action=DictAction,
        metavar="KEY=VALUE",
        help="override keys of the localizer config, e.g. model.backbone.name=resnet18",
    )
    parser.add_argument(
        "--cam-cfg-options",
        nargs="+",
        action=DictAction,
        metavar="KEY=VALUE",
        help="override keys of the --fuse-cam config",
    )
    parser.add_argument(
        "--launcher",
        choices=["none", "pytorch"],
        default="none",
        help="'pytorch' when started by torch.distributed.run: each process takes its share of the images",
    )
    parser.add_argument(
        "--device",
        choices=["cpu", "cuda"],
        default="cuda" if torch.cuda.is_available() else "cpu",
        help="where the models run (default cuda when available); under torchrun each process uses cuda:LOCAL_RANK",
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="DataLoader processes reading images (default 2)"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--local-rank", "--local_rank", type=int, default=0, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def one_line(err: BaseException) -> str:
    """The innermost message of an error on one line (DataLoader workers re-raise with a traceback)."""
    while isinstance(err.__context__, INPUT_ERRORS):
        err = err.__context__
    lines = [line for line in str(err).splitlines() if line.strip()]
    if len(lines) <= 1:
        return lines[0] if lines else type(err).__name__
    return lines[-1].split(": ", 1)[-1]


def run_settings(args: argparse.Namespace) -> dict[str, Any]:
    """What decides the seeds' values, as recorded in (and compared with) DIR/seeds.json."""
    return {
        "checkpoint": str(Path(args.checkpoint).resolve()),
        "split": args.split,
        "scales": [float(s) for s in args.scales],
        "flip": not args.no_flip,
        "source": args.source,
        "fuse_cam_checkpoint": str(Path(args.fuse_cam[1]).resolve()) if args.fuse_cam else None,
    }


def build_models(args: argparse.Namespace, device: torch.device):
    """The localizer, its dataset of --split, and the optional CAM model, all checked against each other."""
    cfg = load_config(args.config, data_root=args.data_root, cfg_options=args.cfg_options)
    dataset = seed_dataset(cfg, args.split)
    model = model_from_checkpoint(cfg, args.checkpoint, device)
    class_maps_function(model, args.source)  # fails now, not at the first image, for a model without maps
    if getattr(model, "num_classes", dataset.num_classes) != dataset.num_classes:
        raise ValueError(
            f"{args.checkpoint}: the model has {model.num_classes} classes but split {args.split!r} of "
            f"{dataset.data_root} has {dataset.num_classes}; use the dataset it was trained on"
        )
    cam_model = None
    if args.fuse_cam:
        cam_cfg = load_config(args.fuse_cam[0], data_root=args.data_root, cfg_options=args.cam_cfg_options)
        cam_model = model_from_checkpoint(cam_cfg, args.fuse_cam[1], device)
        if not hasattr(cam_model, "class_maps"):
            raise ValueError(
                f"{args.fuse_cam[0]}: builds {type(cam_model).__name__}, which has no class maps"
            )
        if getattr(cam_model, "num_classes", None) != getattr(model, "num_classes", None):
            raise ValueError(
                f"{args.fuse_cam[1]}: the CAM model has {getattr(cam_model, 'num_classes', '?')} classes, the "
                f"localizer {getattr(model, 'num_classes', '?')}; fuse models trained on the same classes"
            )
    return model, dataset, cam_model


def total_counts(counts: SeedRunCounts, world_size: int, device: torch.device) -> SeedRunCounts:
    """The counts summed over all ranks (this rank's when not distributed)."""
    if world_size == 1:
        return counts
    values = torch.tensor([counts.assigned, counts.written, counts.existing], dtype=torch.long, device=device)
    dist.all_reduce(values)
    return SeedRunCounts(*(int(v) for v in values.tolist()))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.workers < 0:
        raise SystemExit(f"error: --workers must be 0 or more, got {args.workers}")
    if any(scale <= 0 for scale in args.scales):
        raise SystemExit(f"error: --scales must all be positive, got {args.scales}")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("error: --device cuda but this machine has no usable CUDA device; use --device cpu")
    if args.launcher == "pytorch":
        os.environ.setdefault(
            "LOCAL_RANK", str(args.local_rank)
        )  # the deprecated launcher passes it as an argument
    settings = run_settings(args)
    try:
        check_seed_out_dir(args.out, settings)
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None
    device, rank, world_size = torch.device(args.device), 0, 1
    if args.launcher == "pytorch":
        try:
            device = join_torchrun_group(args.device)
        except RuntimeError as err:
            raise SystemExit(f"error: {err}") from None
        rank, world_size = dist.get_rank(), dist.get_world_size()
    try:
        try:
            model, dataset, cam_model = build_models(args, device)
        except INPUT_ERRORS as err:
            raise SystemExit(f"error: {one_line(err)}") from None
        if rank == 0:
            write_seed_manifest(
                args.out,
                settings,
                config=str(Path(args.config).resolve()),
                fuse_cam_config=str(Path(args.fuse_cam[0]).resolve()) if args.fuse_cam else None,
            )
        seed_settings = SeedSettings(tuple(args.scales), not args.no_flip, args.source)
        try:
            counts = generate_seeds(
                model,
                dataset,
                args.out,
                seed_settings,
                cam_model,
                rank=rank,
                world_size=world_size,
                workers=args.workers,
                progress=rank == 0 and not args.no_progress,
            )
        except INPUT_ERRORS as err:
            raise SystemExit(f"error: {one_line(err)}") from None
        counts = total_counts(counts, world_size, device)
        if rank == 0:
            print(
                f"{counts.assigned} images of split {args.split!r} in {args.out}: {counts.written} written, "
                f"{counts.existing} already there"
            )
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
