"""Train any wsss model from a config with mmengine's Runner (logs, checkpoints, validation)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from mmengine.model import is_model_wrapper

from wsss.cli.common import (
    UserError,
    add_cfg_options,
    add_data_root,
    add_launcher,
    check_output_dir,
    entry_point,
    make_parser,
    one_line,
)
from wsss.engine.checkpoint import install_safe_checkpoint_loader
from wsss.engine.config import locate_in_config
from wsss.engine.launch import prepare_launcher
from wsss.engine.runner import WSSSRunner
from wsss.engine.training import build_train_config, check_start, choose_start

DESCRIPTION = """\
Train a model described by a config file (configs/...): one entry point for every model.

Logs, the dumped config, checkpoints (epoch_N.pth, last_checkpoint), training_summary.json (every
validation, best and last values) and final_checkpoint (the best checkpoint by the config's
save_best metric, else the last) go to --work-dir (default ./work_dirs/<config name>). Other tools
accept that work dir wherever they take a checkpoint.

  python tools/train.py configs/bas/cam_shapes.py
  python tools/train.py configs/bas/cam_r50_voc.py --data-root /data/VOC2012 --amp
  python -m torch.distributed.run --nproc_per_node 4 tools/train.py CONFIG --launcher pytorch

--resume continues an interrupted run from the newest whole checkpoint of the work dir (or from the
checkpoint given) with its optimizer, schedule and epoch counter; with --load-from as well, those
weights are the start only when the work dir has no checkpoint yet. --load-from refuses a file whose
weights do not fit the model (another class count, another architecture).
--data-root points the config's primary dataset(s) at a folder; its class_names.txt decides the
classes and every num_classes of the model.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(DESCRIPTION)
    parser.add_argument("config", help="config file, e.g. configs/bas/cam_shapes.py")
    parser.add_argument(
        "--work-dir", help="folder for logs and checkpoints (default ./work_dirs/<config name>)"
    )
    add_data_root(parser)
    parser.add_argument(
        "--resume", nargs="?", const="auto", metavar="CKPT",
        help="continue training: from CKPT, or without a value from the newest checkpoint in the work dir",
    )  # fmt: skip
    parser.add_argument(
        "--load-from", metavar="CKPT", help="start from these model weights (a .pth or a training work dir)"
    )
    parser.add_argument(
        "--amp", action="store_true", help="mixed precision on CUDA; ignored with a warning on CPU"
    )
    add_cfg_options(parser)
    add_launcher(parser)
    parser.add_argument("--seed", type=int, help="random seed (overrides randomness.seed of the config)")
    return parser


def train(args: argparse.Namespace) -> int:
    if args.launcher == "pytorch":
        os.environ.setdefault("LOCAL_RANK", str(args.local_rank))
    install_safe_checkpoint_loader()
    cfg, notes = build_train_config(
        args.config, args.work_dir, args.data_root, args.cfg_options, args.seed, args.amp
    )
    check_output_dir(Path(cfg.work_dir), "--work-dir" if args.work_dir else "the config's work_dir")
    start = choose_start(cfg, args.resume, args.load_from)
    for note in (*notes, *start.notes):
        print(f"warning: {note}", file=sys.stderr)
    prepare_launcher(cfg, args.launcher)
    # Build the model, the loaders, the evaluator and the optimizer now, so a bad entry fails here, in one line.
    section = "model"
    try:
        runner = WSSSRunner.from_cfg(cfg)
        section = "train_dataloader or train_cfg"
        runner.train_loop  # noqa: B018
        section = "val_dataloader or val_evaluator"
        runner.val_loop  # noqa: B018
        section = "optim_wrapper"
        runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    except (KeyError, TypeError, RuntimeError, AssertionError, ValueError) as err:
        raise config_error(args.config, cfg, err, args.cfg_options, section) from None
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    loading = check_start(model, start)
    if loading:
        print(loading)
    runner.train()
    return 0


def config_error(config: str, cfg, err: BaseException, given: dict | None, section: str) -> BaseException:
    """A builder's error as one line naming the config and the entry at fault (found from what the
    message quotes, else the section being built); errors that already name their file (a dataset
    folder, a split list) are kept as they are."""
    if isinstance(err, KeyError) and err.args and isinstance(err.args[0], str):
        full = err.args[0]  # str(KeyError) would add quotes around the whole message
    else:
        full = one_line(err)
    if isinstance(err, ValueError) and "/" in full.split(": ", 1)[0]:
        return err
    where = locate_in_config(cfg, full, given) or [section]
    message = full.split(" Please check whether", 1)[0].strip().rstrip(".")
    return UserError(
        f"{config}: the config does not build at {' or '.join(where)} ({message}); fix that entry"
    )


main = entry_point(train, build_parser)


if __name__ == "__main__":
    sys.exit(main())
