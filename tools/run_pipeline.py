"""Run the whole weakly supervised pipeline and write a report (the toolkit's main job).

Stages: make the shapes dataset if absent -> train CAM, then BAS and a same-budget CAM baseline ->
multi-scale seeds -> background-threshold sweep on the labelled training images -> pseudo labels
(+ dense CRF) -> evaluate them -> train the segmenter on them -> test on val -> the same segmenter
on ground-truth masks (upper bound) -> WORK_DIR/report.md, report.json, report.png.

Each stage logs to WORK_DIR/logs/<stage>.log and is skipped when done, so running the same command
again resumes. Independent stages run side by side (--jobs), each with its share of the cores.
--data-root points the pipeline at any VOC-layout dataset; its class_names.txt sets the classes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mmengine.config import Config

from wsss.pipeline.stages import StageFailed, StageRunner
from wsss.pipeline.weakly_supervised import WeaklySupervisedPipeline

DEFAULT_CONFIG = "configs/pipeline/shapes.py"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "config", nargs="?", default=DEFAULT_CONFIG, help=f"pipeline config (default {DEFAULT_CONFIG})"
    )
    parser.add_argument("--work-dir", default="work_dirs/pipeline", help="folder for every stage's output")
    parser.add_argument(
        "--data-root", default=None, help="VOC-layout dataset (default: WORK_DIR/shapes, made when absent)"
    )
    parser.add_argument(
        "--jobs", type=int, default=None, help="stages run at the same time (default: config)"
    )
    args = parser.parse_args(argv)
    if not Path(args.config).is_file():
        raise SystemExit(f"error: {args.config}: pipeline config not found; see configs/pipeline/")
    cfg = Config.fromfile(args.config)
    work_dir = Path(args.work_dir)
    data_root = Path(args.data_root) if args.data_root else work_dir / "shapes"
    make_dataset = args.data_root is None  # the default shapes dataset; a stage marker skips it once made
    if args.data_root is not None and not data_root.is_dir():
        raise SystemExit(f"error: {data_root}: data root not found; give a VOC-layout dataset folder")
    work_dir.mkdir(parents=True, exist_ok=True)
    pipeline = WeaklySupervisedPipeline(cfg, work_dir, data_root)
    runner = StageRunner(pipeline.stages(make_dataset), work_dir, jobs=args.jobs or cfg.get("jobs", 2))
    try:
        stages = runner.run()
    except StageFailed as err:
        raise SystemExit(f"error: {err}") from None
    report = pipeline.write_report(stages)
    print(Path(work_dir / "report.md").read_text())
    print(f"segmenter mIoU {report['segmenter_miou']:.2f} = {100 * report['segmenter_to_upper_bound']:.1f}% "
          f"of the upper bound {report['upper_bound_miou']:.2f}; report in {work_dir}/report.md")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
