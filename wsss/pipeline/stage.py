"""What a pipeline stage is: a named command over earlier stages' outputs, registered by its type.

A pipeline config lists its stages in a dict (``stages = dict(name=dict(type=..., **options))``);
each entry builds one :class:`Stage`. A stage

* names the stages it reads (:meth:`Stage.needs`, derived from its options),
* writes one folder, ``WORK/<name>`` (:attr:`Stage.out`),
* is one command line (:meth:`Stage.argv`), ``python -m wsss.cli.<tool> ...`` with every path
  absolute, so ``--dry-run`` prints commands a user can run by hand or submit to a cluster,
* reports what it measured in a summary of a fixed schema (:meth:`Stage.summarize`), which the
  report reads: ``{"stage", "type", "metrics", "per_class", "outputs", "notes"}``.

A new stage type is a subclass registered with ``@STAGES.register_module()``; a new stage in a
pipeline is one more config entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from mmengine.config import Config
from mmengine.registry import Registry

STAGES = Registry("pipeline stage", scope="wsss", locations=["wsss.pipeline.stages", "wsss.pipeline.synth"])


class StageError(RuntimeError):
    """A stage cannot be built or its result fails a check (a learning floor): the pipeline stops, one line."""


#: The split names the stages use unless the pipeline config's ``splits`` renames them.
DEFAULT_SPLITS = {"train": "train", "val": "val"}


@dataclass
class PipelineContext:
    """What every stage of one run shares: the work dir, the dataset, the config's folder, the GPUs."""

    work_dir: Path
    data_root: Path
    config_dir: Path
    gpus: int = 0
    stages: dict[str, Stage] = field(default_factory=dict)
    data_stage: str | None = None  # the stage that makes the dataset, when the pipeline makes it
    splits: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_SPLITS))

    def stage_dir(self, name: str) -> Path:
        return self.work_dir / name

    def split_name(self, split: str) -> str:
        """The dataset's name for a split: ``train`` and ``val`` as the config's ``splits`` maps them
        (COCO's ``train2017``), any other name as given."""
        return self.splits.get(split, split)

    @property
    def renames_splits(self) -> bool:
        return self.splits != DEFAULT_SPLITS

    def split_list(self, split: str) -> Path:
        return self.data_root / "ImageSets" / "Segmentation" / f"{self.split_name(split)}.txt"

    @property
    def class_file(self) -> Path:
        return self.data_root / "class_names.txt"

    def resolve_path(self, path: str | os.PathLike) -> Path:
        """A file a stage option names: absolute as given, else relative to the working directory, else
        to the pipeline config's folder or one of its parents (so ``configs/...`` works from anywhere)."""
        path = Path(path)
        if path.is_absolute() or path.exists():
            return path.resolve()
        for folder in (self.config_dir, *self.config_dir.parents):
            if (folder / path).exists():
                return (folder / path).resolve()
        raise StageError(f"{path}: not found (looked in {Path.cwd()} and above {self.config_dir})")


def tool(name: str, *args: object) -> list[str]:
    """argv running the tool module ``wsss.cli.<name>`` with this interpreter (works for installed wsss too)."""
    return [sys.executable, "-m", f"wsss.cli.{name}", *(str(a) for a in args)]


def cfg_options(options: dict[str, Any]) -> list[str]:
    """``--cfg-options`` arguments from a dict (nothing when empty); values as mmengine's DictAction reads them."""
    if not options:
        return []
    return ["--cfg-options", *(f"{key}={_option_value(value)}" for key, value in options.items())]


def _option_value(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        inner = ",".join(_option_value(v) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner},)" if len(value) == 1 else f"({inner})"
    return str(value)


def file_fingerprint(path: Path) -> str:
    """A hash of what a config file means (its resolved text, bases included), or of a plain file's bytes."""
    if path.suffix == ".py":
        text = Config.fromfile(str(path)).pretty_text
    else:
        text = path.read_text(encoding="utf-8", errors="replace")
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


StageT = TypeVar("StageT", bound="Stage")


class Stage(ABC):
    """Base of every stage type; see the module docstring. Subclasses set ``kind`` and implement
    :meth:`needs`, :meth:`argv` and, when they measure something, :meth:`summarize`."""

    kind: ClassVar[str] = "stage"
    #: A stage that trains or runs a model: ``--gpus N`` runs it under torchrun on N GPUs.
    uses_model: ClassVar[bool] = False
    #: A stage that makes the dataset itself; dropped when the user gives ``--data-root``.
    makes_data: ClassVar[bool] = False
    #: Its ``out`` folder is its own (removed when the stage must run again); False for a stage that
    #: rewrites another stage's folder in place.
    owns_output: ClassVar[bool] = True
    #: Options that each name one stage whose output this one reads: what :meth:`reads` returns by default.
    reads_from: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        name: str,
        ctx: PipelineContext,
        description: str = "",
        report: dict | None = None,
        **options: Any,
    ):
        self.name = name
        self.ctx = ctx
        self.description = description or self.kind
        self.report = dict(report or {})
        self.options = options
        unknown = set(options) - set(self.option_names())
        if unknown:
            raise StageError(
                f"stage {name} ({type(self).__name__}): unknown option(s) {sorted(unknown)}; "
                f"it takes {sorted(self.option_names())}"
            )

    @classmethod
    def option_names(cls) -> set[str]:
        """The options a config entry of this type may set."""
        return set()

    @property
    def out(self) -> Path:
        """The folder this stage writes."""
        return self.ctx.stage_dir(self.name)

    def reads(self) -> list[str]:
        """Names of the stages whose outputs this one reads (from its options)."""
        return [self.ref(key).name for key in self.reads_from]

    def needs(self) -> list[str]:
        """The stages that must be done before this one: those it reads, and the one that makes the data."""
        data = [self.ctx.data_stage] if self.ctx.data_stage and not self.makes_data else []
        return data + [name for name in self.reads() if name not in data]

    @abstractmethod
    def argv(self) -> list[str]:
        """The command line of this stage."""

    def files(self) -> list[Path]:
        """Files whose content decides the result besides the command line (configs): part of the stage's hash."""
        return []

    def summarize(self) -> dict[str, Any]:
        """What the stage measured, read from its outputs after it ran: ``metrics``, ``per_class``, ``outputs``."""
        return {}

    # --- helpers for subclasses -----------------------------------------------------------------

    def ref(self, key: str) -> Stage:
        """The stage an option names, checked to exist in the pipeline."""
        name = self.options.get(key)
        if name not in self.ctx.stages:
            raise StageError(f"stage {self.name}: option {key}={name!r} names no stage of this pipeline")
        return self.ctx.stages[name]

    def ref_of(self, key: str, kind: type[StageT]) -> StageT:
        """The stage an option names, checked to exist and to be a ``kind`` stage."""
        stage = self.ref(key)
        if not isinstance(stage, kind):
            raise StageError(f"stage {self.name}: {key}={stage.name!r} is not a {kind.__name__} stage")
        return stage

    def refs(self, key: str) -> list[Stage]:
        """The stages a list option names, each checked to exist."""
        names = self.options.get(key) or []
        missing = [name for name in names if name not in self.ctx.stages]
        if missing:
            raise StageError(
                f"stage {self.name}: option {key} names no stage {missing[0]!r} of this pipeline"
            )
        return [self.ctx.stages[name] for name in names]

    def command_line(self) -> str:
        return shlex.join(self.argv())

    def fingerprint(self) -> str:
        """The hash of everything that decides this stage's output: its command and its config files."""
        content = json.dumps([self.argv(), [file_fingerprint(path) for path in self.files()]])
        return hashlib.sha256(content.encode("utf-8")).hexdigest()[:16]


def read_json(path: Path) -> dict[str, Any]:
    """A JSON output of a stage, with an error naming the file when it is missing or broken."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise StageError(f"{path}: cannot read this stage output ({err}); run the stage again") from None


def per_class_iou(result: dict[str, Any]) -> dict[str, float | None]:
    """``{class: IoU}`` of a result JSON written by the evaluation tools."""
    return {row["class"]: row["IoU"] for row in result["per_class"]}
