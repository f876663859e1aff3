"""Evaluate a BAS WSOL model on CUB-200-2011 test: Top-1 / Top-5 / GT-known Loc and MaxBoxAccV2.

Each test image is resized as the config's test pipeline says (224x224 for the authors' recipe); the
model predicts class scores and the foreground map (the mean of the maps of the top-k classes; with
--topk 1 the ground-truth class's map, the authors' GT-known rule; their CUB runs average k = 80..200).
The map is resized back to the ORIGINAL image, where the ground-truth boxes live; the box is the
bounding box of the largest connected component of the min-max normalised map above --threshold.

Reported (percent): Top-1 Cls; Top-1 Loc (box IoU >= 0.5 and top-1 class right); Top-5 Loc (IoU >= 0.5
and the class among the top 5); GT-known Loc (IoU >= 0.5); MaxBoxAccV2 (mean over IoU 0.3 / 0.5 / 0.7
of the best box accuracy over the thresholds 0.00..0.99, with the best threshold of each).

Example:
  python tools/eval_wsol.py configs/bas/bas_wsol_r50_cub.py work_dirs/bas_wsol_r50_cub/epoch_120.pth \\
      --data-root data/CUB_200_2011 --json work_dirs/bas_wsol_r50_cub/wsol.json
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from mmengine.config import Config, DictAction
from mmengine.registry import DefaultScope
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from wsss.data.dataset import wsss_collate
from wsss.engine import load_config
from wsss.engine.inference import model_from_checkpoint
from wsss.fileio import atomic_write
from wsss.localizer.wsol import IOU_CRITERIA, WSOLEvaluator, WSOLResult, prediction_inputs
from wsss.registry import DATASETS

INPUT_ERRORS = (FileNotFoundError, ValueError, pickle.UnpicklingError)
LOADER_KEYS = ("wsol_test_dataloader", "test_dataloader")
# Transforms that keep the whole image in view, so a map resized to the original size lines up with it.
FRAME_KEEPING = {"Resize", "LongestMaxSize", "SmallestMaxSize", "ResizeShorter"}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("config", help="BASWSOL config, e.g. configs/bas/bas_wsol_r50_cub.py")
    parser.add_argument("checkpoint", help="its trained weights (.pth written by tools/train.py)")
    parser.add_argument("--data-root", help="CUB_200_2011 folder replacing the config's data_root")
    parser.add_argument(
        "--threshold", type=float, default=0.1, help="box threshold on the normalised map (CUB default 0.1)"
    )
    parser.add_argument(
        "--topk",
        type=int,
        default=1,
        help="classes whose maps are averaged; 1 = the ground-truth class map (default 1)",
    )
    parser.add_argument("--json", type=Path, help="write every figure to this JSON file")
    parser.add_argument(
        "--device",
        choices=["cpu", "cuda"],
        default="cuda" if torch.cuda.is_available() else "cpu",
        help="where the model runs (default cuda when available)",
    )
    parser.add_argument("--batch-size", type=int, help="images per forward pass (default: the config's)")
    parser.add_argument("--workers", type=int, help="DataLoader processes (default: the config's)")
    parser.add_argument(
        "--cfg-options",
        nargs="+",
        action=DictAction,
        metavar="KEY=VALUE",
        help="override config keys, e.g. model.num_classes=200",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser.parse_args(argv)


def _root_cause(err: BaseException) -> BaseException:
    """The innermost error of the same kinds: mmengine re-raises build errors with its own prefix."""
    while isinstance(err.__context__, INPUT_ERRORS):
        err = err.__context__
    return err


def wsol_loader_config(cfg: Config) -> dict[str, Any]:
    """The config's WSOL test loader (``wsol_test_dataloader``, else ``test_dataloader``), checked."""
    for key in LOADER_KEYS:
        if cfg.get(key):
            loader_cfg = dict(cfg[key])
            break
    else:
        raise ValueError(
            f"{cfg.filename}: the config has none of {', '.join(LOADER_KEYS)}; add the CUB test loader"
        )
    pipeline = loader_cfg["dataset"].get("pipeline") or []
    moving = [step["type"] for step in pipeline if step["type"] not in FRAME_KEEPING]
    if moving:
        raise ValueError(
            f"{cfg.filename}: the test pipeline has {', '.join(moving)}, which move the image against its boxes; "
            "evaluation resizes maps back to the original image, so the test pipeline may only resize"
        )
    return loader_cfg


def build_dataset(cfg: Config, loader_cfg: dict[str, Any]) -> Dataset:
    with DefaultScope.overwrite_default_scope(cfg.get("default_scope", "wsss")):
        dataset = DATASETS.build(dict(loader_cfg["dataset"]))
    if not hasattr(dataset, "boxes"):
        raise ValueError(
            f"{cfg.filename}: {type(dataset).__name__} has no boxes; WSOL evaluation needs CUBDataset"
        )
    return dataset


@torch.inference_mode()
def evaluate(
    model: nn.Module, loader: DataLoader, evaluator: WSOLEvaluator, topk: int, progress: bool = True
) -> WSOLResult:
    """Run ``model`` over ``loader`` and feed each image's map, at its original size, to ``evaluator``."""
    model.topk = topk
    for batch in tqdm(loader, desc="wsol", unit="batch", disable=not progress):
        data = model.data_preprocessor(batch)
        for output in model.predict(data["inputs"], data["data_samples"]):
            evaluator.update(*prediction_inputs(output))
    return evaluator.compute()


def result_to_dict(result: WSOLResult, sources: dict[str, Any]) -> dict[str, Any]:
    """The figures as JSON data (IoU criteria as string keys)."""
    data = asdict(result)
    data["max_box_acc_per_iou"] = {str(k): v for k, v in result.max_box_acc_per_iou.items()}
    data["best_threshold_per_iou"] = {str(k): v for k, v in result.best_threshold_per_iou.items()}
    return {**sources, "unit": "percent", **data}


def format_result(result: WSOLResult, topk: int) -> str:
    per_iou = ", ".join(
        f"IoU {c}: {result.max_box_acc_per_iou[c]:.2f} (t={result.best_threshold_per_iou[c]:.2f})"
        for c in IOU_CRITERIA
    )
    return "\n".join(
        [
            f"{result.num_images} images, threshold {result.threshold:.2f}, top-k {topk}",
            f"Top-1 Cls     {result.top1_cls:6.2f}",
            f"Top-1 Loc     {result.top1_loc:6.2f}",
            f"Top-5 Loc     {result.top5_loc:6.2f}",
            f"GT-known Loc  {result.gt_known_loc:6.2f}",
            f"MaxBoxAccV2   {result.max_box_acc_v2:6.2f}  ({per_iou})",
        ]
    )


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not 0.0 <= args.threshold < 1.0:
        raise SystemExit(f"error: --threshold must lie in [0, 1), got {args.threshold}")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("error: --device cuda but this machine has no usable CUDA device; use --device cpu")
    for name in ("batch_size", "workers"):
        value = getattr(args, name)
        if value is not None and value < (1 if name == "batch_size" else 0):
            raise SystemExit(f"error: --{name.replace('_', '-')} must be positive, got {value}")
    try:
        cfg = load_config(args.config, data_root=args.data_root, cfg_options=args.cfg_options)
        loader_cfg = wsol_loader_config(cfg)
        dataset = build_dataset(cfg, loader_cfg)
        model = model_from_checkpoint(cfg, args.checkpoint, args.device)
        if not hasattr(model, "foreground_map"):
            raise ValueError(
                f"{args.config}: builds {type(model).__name__}; WSOL evaluation needs a BASWSOL model"
            )
        if len(dataset.class_names) != model.num_classes:
            raise ValueError(
                f"{args.checkpoint}: the model has {model.num_classes} classes but {dataset.data_root} lists "
                f"{len(dataset.class_names)}; use the dataset it was trained on"
            )
        if not 1 <= args.topk <= model.num_classes:
            raise ValueError(f"--topk must lie in 1..{model.num_classes}, got {args.topk}")
    except INPUT_ERRORS as err:
        raise SystemExit(f"error: {_root_cause(err)}") from None
    loader = DataLoader(
        dataset,
        batch_size=args.batch_size or loader_cfg.get("batch_size", 1),
        num_workers=loader_cfg.get("num_workers", 0) if args.workers is None else args.workers,
        collate_fn=wsss_collate,
    )
    evaluator = WSOLEvaluator(threshold=args.threshold)
    try:
        result = evaluate(model, loader, evaluator, args.topk, progress=not args.no_progress)
    except INPUT_ERRORS as err:
        raise SystemExit(f"error: {_root_cause(err)}") from None
    print(format_result(result, args.topk))
    if args.json is not None:
        sources = {
            "config": str(Path(args.config).resolve()),
            "checkpoint": str(Path(args.checkpoint).resolve()),
            "data_root": str(dataset.data_root.resolve()),
            "topk": args.topk,
        }
        write_json(args.json, result_to_dict(result, sources))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
