"""Evaluate a BAS WSOL model on CUB-200-2011 test: Top-1 / Top-5 / GT-known Loc and MaxBoxAccV2."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from torch.utils.data import DataLoader

from wsss.cli.common import (
    UserError,
    add_cfg_options,
    add_data_root,
    add_device,
    add_progress,
    check_device,
    check_output_file,
    entry_point,
    make_parser,
)  # fmt: skip
from wsss.data.dataset import wsss_collate
from wsss.engine.config import load_config
from wsss.engine.datasets import build_dataset, wsol_loader_config
from wsss.engine.inference import model_from_checkpoint
from wsss.evaluation.wsol import WSOLEvaluator, evaluate_wsol, format_result, result_to_dict
from wsss.fileio import write_json_atomic

DESCRIPTION = """\
Each test image is resized as the config's test pipeline says (224x224 for the authors' recipe); the
model predicts class scores and the foreground map (the mean of the maps of the top-k classes; with
--topk 1 the ground-truth class's map, the authors' GT-known rule; their CUB runs average k = 80..200).
The map is resized back to the ORIGINAL image, where the ground-truth boxes live; the box is the
bounding box of the largest connected component of the min-max normalised map above --threshold.

Reported (percent): Top-1 Cls; Top-1 Loc (box IoU >= 0.5 and top-1 class right); Top-5 Loc; GT-known
Loc (IoU >= 0.5); MaxBoxAccV2 (mean over IoU 0.3 / 0.5 / 0.7 of the best box accuracy over the
thresholds 0.00..0.99, with the best threshold of each).

  python tools/eval_wsol.py configs/bas/bas_wsol_r50_cub.py work_dirs/bas_wsol_r50_cub \\
      --data-root data/CUB_200_2011 --json work_dirs/bas_wsol_r50_cub/wsol.json
"""


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(DESCRIPTION)
    parser.add_argument("config", help="BASWSOL config, e.g. configs/bas/bas_wsol_r50_cub.py")
    parser.add_argument(
        "checkpoint", help="its trained weights (.pth written by tools/train.py, or its work dir)"
    )
    add_data_root(parser)
    parser.add_argument(
        "--threshold", type=float, default=0.1, help="box threshold on the normalised map (default 0.1)"
    )
    parser.add_argument(
        "--topk", type=int, default=1, help="classes whose maps are averaged; 1 = the ground truth's"
    )
    parser.add_argument("--json", type=Path, help="write every figure to this JSON file")
    add_device(parser)
    parser.add_argument("--batch-size", type=int, help="images per forward pass (default: the config's)")
    parser.add_argument("--workers", type=int, help="DataLoader processes (default: the config's)")
    add_cfg_options(parser)
    add_progress(parser)
    return parser


def evaluate(args: argparse.Namespace) -> int:
    if not 0.0 <= args.threshold < 1.0:
        raise UserError(f"--threshold must lie in [0, 1), got {args.threshold}")
    check_device(args.device)
    if args.batch_size is not None and args.batch_size < 1 or args.workers is not None and args.workers < 0:
        raise UserError("--batch-size must be at least 1 and --workers at least 0")
    check_output_file(args.json, "--json")
    cfg = load_config(args.config, data_root=args.data_root, cfg_options=args.cfg_options)
    loader_cfg = wsol_loader_config(cfg)
    dataset = build_dataset(cfg, loader_cfg["dataset"])
    if not hasattr(dataset, "boxes"):
        raise UserError(
            f"{args.config}: {type(dataset).__name__} has no boxes; WSOL evaluation needs CUBDataset"
        )
    model = model_from_checkpoint(cfg, args.checkpoint, args.device, needs="foreground_map",
                                  num_classes=len(dataset.class_names))  # fmt: skip
    if not 1 <= args.topk <= model.num_classes:
        raise UserError(f"--topk must lie in 1..{model.num_classes}, got {args.topk}")
    model.topk = args.topk
    loader = DataLoader(
        dataset,
        batch_size=args.batch_size or loader_cfg.get("batch_size", 1),
        num_workers=loader_cfg.get("num_workers", 0) if args.workers is None else args.workers,
        collate_fn=wsss_collate,
    )
    result = evaluate_wsol(
        model, loader, WSOLEvaluator(threshold=args.threshold), progress=not args.no_progress
    )
    print(format_result(result, args.topk))
    if args.json is not None:
        sources = {"config": str(Path(args.config).resolve()), "checkpoint": str(Path(args.checkpoint).resolve()),
                   "data_root": str(dataset.data_root.resolve()), "topk": args.topk}  # fmt: skip
        write_json_atomic(args.json, {**sources, **result_to_dict(result)})
        print(f"wrote {args.json}")
    return 0


main = entry_point(evaluate, build_parser)


if __name__ == "__main__":
    sys.exit(main())
