"""The stage types of the synthetic-data group (METHODS.md section 3): prompts, images, the classifier filter.

``Train`` (a flow generator on the real training images, configs/synth/) -> ``PlanPrompts`` (the
belief-graph planner, natural or counter-bias) -> ``Generate`` -> ``FilterSynthetic`` (the
classifier keeps the images it agrees with) -> ``Seeds`` / ``PseudoLabels`` with ``data`` set to
the filtered folder -> ``Train`` with ``synthetic`` / ``synthetic_labels`` / ``ratio`` (a mixed
segmenter) -> ``Test``. The generator and the localizer are shared by every prompt variant, so a
variant costs its prompts, images, labels and segmenter only.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from wsss.pipeline.stage import STAGES, Stage, StageError, cfg_options, read_json, tool
from wsss.pipeline.stages import _ModelStage


@STAGES.register_module()
class PlanPrompts(Stage):
    """Prompts from the belief graph of the data's captions and labels (``tools/plan_prompts.py``): ``OUT/prompts.jsonl``.

    Options: ``n`` (default 100), ``seed``, ``split`` (default train: only the training images'
    captions), ``balance_contexts`` (counter-bias: contexts independent of the class), ``balance_strength``,
    ``context_only_share``, ``alpha`` (smoothing; small on a closed-world dataset keeps contexts it
    never shows out of the prompts), ``answers`` (a YAML/JSON answers file). Reports the share of each
    class's prompts placed in each context (``water_given_boat``, ...).
    """

    kind = "plan_prompts"

    @classmethod
    def option_names(cls) -> set[str]:
        return {"n", "seed", "split", "balance_contexts", "balance_strength", "context_only_share", "alpha",
                "answers"}  # fmt: skip

    @property
    def prompts_file(self) -> Path:
        return self.out / "prompts.jsonl"

    def files(self) -> list[Path]:
        return [self.ctx.resolve_path(self.options["answers"])] if self.options.get("answers") else []

    def argv(self) -> list[str]:
        o = self.options
        args = ["--data-root", self.ctx.data_root, "--split", self.ctx.split_name(o.get("split", "train")), "--n", o.get("n", 100),
                "--seed", o.get("seed", 0), "--out", self.prompts_file, "--graph-out", self.out / "graph.json"]  # fmt: skip
        if o.get("balance_contexts"):
            args.append("--balance-contexts")
        for key in ("balance_strength", "context_only_share", "alpha"):
            if o.get(key) is not None:
                args += [f"--{key.replace('_', '-')}", o[key]]
        if o.get("answers"):
            args += ["--answers", self.ctx.resolve_path(o["answers"])]
        return tool("plan_prompts", *args)

    def summarize(self) -> dict[str, Any]:
        try:
            rows = [
                json.loads(line)
                for line in self.prompts_file.read_text(encoding="utf-8").splitlines()
                if line
            ]
        except (OSError, ValueError) as err:
            raise StageError(
                f"{self.prompts_file}: cannot read this stage output ({err}); run it again"
            ) from None
        per_class, placed = Counter(), Counter()
        for row in rows:
            for name in row["classes"]:
                per_class[name] += 1
                for context in row["contexts"]:
                    placed[(name, context)] += 1
        metrics: dict[str, Any] = {
            "prompts": len(rows),
            "context_only": sum(not row["classes"] for row in rows),
        }
        for (name, context), count in sorted(placed.items()):
            metrics[f"{context}_given_{name}"] = 100 * count / per_class[name]
        return {"metrics": metrics, "outputs": {"prompts": str(self.prompts_file)}}


class _FromModel(_ModelStage):
    """A stage running a Train stage's model that is not a localizer (no ``--data-root``)."""

    def model_args(self) -> list[str]:
        return [self.model.config, self.model.out]


@STAGES.register_module()
class Generate(_FromModel):
    """Images for a PlanPrompts stage's prompts from a generator trained here (``tools/generate_synthetic.py``).

    Options: ``model`` (a Train stage of a configs/synth/ flow model), ``prompts`` (a PlanPrompts
    stage), ``steps``, ``guidance`` (default: the generator's), ``batch_size``, ``seed``,
    ``drop_unknown_words`` (default True: the planner's words the generator never read are left out).
    Writes a VOC-layout folder with the data's class list; reports the image count.
    """

    kind = "generate"

    @classmethod
    def option_names(cls) -> set[str]:
        return {"model", "prompts", "steps", "guidance", "batch_size", "seed", "drop_unknown_words"}

    def reads(self) -> list[str]:
        return [self.model.name, self.prompt_stage.name]

    @property
    def prompt_stage(self) -> PlanPrompts:
        return self.ref_of("prompts", PlanPrompts)

    def argv(self) -> list[str]:
        o = self.options
        args = ["--config", self.model.config, "--checkpoint", self.model.out, "--prompts",
                self.prompt_stage.prompts_file, "--classes", self.ctx.class_file, "--out", self.out, "--no-progress"]  # fmt: skip
        for key in ("steps", "guidance", "batch_size", "seed"):
            if o.get(key) is not None:
                args += [f"--{key.replace('_', '-')}", o[key]]
        if o.get("drop_unknown_words", True):
            args.append("--drop-unknown-words")
        return tool("generate_synthetic", *args, *cfg_options(self.model.model_options))

    def summarize(self) -> dict[str, Any]:
        manifest = read_json(self.out / "manifest.json")
        return {"metrics": {"images": manifest.get("count"), "planned": manifest.get("planned")},
                "outputs": {"images": str(self.out)}}  # fmt: skip


@STAGES.register_module()
class FilterSynthetic(_FromModel):
    """Keep the images of a Generate stage that the classifier agrees with (``tools/filter_synthetic.py``).

    It rewrites that folder's train split (and records the scores in its manifest), so its ``out`` is
    the Generate stage's folder: later stages name this stage to read the kept images. Options:
    ``model`` (a Train stage of a CAM or BAS classifier), ``synthetic`` (a Generate stage),
    ``threshold`` (default 0.5), ``reject`` (drop images where an unprompted class scores this much).
    Reports the share kept, overall and per class, as percent.
    """

    kind = "filter_synthetic"
    uses_model = False  # one process is enough (a forward pass per image); the tool has no --launcher
    owns_output = False  # it rewrites the Generate stage's folder

    @classmethod
    def option_names(cls) -> set[str]:
        return {"model", "synthetic", "threshold", "reject"}

    @property
    def out(self) -> Path:
        return self.ref("synthetic").out

    def reads(self) -> list[str]:
        return [self.model.name, self.ref("synthetic").name]

    def argv(self) -> list[str]:
        o = self.options
        args = [
            *self.model_args(),
            "--synthetic",
            self.out,
            "--threshold",
            o.get("threshold", 0.5),
            "--no-progress",
        ]
        if o.get("reject") is not None:
            args += ["--reject-unprompted", o["reject"]]
        return tool("filter_synthetic", *args, *cfg_options(self.model.model_options))

    def summarize(self) -> dict[str, Any]:
        totals = read_json(self.out / "manifest.json").get("filter")
        if not totals:
            raise StageError(f"{self.out / 'manifest.json'}: no filter record; run stage {self.name} again")
        metrics = {"kept": totals["kept"], "filtered": totals["filtered"],
                   "kept_share": None if totals["kept_share"] is None else 100 * totals["kept_share"]}  # fmt: skip
        kept = {name: (100 * row["kept"] / row["prompted"] if row["prompted"] else None)
                for name, row in totals["per_class"].items()}  # fmt: skip
        return {"metrics": metrics, "headline": "kept_share", "per_class": {"kept_share": kept},
                "outputs": {"images": str(self.out)}}  # fmt: skip
