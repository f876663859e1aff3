"""The weakly supervised pipeline: localizers -> seeds -> pseudo labels -> segmenter, with a report.

Stages (each a ``tools/`` command, skipped when done, so a re-run resumes):

    dataset        make the shapes dataset (only when the data root does not exist yet)
    train_cam      CAM classifier: the warm start both localizers continue from
    train_bas      BAS from the CAM weights                  | same epochs, same recipe:
    train_cam_more CAM baseline from the same CAM weights    | the same budget for both
    seeds_*        multi-scale + flip seeds of the training images, for BAS and for CAM
    seeds_fused    the BAS authors' fusion of the two: normalise(normalise(CAM) + normalise(BAS))
    sweep_*        background-threshold sweep of each on the labelled images
    pseudo_labels  the chosen seeds at their best threshold (+ dense CRF) -> label PNGs
    eval_pseudo    pseudo labels against the ground truth
    train_seg      segmenter on the pseudo labels;  test_seg on val
    train_upper    the same segmenter on ground-truth masks (the upper bound), beside train_seg;
                   test_upper on val
    report         report.md, report.json, report.png
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mmengine.config import Config

from wsss.data.classes import CLASS_NAMES_FILE, resolve_class_names
from wsss.fileio import write_text_atomic
from wsss.pipeline.stages import Stage, python_tool

SEED_KINDS = ("bas", "cam", "fused")
SEED_KIND_NAMES = {"bas": "BAS", "cam": "CAM", "fused": "BAS + CAM fused"}


def _options(options: Mapping[str, Any]) -> list[str]:
    """``--cfg-options`` arguments from a dict (nothing when empty)."""
    if not options:
        return []
    return ["--cfg-options", *(f"{key}={value}" for key, value in options.items())]


def last_checkpoint(train_dir: Path) -> Path:
    """The checkpoint a finished training run saved last (mmengine's ``last_checkpoint`` record)."""
    record = train_dir / "last_checkpoint"
    if not record.is_file():
        raise FileNotFoundError(f"{record}: no checkpoint record; did training in {train_dir} finish?")
    return Path(record.read_text().strip())


def read_sweep(sweep_json: Path) -> tuple[float, float]:
    """(best threshold, its mIoU) of an eval_seeds JSON."""
    data = json.loads(sweep_json.read_text())
    return float(data["best_threshold"]), float(data["best"]["mIoU"])


class WeaklySupervisedPipeline:
    """Builds the stage graph for a pipeline config and writes the report from the stages' outputs."""

    def __init__(self, cfg: Config, work_dir: str | os.PathLike, data_root: str | os.PathLike):
        self.cfg = cfg
        self.work = Path(work_dir).resolve()
        self.data_root = Path(data_root).resolve()
        names = ("cam", "bas", "cam_more", "pseudo_labels", "seg", "upper")
        self.dirs = {name: self.work / name for name in (*names, *(f"seeds_{k}" for k in SEED_KINDS))}

    def split_list(self, split: str) -> Path:
        return self.data_root / "ImageSets" / "Segmentation" / f"{split}.txt"

    def class_file(self) -> Path:
        return self.data_root / CLASS_NAMES_FILE

    def class_names(self) -> tuple[str, ...]:
        return resolve_class_names(None, self.data_root)

    def _train(
        self, config: str, out: Path, epochs: int, options: Mapping[str, Any], load_from: Path | None = None
    ):
        def command() -> list[str]:
            args = [config, "--work-dir", out, "--data-root", self.data_root, "--resume"]
            if load_from is not None and not (out / "last_checkpoint").is_file():
                args = [
                    config,
                    "--work-dir",
                    out,
                    "--data-root",
                    self.data_root,
                    "--load-from",
                    last_checkpoint(load_from),
                ]
            return python_tool("train.py", *args, *_options({**options, "train_cfg.max_epochs": epochs}))

        return command

    def seed_source(self) -> tuple[str, float]:
        """The localizer whose seeds become pseudo labels, and its threshold.

        ``seeds.source`` names one (``'bas'``, ``'cam'`` or ``'fused'``, the BAS authors' choice), or
        ``'best'`` picks the one with the highest swept mIoU on the labelled images, the same images
        the threshold is chosen on.
        """
        choice = self.cfg.seeds.get("source", "best")
        sweeps = {name: read_sweep(self.work / f"seeds_{name}.json") for name in SEED_KINDS}
        if choice == "best":
            choice = max(sweeps, key=lambda name: sweeps[name][1])
        if choice not in sweeps:
            raise ValueError(f"seeds.source must be one of {', '.join(SEED_KINDS)} or 'best', got {choice!r}")
        return choice, sweeps[choice][0]

    def stages(self, make_dataset: bool) -> list[Stage]:
        cfg, d = self.cfg, self.dirs
        loc, seeds, seg = cfg.localizer, cfg.seeds, cfg.segmenter
        stages: list[Stage] = []
        first: tuple[str, ...] = ()
        if make_dataset:
            ds = cfg.dataset
            stages.append(
                Stage(
                    "dataset",
                    lambda: python_tool(
                        "make_shapes.py", "--out", self.data_root, "--n-train", ds.n_train, "--n-val", ds.n_val,
                        "--size", ds.size, "--seed", ds.seed,
                    ),
                    description="make the shapes dataset",
                )
            )  # fmt: skip
            first = ("dataset",)
        stages += [
            Stage("train_cam", self._train(loc.cam_config, d["cam"], loc.warmup_epochs, loc.cfg_options), first,
                  "train the CAM classifier (warm start for both localizers)"),
            Stage("train_bas", self._train(loc.bas_config, d["bas"], loc.epochs, loc.cfg_options, d["cam"]),
                  ("train_cam",), "train BAS from the CAM weights"),
            Stage("train_cam_more", self._train(loc.cam_config, d["cam_more"], loc.epochs, loc.cfg_options, d["cam"]),
                  ("train_cam",), "train the CAM baseline for the same epochs"),
            Stage("train_upper", self._train(seg.config, d["upper"], seg.get("epochs", 5),
                                              {**seg.cfg_options, "train_dataloader.dataset.label_dir": "SegmentationClass"}),
                  # Needs only the data, but waits to run beside train_seg: the localizers before
                  # it then train on every core (about twice as fast on two threads as on one).
                  ("pseudo_labels",), "train the segmenter on ground-truth masks (upper bound)"),
        ]  # fmt: skip
        for name, train in (("bas", "train_bas"), ("cam", "train_cam_more")):
            config = loc.bas_config if name == "bas" else loc.cam_config
            train_dir = d["bas"] if name == "bas" else d["cam_more"]
            out = d[f"seeds_{name}"]
            stages.append(
                Stage(
                    f"seeds_{name}",
                    lambda config=config, train_dir=train_dir, out=out: python_tool(
                        "make_seeds.py", config, last_checkpoint(train_dir), "--out", out, "--split", seeds.split,
                        "--data-root", self.data_root, "--scales", *seeds.scales, *_options(loc.cfg_options),
                    ),
                    (train,),
                    f"multi-scale seeds of the {seeds.split} images ({name.upper()})",
                )
            )  # fmt: skip
        stages.append(
            Stage(
                "seeds_fused",
                lambda: python_tool(
                    "fuse_seeds.py", "--seeds", d["seeds_bas"], "--cam", d["seeds_cam"], "--out", d["seeds_fused"],
                    "--list", self.split_list(seeds.split), "--no-progress",
                ),
                ("seeds_bas", "seeds_cam"),
                "BAS seeds fused with CAM seeds, as the BAS authors do",
            )
        )  # fmt: skip
        for name in SEED_KINDS:
            out = d[f"seeds_{name}"]
            stages.append(
                Stage(
                    f"sweep_{name}",
                    lambda out=out, name=name: python_tool(
                        "eval_seeds.py", "--seeds", out, "--gt", self.data_root / "SegmentationClass",
                        "--list", self.split_list(seeds.sweep_split), "--classes", self.class_file(),
                        "--thresholds", seeds.thresholds, "--json", self.work / f"seeds_{name}.json",
                        "--plot", self.work / f"seeds_{name}.png", "--no-progress",
                    ),
                    (f"seeds_{name}",),
                    f"background-threshold sweep of the {name} seeds",
                )
            )  # fmt: skip
        crf = ["--crf"] if cfg.pseudo_labels.get("crf", False) else []

        def pseudo_labels_command() -> list[str]:
            source, threshold = self.seed_source()
            return python_tool(
                "make_pseudo_labels.py", "--seeds", d[f"seeds_{source}"], "--images", self.data_root / "JPEGImages",
                "--out", d["pseudo_labels"], "--bg-threshold", threshold, "--list", self.split_list(seeds.split),
                *crf, "--no-progress",
            )  # fmt: skip

        stages += [
            Stage("pseudo_labels", pseudo_labels_command, tuple(f"sweep_{name}" for name in SEED_KINDS),
                  "pseudo labels from the seeds at their best threshold"),
            Stage("eval_pseudo", lambda: python_tool(
                "eval_seg.py", "--pred", d["pseudo_labels"], "--gt", self.data_root / "SegmentationClass",
                "--list", self.split_list(seeds.split), "--classes", self.class_file(),
                "--json", self.work / "pseudo_labels.json", "--no-progress"),
                ("pseudo_labels",), "evaluate the pseudo labels"),
            Stage("train_seg", self._train(seg.config, d["seg"], seg.get("epochs", 5),
                                           {**seg.cfg_options, "train_dataloader.dataset.label_dir": d["pseudo_labels"]}),
                  ("pseudo_labels",), "train the segmenter on the pseudo labels"),
        ]  # fmt: skip
        for name, train_dir in (("seg", d["seg"]), ("upper", d["upper"])):
            stages.append(
                Stage(
                    f"test_{name}",
                    lambda name=name, train_dir=train_dir: python_tool(
                        "test.py", seg.config, last_checkpoint(train_dir), "--data-root", self.data_root,
                        "--out", self.work / f"predictions_{name}", "--json", self.work / f"segmenter_{name}.json",
                        *_options(seg.cfg_options),
                    ),
                    (f"train_{name}",),
                    "test the segmenter on val" + (" (upper bound)" if name == "upper" else ""),
                )
            )  # fmt: skip
        stages += [
            Stage(
                "predict_train",
                lambda: python_tool(
                    "test.py", seg.config, last_checkpoint(d["seg"]), "--data-root", self.data_root,
                    "--split", seeds.split, "--out", self.work / "predictions_train", "--no-progress",
                    *_options(seg.cfg_options),
                ),
                ("train_seg",),
                "segmenter predictions on the training images, for the figure",
            ),
            Stage(
                "figure",
                lambda: python_tool(
                    "visualize.py", "--images", self.data_root / "JPEGImages", "--list", self.split_list(seeds.split),
                    "--seeds", d[f"seeds_{self.seed_source()[0]}"],
                    "--labels", d["pseudo_labels"], self.work / "predictions_train",
                    "--gt", self.data_root / "SegmentationClass", "--classes", self.class_file(),
                    "--n", self.cfg.report.get("examples", 8), "--out", self.work / "report.png",
                ),
                ("predict_train", "pseudo_labels"),
                "example images: seeds, pseudo labels, predictions, ground truth",
            ),
        ]  # fmt: skip
        return stages

    def write_report(self, stages: Mapping[str, Stage]) -> dict[str, Any]:
        """Write report.json and report.md from the stages' JSON outputs; returns the report dict."""
        names = self.class_names()

        def load(path: Path) -> dict[str, Any]:
            return json.loads(path.read_text(encoding="utf-8"))

        def per_class(result: dict[str, Any]) -> dict[str, float | None]:
            return {row["class"]: row["IoU"] for row in result["per_class"]}

        sweeps = {name: load(self.work / f"seeds_{name}.json") for name in SEED_KINDS}
        pseudo = load(self.work / "pseudo_labels.json")
        seg, upper = load(self.work / "segmenter_seg.json"), load(self.work / "segmenter_upper.json")
        source, threshold = self.seed_source()
        report = {
            "data_root": str(self.data_root),
            "pseudo_label_source": {
                "localizer": source,
                "bg_threshold": threshold,
                "crf": bool(self.cfg.pseudo_labels.get("crf")),
            },
            "classes": list(names),
            "seed_miou": {name: sweep["best"]["mIoU"] for name, sweep in sweeps.items()},
            "seed_best_threshold": {name: sweep["best_threshold"] for name, sweep in sweeps.items()},
            "pseudo_label_miou": pseudo["mIoU"],
            "segmenter_miou": seg["mIoU"],
            "upper_bound_miou": upper["mIoU"],
            "segmenter_to_upper_bound": seg["mIoU"] / upper["mIoU"] if upper["mIoU"] else None,
            "per_class_iou": {
                **{f"seeds_{name}": per_class(sweep["best"]) for name, sweep in sweeps.items()},
                "pseudo_labels": per_class(pseudo),
                "segmenter": per_class(seg),
                "upper_bound": per_class(upper),
            },
            "stage_seconds": {name: stage.seconds for name, stage in stages.items()},
            "unit": "percent; classes absent from both ground truth and prediction are null and left out of means",
        }
        write_text_atomic(self.work / "report.json", json.dumps(report, indent=2) + "\n")
        write_text_atomic(self.work / "report.md", self.markdown(report, stages))
        return report

    def markdown(self, report: dict[str, Any], stages: Mapping[str, Stage]) -> str:
        stage_miou = {
            **{f"sweep_{name}": miou for name, miou in report["seed_miou"].items()},
            "eval_pseudo": report["pseudo_label_miou"],
            "test_seg": report["segmenter_miou"],
            "test_upper": report["upper_bound_miou"],
        }

        def fmt(value: float | None) -> str:
            return "-" if value is None else f"{value:.2f}"

        lines = [
            "# Weakly supervised pipeline report",
            "",
            f"Data: `{report['data_root']}` ({len(report['classes'])} classes with background). "
            "Scores are percent; classes absent from both ground truth and prediction are left out of means.",
            "",
            "| result | mIoU |",
            "| --- | --- |",
            f"| BAS seeds (train, best threshold {report['seed_best_threshold']['bas']:.2f}) | {fmt(report['seed_miou']['bas'])} |",
            f"| CAM seeds, same budget (best threshold {report['seed_best_threshold']['cam']:.2f}) | {fmt(report['seed_miou']['cam'])} |",
            f"| BAS + CAM fused seeds (best threshold {report['seed_best_threshold']['fused']:.2f}) | {fmt(report['seed_miou']['fused'])} |",
            f"| pseudo labels (train; {SEED_KIND_NAMES[report['pseudo_label_source']['localizer']]} seeds at "
            f"{report['pseudo_label_source']['bg_threshold']:.2f}, CRF {'on' if report['pseudo_label_source']['crf'] else 'off'}) "
            f"| {fmt(report['pseudo_label_miou'])} |",
            f"| segmenter on pseudo labels (val) | {fmt(report['segmenter_miou'])} |",
            f"| segmenter on ground truth, upper bound (val) | {fmt(report['upper_bound_miou'])} |",
            "",
            f"The segmenter reaches {100 * (report['segmenter_to_upper_bound'] or 0):.1f}% of the upper bound.",
            "",
            "## Stages",
            "",
            "| stage | what | seconds | mIoU |",
            "| --- | --- | --- | --- |",
        ]
        for name, stage in stages.items():
            seconds = "-" if stage.seconds is None else f"{stage.seconds:.0f}"
            lines.append(f"| {name} | {stage.description} | {seconds} | {fmt(stage_miou.get(name))} |")
        columns = ("seeds_bas", "seeds_cam", "seeds_fused", "pseudo_labels", "segmenter", "upper_bound")
        lines += [
            "",
            "## Per-class IoU",
            "",
            "| class | " + " | ".join(columns) + " |",
            "|---" * (len(columns) + 1) + "|",
        ]
        for name in report["classes"]:
            cells = [fmt(report["per_class_iou"][column].get(name)) for column in columns]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        if (self.work / "report.png").is_file():
            lines += ["", "![examples](report.png)"]
        return "\n".join(lines) + "\n"
