"""Train any wsss model from a config with mmengine's Runner (logs, checkpoints, validation)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
from mmengine.config import Config, DictAction
from mmengine.runner import Runner, find_latest_checkpoint

from wsss.engine import load_config, prepare_launcher

DESCRIPTION = """\
Train a model described by a config file (configs/...): one entry point for every model.

Logs, the dumped config, checkpoints (epoch_N.pth, last_checkpoint) and validation results go to
--work-dir (default ./work_dirs/<config name>).

  python tools/train.py configs/bas/cam_shapes.py
  python tools/train.py configs/bas/cam_r50_voc.py --data-root /data/VOC2012 --amp
  python -m torch.distributed.run --nproc_per_node 4 tools/train.py CONFIG --launcher pytorch

--resume continues an interrupted run from the newest checkpoint in the work dir (or from the
checkpoint given) with its optimizer, learning-rate schedule and epoch counter; the schedule is
the one the run started with, so it does not stretch training to a new max_epochs.
--data-root replaces every data_root of the config; if that folder holds class_names.txt, its
classes decide the datasets' classes and the model's num_classes.
"""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("config", help="config file, e.g. configs/bas/cam_shapes.py")
    parser.add_argument(
        "--work-dir", help="folder for logs and checkpoints (default ./work_dirs/<config name>)"
    )
    parser.add_argument("--data-root", help="dataset folder replacing every data_root in the config")
    start = parser.add_mutually_exclusive_group()
    start.add_argument(
        "--resume",
        nargs="?",
        const="auto",
        metavar="CKPT",
        help="continue training: from CKPT, or without a value from the newest checkpoint in the work dir "
        "(none there: start from scratch)",
    )
    start.add_argument(
        "--load-from", metavar="CKPT", help="start from these model weights (fresh optimizer and schedule)"
    )
    parser.add_argument(
        "--amp",
        action="store_true",
        help="mixed precision (fp16 autocast with loss scaling) on CUDA; ignored with a warning on CPU",
    )
    parser.add_argument(
        "--cfg-options",
        nargs="+",
        action=DictAction,
        metavar="KEY=VALUE",
        help="override config keys, e.g. train_cfg.max_epochs=2 model.backbone.name=resnet18",
    )
    parser.add_argument(
        "--launcher",
        choices=["none", "pytorch"],
        default="none",
        help="'pytorch' when started by torch.distributed.run (gloo backend on machines without CUDA)",
    )
    parser.add_argument("--seed", type=int, help="random seed (overrides randomness.seed of the config)")
    parser.add_argument(
        "--local-rank", "--local_rank", type=int, default=0, help=argparse.SUPPRESS
    )  # passed by the deprecated torch.distributed.launch
    return parser.parse_args(argv)


def _checked_file(path: str, what: str) -> str:
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: {what} not found; give an existing .pth file")
    return path


def build_train_config(args: argparse.Namespace) -> Config:
    """The config after every command-line override."""
    cfg = load_config(args.config, data_root=args.data_root, cfg_options=args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get("work_dir") is None:
        cfg.work_dir = str(Path("work_dirs") / Path(args.config).stem)
    if args.load_from is not None:
        cfg.load_from = _checked_file(args.load_from, "checkpoint for --load-from")
    if args.resume == "auto":
        latest = find_latest_checkpoint(cfg.work_dir)
        if latest is None:
            print(
                f"warning: no checkpoint in {cfg.work_dir} to resume from; training from the start",
                file=sys.stderr,
            )
        else:
            cfg.resume, cfg.load_from = True, latest
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, _checked_file(args.resume, "checkpoint for --resume")
    if args.seed is not None:
        cfg.merge_from_dict({"randomness.seed": args.seed})
    if args.amp:
        if torch.cuda.is_available():
            cfg.optim_wrapper.type = "AmpOptimWrapper"
            cfg.optim_wrapper.setdefault("loss_scale", "dynamic")
        else:
            print("warning: --amp needs CUDA; training in fp32 on this CPU-only machine", file=sys.stderr)
    return cfg


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.launcher == "pytorch":
        os.environ.setdefault("LOCAL_RANK", str(args.local_rank))
    try:
        cfg = build_train_config(args)
        prepare_launcher(cfg, args.launcher)
        runner = Runner.from_cfg(cfg)
        # Build the data loaders and evaluator now, so a bad dataset fails here with a short message.
        runner.train_loop  # noqa: B018
        runner.val_loop  # noqa: B018
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f"error: {_root_cause(err)}") from None
    runner.train()
    return 0


def _root_cause(err: BaseException) -> BaseException:
    """The innermost error of the same kinds: mmengine re-raises build errors with its own prefix."""
    while isinstance(err.__context__, (FileNotFoundError, ValueError)):
        err = err.__context__
    return err


if __name__ == "__main__":
    sys.exit(main())
