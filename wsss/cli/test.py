"""Evaluate a trained Segmenter (configs/seg/...) on its config's test dataset."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from wsss.cli.common import (
    UserError,
    add_cfg_options,
    add_data_root,
    add_model_run_flags,
    check_device,
    check_output_dir,
    check_output_file,
    entry_point,
    make_parser,
    require_crf,
)  # fmt: skip
from wsss.engine.checkpoint import checkpoint_settings
from wsss.engine.config import load_config
from wsss.engine.datasets import split_dataset
from wsss.engine.inference import model_from_checkpoint
from wsss.engine.launch import launched
from wsss.evaluation.segmenter import evaluate_segmenter, prediction_settings
from wsss.evaluation.tables import format_table, save_json
from wsss.manifest import check_folder_settings, write_manifest
from wsss.segment.model import TTA_SCALES

DESCRIPTION = f"""\
Evaluate a trained Segmenter on the test dataset of its config (test_dataloader.dataset): predict
every image at its ORIGINAL size (logits resized back before the argmax, whatever the test pipeline
did), then print the per-class IoU / Acc table and aAcc / mIoU / mAcc (percent; pixels labelled
255 are ignored; classes absent from ground truth and prediction are left out of the means).

  python tools/test.py configs/seg/deeplabv3plus_r101_voc.py work_dirs/seg --data-root data/VOCdevkit/VOC2012 \\
      --tta --out work_dirs/seg/val_pred --json work_dirs/seg/val.json
  python -m torch.distributed.run --nproc_per_node 4 tools/test.py CONFIG CKPT --launcher pytorch

CHECKPOINT is a .pth file or a training work dir (its final checkpoint). --tta averages the softmax
over scales {", ".join(f"{s:g}" for s in TTA_SCALES)} and their mirror images; without it the
config's model.test_cfg decides. --crf refines the softmax with the dense CRF (PSA's settings; pip
install 'wsss[crf]'). --out records the checkpoint and settings in OUT/manifest.json; --resume keeps
the predictions of an interrupted run with the same ones and refuses a folder made otherwise. Under
torchrun each rank evaluates every world_size-th image and the confusion matrices are summed.
For a split without labels (VOC test), --predict-only writes the predictions only.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(DESCRIPTION)
    parser.add_argument(
        "config", help="config the model was trained with, e.g. configs/seg/deeplabv3plus_shapes.py"
    )
    parser.add_argument("checkpoint", help="checkpoint written by tools/train.py (.pth), or its work dir")
    add_data_root(parser)
    parser.add_argument("--split", help="split list to evaluate (default: the config's test split, e.g. val)")
    parser.add_argument("--out", type=Path, help="write each prediction as a VOC palette PNG <id>.png")
    parser.add_argument(
        "--show-dir", type=Path, help="write <id>.png overlays: prediction beside ground truth"
    )
    parser.add_argument(
        "--resume", action="store_true", help="keep the predictions of an interrupted run in --out"
    )
    parser.add_argument("--tta", action="store_true", help="multi-scale + flip test-time augmentation")
    parser.add_argument("--crf", action="store_true", help="refine the softmax with the dense CRF")
    parser.add_argument(
        "--predict-only", action="store_true", help="read no ground truth; needs --out or --show-dir"
    )
    parser.add_argument("--json", type=Path, help="write the full result (per class, confusion matrix) here")
    parser.add_argument(
        "--work-dir",
        type=Path,
        help="also write the result as WORK_DIR/<checkpoint>_<split>[_tta][_crf].json",
    )
    add_cfg_options(parser)
    add_model_run_flags(parser, loader_workers=False)
    return parser


def check_args(args: argparse.Namespace) -> None:
    if args.predict_only and args.out is None and args.show_dir is None:
        raise UserError("--predict-only scores nothing; add --out DIR and/or --show-dir DIR")
    if args.predict_only and args.json is not None:
        raise UserError("--predict-only reads no ground truth, so --json would stay empty; drop one of them")
    if args.resume and args.out is None:
        raise UserError("--resume continues --out; give the folder of the interrupted run")
    if args.out is not None and args.show_dir is not None and args.out.resolve() == args.show_dir.resolve():
        raise UserError("--out and --show-dir name the same folder; both write <id>.png, give two folders")
    check_device(args.device)
    if args.crf:
        require_crf()
    for flag, folder in (("--out", args.out), ("--show-dir", args.show_dir)):
        if folder is not None:
            check_output_dir(folder, flag)
    check_output_file(args.json, "--json")
    if args.work_dir is not None:
        check_output_dir(args.work_dir, "--work-dir")


def test(args: argparse.Namespace) -> int:
    check_args(args)
    cfg = load_config(args.config, data_root=args.data_root, cfg_options=args.cfg_options)
    with launched(args.device, args.launcher) as (device, rank, _):
        overrides = dict(with_mask=False, labels_from="none") if args.predict_only else {}
        try:
            dataset = split_dataset(cfg, args.split, **overrides)
        except (FileNotFoundError, ValueError) as err:
            labels_missing = any(phrase in str(err) for phrase in ("no label PNG", "label folder not found"))
            raise UserError(
                f"{err}{'; for a split without labels add --predict-only' if labels_missing else ''}"
            ) from None
        cfg.model.backbone_checkpoint = None  # the checkpoint holds the trained encoder
        model = model_from_checkpoint(
            cfg, args.checkpoint, device, needs="tta_probs", num_classes=dataset.num_classes
        )
        settings = {
            **checkpoint_settings(args.checkpoint),
            **prediction_settings(dataset.split, args.tta, args.crf, model),
        }
        if args.out is not None:
            check_folder_settings(args.out, settings, pattern="*.png")
            write_manifest(args.out, settings)
        evaluation = evaluate_segmenter(
            model, dataset, scales=TTA_SCALES if args.tta else None, flip=True if args.tta else None, crf=args.crf,
            out_dir=args.out, show_dir=args.show_dir, resume=args.resume,
            num_workers=int(cfg.test_dataloader.get("num_workers", 0)), progress=not args.no_progress,
        )  # fmt: skip
        if rank != 0:
            return 0
        reused = f"; {evaluation.reused} predictions kept from --out" if evaluation.reused else ""
        print(f"{evaluation.num_images} images of split '{dataset.split}', {dataset.num_classes} classes, "
              f"predicted at the original size ({evaluation.describe()}){reused}")  # fmt: skip
        if evaluation.result is not None:
            print(format_table(evaluation.result, dataset.class_names))
            named = (
                Path(args.checkpoint).stem + f"_{dataset.split}{'_tta' * args.tta}{'_crf' * args.crf}.json"
            )
            paths = [args.json] if args.json is not None else []
            paths += [args.work_dir / named] if args.work_dir is not None else []
            for path in paths:
                save_json(evaluation.result, path, dataset.class_names)
                print(f"wrote {path}")
        for what, folder in (("predictions", args.out), ("overlays", args.show_dir)):
            if folder is not None:
                print(f"{what} in {folder}")
        return 0


main = entry_point(test, build_parser)


if __name__ == "__main__":
    sys.exit(main())
