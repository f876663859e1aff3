"""Evaluate a trained Segmenter (configs/seg/...) on its config's test dataset."""

from __future__ import annotations

import argparse
import pickle
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.distributed as dist
from mmengine.config import Config, DictAction

from wsss.data.dataset import ImageLabelDataset
from wsss.engine import load_config
from wsss.engine.inference import model_from_checkpoint
from wsss.engine.launch import join_torchrun_group
from wsss.evaluation.confusion import format_table, save_json
from wsss.models.segmenter import TTA_SCALES, Segmenter
from wsss.pseudo_labels.crf import import_pydensecrf
from wsss.registry import DATASETS
from wsss.segmenter import SegmenterEvaluation, evaluate_segmenter

DESCRIPTION = f"""\
Evaluate a trained Segmenter on the test dataset of its config (test_dataloader.dataset): predict
every image at its ORIGINAL size (logits resized back before the argmax, whatever the test pipeline
did), then print the per-class IoU / Acc table and aAcc / mIoU / mAcc (percent; pixels labelled
255 are ignored; classes absent from ground truth and prediction are left out of the means).

  python tools/test.py configs/seg/deeplabv3plus_r101_voc.py work_dirs/seg/best_mIoU_epoch_90.pth \\
      --data-root data/VOCdevkit/VOC2012 --tta --out work_dirs/seg/val_pred --json work_dirs/seg/val.json
  python -m torch.distributed.run --nproc_per_node 4 tools/test.py CONFIG CKPT --launcher pytorch

--tta averages the softmax over scales {", ".join(f"{s:g}" for s in TTA_SCALES)} and their mirror
images; without it the config's model.test_cfg decides (default one scale, no flip). --crf refines
the softmax with the dense CRF (PSA's settings; needs pydensecrf: pip install 'wsss[crf]').
Under torchrun each rank evaluates every world_size-th image and the confusion matrices are summed,
so the scores equal a single-process run. For a split without labels (VOC test), --predict-only
writes the predictions for the evaluation server.
"""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "config", help="config file the model was trained with, e.g. configs/seg/deeplabv3plus_shapes.py"
    )
    parser.add_argument("checkpoint", help="checkpoint written by tools/train.py (.pth)")
    parser.add_argument("--data-root", help="dataset folder replacing every data_root in the config")
    parser.add_argument("--split", help="split list to evaluate (default: the config's test split, e.g. val)")
    parser.add_argument(
        "--out", type=Path, help="write each prediction as a VOC palette PNG <id>.png at the image's size"
    )
    parser.add_argument(
        "--show-dir",
        type=Path,
        help="write <id>.png overlays: the prediction on the image, next to the ground truth",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="keep readable predictions of the right size already in --out (and overlays in --show-dir) "
        "from an interrupted run of the same model and settings; only the others are computed",
    )
    parser.add_argument("--tta", action="store_true", help="multi-scale + flip test-time augmentation")
    parser.add_argument("--crf", action="store_true", help="refine the softmax with the dense CRF")
    parser.add_argument(
        "--predict-only",
        action="store_true",
        help="read no ground truth (a split without labels); needs --out or --show-dir",
    )
    parser.add_argument("--json", type=Path, help="write the full result (per class, confusion matrix) here")
    parser.add_argument(
        "--work-dir",
        type=Path,
        help="also write the result JSON as WORK_DIR/<checkpoint name>_<split>[_tta][_crf].json",
    )
    parser.add_argument(
        "--cfg-options",
        nargs="+",
        action=DictAction,
        metavar="KEY=VALUE",
        help="override config keys, e.g. model.test_cfg.flip=True test_dataloader.num_workers=0",
    )
    parser.add_argument(
        "--launcher",
        choices=["none", "pytorch"],
        default="none",
        help="'pytorch' when started by torch.distributed.run (gloo on CPU, nccl on CUDA)",
    )
    parser.add_argument(
        "--device",
        choices=["cpu", "cuda"],
        default="cuda" if torch.cuda.is_available() else "cpu",
        help="where the model runs (default: cuda when available)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser.parse_args(argv)


def build_dataset(cfg: Config, split: str | None, predict_only: bool) -> ImageLabelDataset:
    """The test dataset of ``cfg`` (built directly, so its errors keep their own one-line message)."""
    dataset_cfg = dict((cfg.get("test_dataloader") or {}).get("dataset") or {})
    if not dataset_cfg:
        raise SystemExit("error: the config has no test_dataloader.dataset; use a configs/seg/ config")
    if split is not None:
        dataset_cfg["split"] = split
    if predict_only:
        dataset_cfg.update(with_mask=False, labels_from="none")
    type_name = dataset_cfg.pop("type", "ImageLabelDataset")
    dataset_type = DATASETS.get(type_name)
    if dataset_type is None:
        raise SystemExit(f"error: unknown dataset type {type_name!r} in test_dataloader.dataset")
    try:
        return dataset_type(**dataset_cfg)
    except (FileNotFoundError, ValueError) as err:
        labels_missing = any(phrase in str(err) for phrase in ("no label PNG", "label folder not found"))
        hint = "; for a split without labels add --predict-only" if labels_missing else ""
        raise SystemExit(f"error: {err}{hint}") from None


def build_model(cfg: Config, checkpoint: str, device: torch.device) -> Segmenter:
    """The config's Segmenter with the checkpoint's weights, in eval mode on ``device``."""
    model_type = str(cfg.get("model", {}).get("type"))
    if model_type.split(".")[-1] != "Segmenter":  # 'Segmenter' or the scoped 'wsss.Segmenter'
        raise SystemExit(
            f"error: {cfg.filename} builds a {model_type!r}, not a Segmenter; "
            "tools/test.py evaluates configs/seg/ models"
        )
    cfg.model.backbone_checkpoint = None  # the checkpoint holds the trained encoder; no ImageNet file needed
    try:
        return model_from_checkpoint(cfg, checkpoint, device)
    except (FileNotFoundError, ValueError, pickle.UnpicklingError) as err:
        raise SystemExit(f"error: {err}") from None


def result_file_name(checkpoint: str, split: str, tta: bool, crf: bool) -> str:
    """``<checkpoint stem>_<split>[_tta][_crf].json``."""
    return f"{Path(checkpoint).stem}_{split}{'_tta' if tta else ''}{'_crf' if crf else ''}.json"


def report(evaluation: SegmenterEvaluation, class_names: Sequence[str], split: str) -> None:
    """Print what was evaluated and the table."""
    reused = f"; {evaluation.reused} predictions reused from --out" if evaluation.reused else ""
    print(
        f"{evaluation.num_images} images of split '{split}', {len(class_names)} classes, "
        f"predicted at the original size ({evaluation.describe()}){reused}"
    )
    if evaluation.result is not None:
        print(format_table(evaluation.result, class_names))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.predict_only and args.out is None and args.show_dir is None:
        raise SystemExit("error: --predict-only scores nothing; add --out DIR and/or --show-dir DIR")
    if args.resume and args.out is None and args.show_dir is None:
        raise SystemExit(
            "error: --resume continues --out / --show-dir; give the folder of the interrupted run"
        )
    if args.out is not None and args.show_dir is not None and args.out.resolve() == args.show_dir.resolve():
        raise SystemExit(
            "error: --out and --show-dir name the same folder; both write <id>.png, give two folders"
        )
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("error: --device cuda but no CUDA device is available; use --device cpu")
    if args.crf:
        try:
            import_pydensecrf()
        except ImportError as err:
            raise SystemExit(f"error: --crf: {err}") from None
    try:
        cfg = load_config(args.config, data_root=args.data_root, cfg_options=args.cfg_options)
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f"error: {err}") from None
    distributed = args.launcher == "pytorch"
    try:
        device = join_torchrun_group(args.device) if distributed else torch.device(args.device)
    except RuntimeError as err:
        raise SystemExit(f"error: {err}") from None
    try:
        model = build_model(cfg, args.checkpoint, device)
        dataset = build_dataset(cfg, args.split, args.predict_only)
        if model.num_classes != dataset.num_classes:
            raise SystemExit(
                f"error: the model predicts {model.num_classes} classes but the dataset at {dataset.data_root} "
                f"has {dataset.num_classes} ({', '.join(dataset.class_names[:4])}, ...); use the data root "
                "and config the checkpoint was trained with"
            )
        try:
            evaluation = evaluate_segmenter(
                model,
                dataset,
                scales=TTA_SCALES if args.tta else None,
                flip=True if args.tta else None,
                crf=args.crf,
                out_dir=args.out,
                show_dir=args.show_dir,
                resume=args.resume,
                num_workers=int(cfg.test_dataloader.get("num_workers", 0)),
                progress=not args.no_progress,
            )
        except (FileNotFoundError, ValueError) as err:
            raise SystemExit(f"error: {err}") from None
        if dist.is_initialized() and dist.get_rank() != 0:
            return 0
        report(evaluation, dataset.class_names, dataset.split)
        if evaluation.result is not None:
            json_paths = [args.json] if args.json is not None else []
            if args.work_dir is not None:
                json_paths.append(
                    args.work_dir / result_file_name(args.checkpoint, dataset.split, args.tta, args.crf)
                )
            for path in json_paths:
                save_json(evaluation.result, path, dataset.class_names)
                print(f"wrote {path}")
        if args.out is not None:
            print(f"predictions in {args.out}")
        if args.show_dir is not None:
            print(f"overlays in {args.show_dir}")
        return 0
    finally:
        if distributed and dist.is_initialized():
            dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
