"""The synthetic stage group's wiring (configs/pipeline/shapes_synth.py): the commands its stages build,
their order, option errors, the report rows; and the mixed segmenter config training on real +
synthetic images at a ratio."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import numpy as np
import pytest
from mmengine.config import Config

from wsss.cli import train as train_tool
from wsss.data.label_io import write_label_png
from wsss.pipeline.report import build_report, stage_metric
from wsss.pipeline.runner import make_context
from wsss.pipeline.stage import StageError
from wsss.synth.dataset import generate_images, plan_images, write_index
from wsss.synth.prompt_file import PromptEntry

REPO = Path(__file__).resolve().parents[1]
PIPELINE = REPO / "configs" / "pipeline" / "shapes_synth.py"


def stages_of(tmp_path: Path, cfg: Config | None = None):
    cfg = cfg or Config.fromfile(str(PIPELINE))
    ctx, stages = make_context(cfg, PIPELINE, tmp_path / "work", None)
    return ctx, {stage.name: stage for stage in stages}, [stage.name for stage in stages]


def argv(stage) -> list[str]:
    return [str(a) for a in stage.argv()]


def value_after(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


def test_commands_and_order_of_the_synthetic_group(tmp_path):
    ctx, stages, order = stages_of(tmp_path)
    work = ctx.work_dir
    assert order.index("train_generator") < order.index("gen_natural") < order.index("filter_natural")
    assert order.index("train_cam") < order.index("filter_natural") < order.index("seeds_synth_natural")
    assert order.index("sweep_bas") < order.index("pseudo_synth_natural") < order.index("train_seg_synth")
    assert order.index("pseudo_labels") < order.index("train_seg_synth") < order.index("test_seg_synth")
    # one generator for both variants; prompts from the training captions, counter-bias only in one
    natural, balanced = argv(stages["plan_natural"]), argv(stages["plan_balanced"])
    assert value_after(natural, "--split") == "train" and "--balance-contexts" not in natural
    assert "--balance-contexts" in balanced and value_after(balanced, "--context-only-share") == "0.0"
    for variant in ("natural", "balanced"):
        gen = argv(stages[f"gen_{variant}"])
        assert value_after(gen, "--checkpoint") == str(work / "train_generator")
        assert value_after(gen, "--prompts") == str(work / f"plan_{variant}" / "prompts.jsonl")
        assert "--drop-unknown-words" in gen and value_after(gen, "--classes") == str(ctx.class_file)
        # the filter rewrites the generated folder; later stages read it through the filter stage
        folder = work / f"gen_{variant}"
        filt = stages[f"filter_{variant}"]
        assert filt.out == folder and stages[f"filter_{variant}"].needs()[-2:] == [
            "train_cam",
            f"gen_{variant}",
        ]
        assert argv(filt)[3:5] == [str(REPO / "configs/bas/cam_shapes.py"), str(work / "train_cam")]
        assert value_after(argv(filt), "--reject-unprompted") == "0.9"
        seeds = argv(stages[f"seeds_synth_{variant}"])
        assert value_after(seeds, "--data-root") == str(folder) and value_after(seeds, "--split") == "train"
        assert seeds[4] == str(work / "train_bas")
        pseudo = argv(stages[f"pseudo_synth_{variant}"])
        assert value_after(pseudo, "--threshold-from") == str(work / "sweep_bas" / "sweep.json")
        assert value_after(pseudo, "--images") == str(folder / "JPEGImages")
        assert value_after(pseudo, "--list") == str(folder / "ImageSets" / "Segmentation" / "train.txt")
    seg = argv(stages["train_seg_synth_balanced"])
    options = seg[seg.index("--cfg-options") + 1 :]
    assert f"train_dataloader.dataset.datasets.0.label_dir={work / 'pseudo_labels'}" in options
    assert f"train_dataloader.dataset.datasets.1.data_root={work / 'gen_balanced'}" in options
    assert f"train_dataloader.dataset.datasets.1.label_dir={work / 'pseudo_synth_balanced'}" in options
    assert "train_dataloader.sampler.ratios=(1.0,0.5)" in options
    assert value_after(argv(stages["test_seg_synth"]), "--json") == str(
        work / "test_seg_synth" / "result.json"
    )
    # the dry run prints them all, quoted so a shell reads them back
    assert shlex.split(stages["train_seg_synth"].command_line()) == argv(stages["train_seg_synth"])


def test_stage_option_errors(tmp_path):
    cfg = Config.fromfile(str(PIPELINE))
    cfg.stages["train_seg_synth"]["synthetic_labels"] = None
    _, stages, _ = stages_of(tmp_path, cfg)
    with pytest.raises(StageError, match="`synthetic` and `synthetic_labels` go together"):
        stages["train_seg_synth"].argv()
    cfg = Config.fromfile(str(PIPELINE))
    cfg.stages["gen_natural"]["prompts"] = "train_cam"
    with pytest.raises(StageError, match="prompts='train_cam' is not a PlanPrompts stage"):
        stages_of(tmp_path, cfg)
    cfg = Config.fromfile(str(PIPELINE))
    cfg.stages["pseudo_synth_natural"]["sweeps"] = ["sweep_bas"]
    _, stages, _ = stages_of(tmp_path, cfg)
    with pytest.raises(StageError, match="not both"):
        stages["pseudo_synth_natural"].argv()


def test_report_rows_read_metrics_and_per_class_scores(tmp_path):
    ctx, stages, _ = stages_of(tmp_path)
    summary = {"metrics": {"mIoU": 40.0, "water_as_boat": 12.5}, "headline": "mIoU",
               "per_class": {"IoU": {"boat": 30.0, "train": None}}, "outputs": {"folder": "x"}, "notes": []}  # fmt: skip
    assert stage_metric(summary, "water_as_boat") == 12.5 and stage_metric(summary, "IoU.boat") == 30.0
    assert stage_metric(summary, "IoU.train") is None and stage_metric(summary, "IoU.cow") is None
    options = Config.fromfile(str(PIPELINE)).report
    (ctx.data_root).mkdir(parents=True)
    (ctx.data_root / "class_names.txt").write_text("background\nboat\ntrain\n")
    summaries = {"test_seg_synth": summary, "context_seg_synth": summary}
    report = build_report(stages, summaries, ctx, options)
    assert report["segmenter_synth_miou"] == 40.0
    assert report["synthetic"]["boat_iou"]["natural"] == 30.0
    assert report["synthetic"]["water_as_boat"]["natural"] == 12.5
    assert "without" not in report["synthetic"]["boat_iou"]  # its stage has not run
    assert not any("learnt little" in note for note in report["notes"])  # no upper bound: nothing to say
    upper = {"metrics": {"mIoU": 1.7}, "headline": "mIoU", "per_class": {}, "outputs": {}, "notes": []}
    report = build_report(stages, {**summaries, "test_upper": upper}, ctx, options)
    assert report["notes"][0].startswith(
        "test_upper: even on ground truth the segmenter reached only 1.7 mIoU"
    )


def synthetic_folder(root: Path, classes: tuple[str, ...], size: int = 32) -> Path:
    """A generated folder (noise images) with label PNGs of the prompted class on a square."""

    class Noise:
        name, resolution, default_steps, default_guidance = "noise", size, 1, 0.0

        def sample(self, prompts, seeds, steps, guidance):
            return np.stack(
                [np.random.default_rng(s).integers(0, 256, (size, size, 3), dtype=np.uint8) for s in seeds]
            )

    entries = [PromptEntry(f"a {classes[1 + i % 2]}", None, None, i + 1) for i in range(4)]
    plan = plan_images(entries, 0, [[1 + i % 2] for i in range(4)])
    generate_images(Noise(), plan, root, 1, 0.0, batch_size=4, progress=False)
    write_index(root, plan, {"generator": "noise", "steps": 1, "guidance": 0.0}, 1, 0.0, classes)
    for i, image in enumerate(plan):
        label = np.zeros((size, size), np.uint8)
        label[8:24, 8:24] = 1 + i % 2
        write_label_png(root.parent / "synth_labels" / f"{image.img_id}.png", label)
    return root


def test_mixed_segmenter_trains_on_real_and_synthetic_images(tiny_voc, tmp_path):
    from wsss.data.classes import read_class_names

    folder = synthetic_folder(tmp_path / "synth", read_class_names(tiny_voc / "class_names.txt"))
    work = tmp_path / "seg"
    options = ["model.encoder_name=tu-test_resnet", "train_dataloader.batch_size=4", "train_dataloader.num_workers=0",
               "val_dataloader.num_workers=0", "train_cfg.max_iters=2", "train_cfg.val_interval=2",
               "train_dataloader.dataset.datasets.0.label_dir=SegmentationClass",
               f"train_dataloader.dataset.datasets.1.data_root={folder}",
               f"train_dataloader.dataset.datasets.1.label_dir={tmp_path / 'synth_labels'}",
               "train_dataloader.sampler.ratios=(1.0,2.0)"]  # fmt: skip
    config = REPO / "configs" / "seg" / "deeplabv3plus_shapes_mixed.py"
    assert train_tool.main([str(config), "--work-dir", str(work), "--data-root", str(tiny_voc),
                            "--cfg-options", *options]) == 0  # fmt: skip
    summary = json.loads((work / "training_summary.json").read_text())
    assert "mIoU" in summary["last"]
    dumped = Config.fromfile(str(next(work.glob("*.py"))))
    parts = dumped.train_dataloader.dataset.datasets
    assert parts[0].data_root == str(tiny_voc) and parts[1].data_root == str(folder)
    assert dumped.train_dataloader.sampler.ratios == (1.0, 2.0)


def test_plan_and_filter_summaries(tmp_path):
    ctx, stages, _ = stages_of(tmp_path)
    plan = stages["plan_balanced"]
    plan.out.mkdir(parents=True)
    rows = [{"prompt": "a boat on water", "classes": ["boat"], "contexts": ["water"], "seed": 1},
            {"prompt": "a boat and a train on rails", "classes": ["boat", "train"], "contexts": ["rails"], "seed": 2},
            {"prompt": "a boat", "classes": ["boat"], "contexts": [], "seed": 3}]  # fmt: skip
    plan.prompts_file.write_text("".join(json.dumps(row) + "\n" for row in rows))
    metrics = plan.summarize()["metrics"]
    assert metrics["prompts"] == 3 and metrics["water_given_boat"] == pytest.approx(100 / 3)
    assert metrics["rails_given_boat"] == pytest.approx(100 / 3) and metrics["rails_given_train"] == 100
    folder = stages["filter_natural"].out
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps({"settings": {}}))
    with pytest.raises(StageError, match="no filter record"):
        stages["filter_natural"].summarize()
    totals = {"kept": 3, "filtered": 1, "kept_share": 0.75, "per_class": {"boat": {"prompted": 2, "kept": 1}}}
    (folder / "manifest.json").write_text(json.dumps({"settings": {}, "filter": totals}))
    summary = stages["filter_natural"].summarize()
    assert summary["metrics"]["kept_share"] == 75.0 and summary["per_class"]["kept_share"]["boat"] == 50.0
    assert not stages[
        "filter_natural"
    ].uses_model  # one process even with --gpus N (the tool has no launcher)
