"""The stage types of the weakly supervised pipeline, each a thin wrapper around one tool.

``MakeShapes`` (data) -> ``Train`` (localizers, segmenters) -> ``Seeds`` / ``FuseSeeds`` ->
``SweepSeeds`` -> ``PseudoLabels`` -> ``EvalLabels`` -> ``Train`` -> ``Test``, and ``Figure``.
Options name other stages by their names; see each class for its options and what it reports.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmengine.config import Config

from wsss.pipeline.stage import STAGES, Stage, StageError, cfg_options, per_class_iou, read_json, tool


def _result_summary(result: dict[str, Any]) -> dict[str, Any]:
    """Metrics and per-class scores of an evaluation JSON (mIoU, per-class IoU, FP and FN ratios)."""
    rows = result["per_class"]
    return {
        "metrics": {"mIoU": result["mIoU"], "aAcc": result["aAcc"], "mAcc": result["mAcc"]},
        "headline": "mIoU",
        "per_class": {
            "IoU": per_class_iou(result),
            "FP_ratio": {row["class"]: row["FP_ratio"] for row in rows},
            "FN_ratio": {row["class"]: row["FN_ratio"] for row in rows},
        },
    }


@STAGES.register_module()
class MakeShapes(Stage):
    """Draw the embedded shapes dataset into the pipeline's data root (skipped with ``--data-root``).

    Options: ``n_train``, ``n_val``, ``size``, ``seed``, ``difficulty`` (easy, default, hard).
    """

    kind = "make_shapes"
    makes_data = True

    @classmethod
    def option_names(cls) -> set[str]:
        return {"n_train", "n_val", "size", "seed", "difficulty"}

    @property
    def out(self) -> Path:
        return self.ctx.data_root

    def argv(self) -> list[str]:
        o = self.options
        args = ["--out", self.out, "--n-train", o.get("n_train", 500), "--n-val", o.get("n_val", 100),
                "--size", o.get("size", 96), "--seed", o.get("seed", 0)]  # fmt: skip
        if o.get("difficulty"):
            args += ["--difficulty", o["difficulty"]]
        return tool("make_shapes", *args)


@STAGES.register_module()
class Train(Stage):
    """Train a model config with ``tools/train.py`` in ``WORK/<name>`` (resumable).

    Options: ``config``; ``iters`` or ``epochs`` (else the config's schedule); ``load_from`` (a Train
    stage whose final weights start this one); ``labels`` (a stage whose label PNGs are the training
    masks, or a folder name inside the data root such as ``SegmentationClass``); ``cfg_options``;
    ``synthetic`` (a stage whose folder is a synthetic VOC-layout dataset, e.g. FilterSynthetic),
    ``synthetic_labels`` (a stage of its label PNGs) and ``ratio`` (synthetic images per real image
    in an epoch), for a config whose training set is a MixedDataset of (real, synthetic) with a
    RatioSampler (configs/seg/deeplabv3plus_shapes_mixed.py): ``labels`` then go to the real part;
    ``floor=dict(metric=..., min=..., hint=...)``, a validation figure the model must reach or the
    pipeline stops with a diagnosis; ``collapse="stop"`` to stop when BAS maps collapse (else a note).
    Reports the validation metrics of its final checkpoint (the best one when the config keeps it).
    """

    kind = "train"
    uses_model = True

    @classmethod
    def option_names(cls) -> set[str]:
        return {
            "config",
            "iters",
            "epochs",
            "load_from",
            "labels",
            "cfg_options",
            "floor",
            "collapse",
            "metric",
            "synthetic",
            "synthetic_labels",
            "ratio",
        }

    @property
    def config(self) -> Path:
        return self.ctx.resolve_path(self.options["config"])

    @property
    def model_options(self) -> dict[str, Any]:
        """The config overrides that shape the model (what later stages must pass to rebuild it)."""
        return dict(self.options.get("cfg_options") or {})

    def reads(self) -> list[str]:
        needs = [self.ref("load_from").name] if self.options.get("load_from") else []
        labels = self.options.get("labels")
        if labels in self.ctx.stages:
            needs.append(labels)
        for key in ("synthetic", "synthetic_labels"):
            if self.options.get(key):
                needs.append(self.ref(key).name)
        return needs

    def files(self) -> list[Path]:
        return [self.config]

    def argv(self) -> list[str]:
        o = self.options
        options = self.model_options
        if o.get("iters") is not None:
            options["train_cfg.max_iters"] = o["iters"]
        if o.get("epochs") is not None:
            options["train_cfg.max_epochs"] = o["epochs"]
        if self.ctx.renames_splits:
            options["train_dataloader.dataset.split"] = self.ctx.split_name("train")
            if Config.fromfile(self.config).get("val_dataloader"):  # feature models validate nothing
                options["val_dataloader.dataset.split"] = self.ctx.split_name("val")
        labels = o.get("labels")
        mixed = o.get("synthetic") is not None
        if mixed != (o.get("synthetic_labels") is not None):
            raise StageError(f"stage {self.name}: `synthetic` and `synthetic_labels` go together; give both")
        dataset = "train_dataloader.dataset.datasets.0" if mixed else "train_dataloader.dataset"
        if labels is not None:
            options[f"{dataset}.label_dir"] = (
                self.ctx.stages[labels].out if labels in self.ctx.stages else labels
            )
        if mixed:
            options["train_dataloader.dataset.datasets.1.data_root"] = self.ref("synthetic").out
            options["train_dataloader.dataset.datasets.1.label_dir"] = self.ref("synthetic_labels").out
            if o.get("ratio") is not None:
                options["train_dataloader.sampler.ratios"] = (1.0, float(o["ratio"]))
        args = [self.config, "--work-dir", self.out, "--data-root", self.ctx.data_root, "--resume"]
        if o.get("load_from"):
            args += ["--load-from", self.ref("load_from").out]
        return tool("train", *args, *cfg_options(options))

    def summarize(self) -> dict[str, Any]:
        summary = read_json(self.out / "training_summary.json")
        final = summary.get("final_checkpoint") or ""
        values = summary["best"] if "best_" in Path(final).name else summary["last"]
        metric = self.options.get("metric") or next(iter(values), None)
        notes = []
        collapsed = summary.get("collapsed_classes") or []
        if collapsed:
            notes.append(f"BAS maps collapsed to 0 for {', '.join(collapsed)} in the last epoch")
            if self.options.get("collapse") == "stop":
                raise StageError(
                    f"stage {self.name}: BAS maps collapsed for {', '.join(collapsed)}; the classifier it started "
                    "from does not recognise them: train the CAM longer (its iters) before BAS"
                )
        floor = self.options.get("floor")
        if floor:
            value = values.get(floor["metric"])
            if value is None or value < floor["min"]:
                shown = "nothing" if value is None else f"{value:.1f}"
                raise StageError(
                    f"stage {self.name}: the model reached val {floor['metric']} {shown} < {floor['min']}: it did not "
                    f"learn; {floor.get('hint', 'give it more iterations (stages.' + self.name + '.iters)')}"
                )
        return {
            "metrics": dict(values),
            "headline": metric,
            "outputs": {"work_dir": str(self.out), "checkpoint": final},
            "notes": notes,
        }


class _ModelStage(Stage):
    """A stage that runs the model a Train stage made, with that stage's config and model options."""

    uses_model = True

    @property
    def model(self) -> Train:
        return self.ref_of("model", Train)

    def reads(self) -> list[str]:
        return [self.model.name]

    def files(self) -> list[Path]:
        return [self.model.config]

    def model_args(self) -> list[str]:
        return [self.model.config, self.model.out, "--data-root", self.ctx.data_root]


@STAGES.register_module()
class Seeds(_ModelStage):
    """Multi-scale + flip seeds (``tools/make_seeds.py``) of a trained localizer for a split.

    Options: ``model`` (a Train stage), ``split`` (default train), ``scales``, ``flip`` (default True),
    ``base_size`` (scales apply to images brought to this shorter side: the localizer's training size),
    ``data`` (a stage whose folder is another VOC-layout dataset, e.g. synthetic images kept by
    FilterSynthetic; default the pipeline's data).
    """

    kind = "seeds"

    @classmethod
    def option_names(cls) -> set[str]:
        return {"model", "split", "scales", "flip", "base_size", "data"}

    def reads(self) -> list[str]:
        return [self.model.name, *([self.ref("data").name] if self.options.get("data") else [])]

    def argv(self) -> list[str]:
        o = self.options
        split = o.get("split", "train")
        # Another dataset (synthetic images) keeps its own split names; the pipeline's are mapped.
        split = split if o.get("data") else self.ctx.split_name(split)
        args = [*self.model_args(), "--out", self.out, "--split", split, "--no-progress"]
        if o.get("data"):
            args[args.index("--data-root") + 1] = self.ref("data").out
        if o.get("scales"):
            args += ["--scales", *o["scales"]]
        if o.get("flip") is False:
            args.append("--no-flip")
        if o.get("base_size"):
            args += ["--base-size", o["base_size"]]
        return tool("make_seeds", *args, *cfg_options(self.model.model_options))


@STAGES.register_module()
class ExtractFeatures(Stage):
    """Unsupervised dense features of a split (``tools/extract_features.py``), one ``<id>.npz`` per image.

    Options: ``model`` (a Train stage of a feature model), or ``config`` alone for a frozen backbone
    with local weights; ``split`` (default train), ``scales``, ``flip`` (default True), ``base_size``
    (scales apply to images brought to this shorter side: the model's training size).
    """

    kind = "extract_features"
    uses_model = True

    @classmethod
    def option_names(cls) -> set[str]:
        return {"model", "config", "split", "scales", "flip", "base_size"}

    def reads(self) -> list[str]:
        return [self.ref("model").name] if self.options.get("model") else []

    def files(self) -> list[Path]:
        return [self._config()]

    def _config(self) -> Path:
        if self.options.get("model"):
            return self.ref("model").config
        if not self.options.get("config"):
            raise StageError(f"stage {self.name}: give `model` (a Train stage) or `config`")
        return self.ctx.resolve_path(self.options["config"])

    def argv(self) -> list[str]:
        o = self.options
        args = [self._config(), *([self.ref("model").out] if o.get("model") else [])]
        args += [
            "--out",
            self.out,
            "--split",
            self.ctx.split_name(o.get("split", "train")),
            "--data-root",
            self.ctx.data_root,
            "--no-progress",
        ]
        if o.get("scales"):
            args += ["--scales", *o["scales"]]
        if o.get("flip", True):
            args.append("--flip")
        if o.get("base_size"):
            args += ["--base-size", o["base_size"]]
        model_options = self.ref("model").model_options if o.get("model") else {}
        return tool("extract_features", *args, *cfg_options(model_options))


@STAGES.register_module()
class FuseSeeds(Stage):
    """The BAS authors' fusion of BAS and CAM seeds (``tools/fuse_seeds.py``). Options: ``bas``, ``cam``, ``split``."""

    kind = "fuse_seeds"
    reads_from = ("bas", "cam")

    @classmethod
    def option_names(cls) -> set[str]:
        return {"bas", "cam", "split"}

    def argv(self) -> list[str]:
        split = self.ctx.split_list(self.options.get("split", "train"))
        return tool("fuse_seeds", "--seeds", self.ref("bas").out, "--cam", self.ref("cam").out, "--out", self.out,
                    "--list", split, "--no-progress")  # fmt: skip


@STAGES.register_module()
class SweepSeeds(Stage):
    """Background-threshold sweep of seeds on labelled images (``tools/eval_seeds.py``): ``OUT/sweep.json``.

    Options: ``seeds`` (a stage), ``split`` (default train), ``thresholds`` (default 0.05:0.95:0.05).
    Reports the best threshold's mIoU; a best threshold at an end of the range is a note.
    """

    kind = "sweep_seeds"
    reads_from = ("seeds",)

    @classmethod
    def option_names(cls) -> set[str]:
        return {"seeds", "split", "thresholds"}

    @property
    def sweep_file(self) -> Path:
        return self.out / "sweep.json"

    def argv(self) -> list[str]:
        args = ["--seeds", self.ref("seeds").out, "--gt", self.ctx.data_root / "SegmentationClass",
                "--list", self.ctx.split_list(self.options.get("split", "train")), "--classes", self.ctx.class_file,
                "--json", self.sweep_file, "--plot", self.out / "sweep.png", "--no-progress"]  # fmt: skip
        if self.options.get("thresholds"):
            args += ["--thresholds", self.options["thresholds"]]
        return tool("eval_seeds", *args)

    def summarize(self) -> dict[str, Any]:
        sweep = read_json(self.sweep_file)
        summary = _result_summary(sweep["best"])
        summary["metrics"]["threshold"] = sweep["best_threshold"]
        summary["notes"] = (
            [f"best threshold {sweep['best_threshold']:.2f} is at an end of the range swept"]
            if sweep["best_at_edge"]
            else []
        )
        summary["outputs"] = {"sweep": str(self.sweep_file), "seeds": sweep["seeds"]}
        return summary


@STAGES.register_module()
class PseudoLabels(Stage):
    """Pseudo labels (``tools/make_pseudo_labels.py``) from the best of several swept seeds, at its threshold.

    Options: ``sweeps`` (SweepSeeds stages), ``crf`` (default False), ``split`` (default train).
    Images without ground truth (synthetic ones) instead: ``seeds`` (a Seeds stage),
    ``threshold_from`` (the SweepSeeds stage whose best threshold labels them: the same localizer's
    on the real images) and ``data`` (the stage whose folder holds the images and the split list).
    Reports which seeds it took and the threshold.
    """

    kind = "pseudo_labels"

    @classmethod
    def option_names(cls) -> set[str]:
        return {"sweeps", "crf", "split", "seeds", "threshold_from", "data"}

    def reads(self) -> list[str]:
        if self.options.get("seeds"):
            names = [self.ref("seeds").name, self.ref("threshold_from").name]
            return names + ([self.ref("data").name] if self.options.get("data") else [])
        return [stage.name for stage in self.refs("sweeps")]

    def argv(self) -> list[str]:
        o = self.options
        root = self.ref("data").out if o.get("data") else self.ctx.data_root
        split = (
            root / "ImageSets" / "Segmentation" / f"{o.get('split', 'train')}.txt"  # its own split names
            if o.get("data")
            else self.ctx.split_list(o.get("split", "train"))
        )
        if o.get("seeds"):
            if o.get("sweeps"):
                raise StageError(
                    f"stage {self.name}: give `sweeps`, or `seeds` with `threshold_from`, not both"
                )
            choice = [
                "--seeds",
                self.ref("seeds").out,
                "--threshold-from",
                self.ref("threshold_from").sweep_file,
            ]
        else:
            choice = ["--from-sweeps", *(stage.sweep_file for stage in self.refs("sweeps"))]
        args = [*choice, "--images", root / "JPEGImages", "--out", self.out, "--list", split, "--no-progress"]
        return tool("make_pseudo_labels", *args, *(["--crf"] if o.get("crf") else []))

    def summarize(self) -> dict[str, Any]:
        manifest = read_json(self.out / "manifest.json")
        seeds = manifest["settings"]["seeds"]
        candidates = (
            [self.ref("seeds")]
            if self.options.get("seeds")
            else [s.ref("seeds") for s in self.refs("sweeps")]
        )
        source = next((stage.name for stage in candidates if str(stage.out) == seeds), seeds)
        return {
            "metrics": {"bg_threshold": manifest["settings"]["bg_threshold"]},
            "outputs": {
                "labels": str(self.out),
                "seeds": seeds,
                "seeds_stage": source,
                "crf": manifest["settings"]["crf"] is not None,
            },  # fmt: skip
        }


@STAGES.register_module()
class EvalLabels(Stage):
    """Score a stage's label PNGs against the ground truth (``tools/eval_seg.py``): ``OUT/result.json``.

    Options: ``labels`` (a stage: pseudo labels, debiased labels, or a Test stage's predictions),
    ``split`` (default train), ``context`` (True: also the share of each context region, from the
    data's ``ContextMasks/``, labelled as its co-occurring class, e.g. water labelled boat).
    """

    kind = "eval_labels"
    reads_from = ("labels",)

    @classmethod
    def option_names(cls) -> set[str]:
        return {"labels", "split", "context"}

    def argv(self) -> list[str]:
        args = ["--pred", self.ref("labels").out, "--gt", self.ctx.data_root / "SegmentationClass",
                "--list", self.ctx.split_list(self.options.get("split", "train")), "--classes", self.ctx.class_file,
                "--json", self.out / "result.json", "--no-progress"]  # fmt: skip
        if self.options.get("context"):
            args += ["--context", self.ctx.data_root / "ContextMasks"]
        return tool("eval_seg", *args)

    def summarize(self) -> dict[str, Any]:
        result = read_json(self.out / "result.json")
        summary = {**_result_summary(result), "outputs": {"labels": str(self.ref("labels").out)}}
        for name, row in (result.get("context_share") or {}).items():
            summary["metrics"][f"{name}_as_{row['class']}"] = (
                None if row["share"] is None else 100 * row["share"]
            )
        return summary


@STAGES.register_module()
class Debias(Stage):
    """MARS (``tools/mars.py``): base pseudo labels with the biased objects marked 254, in ``OUT``.

    Options: ``config`` (a MARS config, e.g. configs/debias/mars_shapes.py), ``pseudo`` (a stage of
    base pseudo labels), ``features`` (a stage of feature files), ``split`` (default train),
    ``cfg_options``. Reports, per class, the share of its pixels marked biased.
    """

    kind = "debias"
    reads_from = ("pseudo", "features")

    @property
    def heat_dir(self) -> Path:
        """Where the debiased scores are, for figures."""
        return self.out / "scores"

    @classmethod
    def option_names(cls) -> set[str]:
        return {"config", "pseudo", "features", "split", "cfg_options"}

    def files(self) -> list[Path]:
        return [self.ctx.resolve_path(self.options["config"])]

    def argv(self) -> list[str]:
        args = [self.ctx.resolve_path(self.options["config"]), "--pseudo", self.ref("pseudo").out,
                "--features", self.ref("features").out, "--images", self.ctx.data_root / "JPEGImages",
                "--out", self.out, "--list", self.ctx.split_list(self.options.get("split", "train")),
                "--classes", self.ctx.class_file, "--no-progress"]  # fmt: skip
        return tool("mars", *args, *cfg_options(self.options.get("cfg_options") or {}))

    def summarize(self) -> dict[str, Any]:
        manifest = read_json(self.out / "manifest.json")
        shares = {name: row["biased_share"] for name, row in manifest["per_class"].items()}
        return {
            "metrics": {
                f"biased_{name}": None if share is None else 100 * share for name, share in shares.items()
            },
            "outputs": {"labels": str(self.out), "scores": str(self.out / "scores")},
        }


@STAGES.register_module()
class Test(_ModelStage):
    """Test a trained segmenter (``tools/test.py``): predictions in ``OUT``, scores in ``OUT/result.json``.

    Options: ``model`` (a Train stage), ``split`` (default: the config's test split, or the pipeline's
    val split when the pipeline config's ``splits`` renames them), ``tta``, ``crf``,
    ``predict_only`` (no scores: a split without labels, or predictions for a figure).
    """

    kind = "test"

    @classmethod
    def option_names(cls) -> set[str]:
        return {"model", "split", "tta", "crf", "predict_only"}

    def argv(self) -> list[str]:
        o = self.options
        args = [*self.model_args(), "--out", self.out, "--no-progress"]
        if o.get("split") or self.ctx.renames_splits:
            args += ["--split", self.ctx.split_name(o.get("split", "val"))]
        args += ["--predict-only"] if o.get("predict_only") else ["--json", self.out / "result.json"]
        args += ["--tta"] * bool(o.get("tta")) + ["--crf"] * bool(o.get("crf"))
        return tool("test", *args, *cfg_options(self.model.model_options))

    def summarize(self) -> dict[str, Any]:
        if self.options.get("predict_only"):
            return {"outputs": {"predictions": str(self.out)}}
        return {
            **_result_summary(read_json(self.out / "result.json")),
            "outputs": {"predictions": str(self.out)},
        }


@STAGES.register_module()
class Figure(Stage):
    """A figure of example images (``tools/visualize.py``): ``OUT/figure.png``.

    Options: ``seeds``, ``heat`` (stages with score maps, e.g. Debias) and ``labels`` (lists of
    stages, a column each), ``gt`` (default True), ``split`` (default train), ``n`` (rows, default 8).
    """

    kind = "figure"

    @classmethod
    def option_names(cls) -> set[str]:
        return {"seeds", "heat", "labels", "gt", "split", "n"}

    def reads(self) -> list[str]:
        return [stage.name for stage in (*self.refs("seeds"), *self.refs("heat"), *self.refs("labels"))]

    def argv(self) -> list[str]:
        o = self.options
        args = ["--images", self.ctx.data_root / "JPEGImages", "--list", self.ctx.split_list(o.get("split", "train")),
                "--classes", self.ctx.class_file, "--n", o.get("n", 8), "--out", self.out / "figure.png"]  # fmt: skip
        if o.get("seeds"):
            args += ["--seeds", *(stage.out for stage in self.refs("seeds"))]
        if o.get("heat"):
            args += ["--heat", *(getattr(stage, "heat_dir", stage.out) for stage in self.refs("heat"))]
        if o.get("labels"):
            args += ["--labels", *(stage.out for stage in self.refs("labels"))]
        if o.get("gt", True):
            args += ["--gt", self.ctx.data_root / "SegmentationClass"]
        return tool("visualize", *args)

    def summarize(self) -> dict[str, Any]:
        return {"outputs": {"figure": str(self.out / "figure.png")}}
