"""Run the whole weakly supervised pipeline of a config as resumable stages, and write a report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from wsss.cli.common import (
    UserError,
    add_cfg_options,
    check_output_dir,
    check_positive,
    entry_point,
    make_parser,
)
from wsss.engine.config import read_config
from wsss.pipeline.report import headline_value, write_report
from wsss.pipeline.runner import PipelineRunner, make_context, print_status
from wsss.pipeline.stage import StageError

DEFAULT_CONFIG = "configs/pipeline/shapes.py"
DESCRIPTION = f"""\
The config's `stages` dict lists every stage (type and options); each is one tool command, run in
dependency order with independent stages side by side (--jobs, each with its share of the cores).
By default the pipeline draws the shapes dataset into WORK_DIR/data; --data-root runs it on any
VOC-layout folder instead (its class_names.txt sets the classes). Each stage writes WORK_DIR/<stage>,
logs to WORK_DIR/logs/<stage>.log and its measured figures to WORK_DIR/summaries/<stage>.json; the end
writes WORK_DIR/report.md and report.json.

Running the same command again resumes: finished stages are skipped, unless their command, their
config files or their inputs changed, in which case they and everything after them run again from
an empty folder (said as [rerun]; their outdated output is removed first). A training stage below its learning floor stops the pipeline with a diagnosis.

  python tools/run_pipeline.py                                  # {DEFAULT_CONFIG} in work_dirs/pipeline
  python tools/run_pipeline.py configs/pipeline/shapes_1k.py --work-dir work_dirs/shapes_1k
  python tools/run_pipeline.py --cfg-options stages.data.difficulty=hard   # harder shapes
  python tools/run_pipeline.py --list                           # stages, status, times
  python tools/run_pipeline.py --dry-run > commands.sh          # the commands, for a cluster scheduler
"""


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(DESCRIPTION)
    parser.add_argument(
        "config", nargs="?", default=DEFAULT_CONFIG, help=f"pipeline config (default {DEFAULT_CONFIG})"
    )
    parser.add_argument(
        "--work-dir", type=Path, default=Path("work_dirs/pipeline"), help="folder for every stage's output"
    )
    parser.add_argument(
        "--data-root", type=Path, help="a VOC-layout dataset instead of drawing the shapes data"
    )
    parser.add_argument(
        "--jobs", type=int, help="stages run at the same time (default: the config's `jobs`, else 2)"
    )
    parser.add_argument("--gpus", type=int, default=0, help="run stages with models under torchrun on N GPUs")
    add_cfg_options(
        parser, what="the pipeline config", example="stages.data.difficulty=hard stages.data.seed=1"
    )
    what = parser.add_mutually_exclusive_group()
    what.add_argument(
        "--list", action="store_true", help="print the stages with their status and times, run nothing"
    )
    what.add_argument(
        "--dry-run", action="store_true", help="print each stage's command in order, run nothing"
    )
    what.add_argument(
        "--only", metavar="STAGE", help="run this stage alone (again), when what it needs is done"
    )
    what.add_argument(
        "--from", dest="start_from", metavar="STAGE", help="run this stage and everything after it again"
    )
    return parser


def run_pipeline(args: argparse.Namespace) -> int:
    if not Path(args.config).is_file():
        raise UserError(f"{args.config}: pipeline config not found; see configs/pipeline/")
    check_positive(args.gpus, "--gpus", 0)
    check_output_dir(args.work_dir, "--work-dir")
    cfg = read_config(args.config, "pipeline config")
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    jobs = args.jobs if args.jobs is not None else cfg.get("jobs", 2)
    check_positive(jobs, "--jobs")
    try:
        ctx, stages = make_context(cfg, args.config, args.work_dir, args.data_root, args.gpus)
        runner = PipelineRunner(stages, ctx, jobs)
        if args.list:
            print_status(runner)
            return 0
        if args.dry_run:
            print("\n".join(runner.dry_run()))
            return 0
        ctx.work_dir.mkdir(parents=True, exist_ok=True)
        summaries = runner.run(only=args.only, start_from=args.start_from)
        if args.only is not None:
            return 0
        report = write_report(runner.stages, summaries, ctx, cfg.get("report", {}))
    except StageError as err:
        raise UserError(str(err)) from None
    print((ctx.work_dir / "report.md").read_text(encoding="utf-8"))
    upper = report["upper_bound"]
    for name, ratio in report["relative_to_upper_bound"].items():
        if ratio is None:  # no upper bound in this pipeline (or it was not measured)
            continue
        print(
            f"{name}: mIoU {headline_value(summaries[name]):.2f}; upper bound {upper['mIoU']:.2f} ({100 * ratio:.0f}%)"
        )
    print(f"report in {ctx.work_dir / 'report.md'}")
    return 0


main = entry_point(run_pipeline, build_parser)


if __name__ == "__main__":
    sys.exit(main())
