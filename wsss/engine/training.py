"""Setting up a training run from a config and the command line: where it starts, and checks before it does.

Where a run starts:

* ``resume`` (``--resume``): the newest whole checkpoint of the work dir, with its optimizer,
  schedule and epoch counter; when ``last_checkpoint`` names a missing or truncated file, the newest
  whole ``epoch_N.pth`` takes its place (said in a note). With no checkpoint there, the run starts
  from ``load_from`` when one is given, else from scratch.
* Temporary checkpoints that a run killed while saving left in the work dir are deleted first.
* ``load_from`` (``--load-from``, or the config's own ``load_from``): model weights only, from a .pth
  file or a training work dir (its final checkpoint). Before training, the weights must fit the
  model: no tensor of another shape (another class count), and at least half of the model's tensors
  in the file, so an unrelated checkpoint cannot pass as a warm start.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from mmengine.config import Config

from wsss.engine.checkpoint import check_weights_fit, find_resumable_checkpoint, resolve_checkpoint
from wsss.engine.config import load_config
from wsss.fileio import remove_stale_temporaries


@dataclass(frozen=True)
class TrainingStart:
    """How a run starts: the checkpoint it resumes or loads (None: from scratch) and notes to print."""

    checkpoint: Path | None
    resume: bool
    notes: tuple[str, ...] = ()


def build_train_config(
    config: str | os.PathLike,
    work_dir: str | os.PathLike | None = None,
    data_root: str | os.PathLike | None = None,
    cfg_options: dict[str, Any] | None = None,
    seed: int | None = None,
    amp: bool = False,
) -> tuple[Config, list[str]]:
    """The config after every command-line override, and notes to print (e.g. --amp ignored on CPU)."""
    cfg = load_config(config, data_root=data_root, cfg_options=cfg_options)
    notes: list[str] = []
    if work_dir is not None:
        cfg.work_dir = str(work_dir)
    elif cfg.get("work_dir") is None:
        cfg.work_dir = str(Path("work_dirs") / Path(config).stem)
    if seed is not None:
        cfg.merge_from_dict({"randomness.seed": seed})
    if amp:
        if torch.cuda.is_available():
            cfg.optim_wrapper.type = "AmpOptimWrapper"
            cfg.optim_wrapper.setdefault("loss_scale", "dynamic")
        else:
            notes.append("--amp needs CUDA; training in fp32 on this CPU-only machine")
    check_schedule(cfg)
    return cfg, notes


def check_schedule(cfg: Config) -> None:
    """ValueError for a schedule that cannot run (``max_epochs`` / ``max_iters`` below 1)."""
    train_cfg = cfg.get("train_cfg") or {}
    for key in ("max_epochs", "max_iters"):
        value = train_cfg.get(key)
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ValueError(
                f"{cfg.filename}: train_cfg.{key} must be a whole number of at least 1, got {value!r}"
            )


def choose_start(cfg: Config, resume: str | None, load_from: str | None) -> TrainingStart:
    """Decide where the run starts (see the module docstring) and set ``cfg.resume`` / ``cfg.load_from``.

    ``resume`` is None, ``'auto'`` (the work dir's newest checkpoint) or a checkpoint path.
    """
    notes: list[str] = []
    # A run killed while saving leaves its temporary checkpoint (``.epoch_N.pth.<pid>.tmp``) behind.
    remove_stale_temporaries(cfg.work_dir)
    warm_start = load_from if load_from is not None else cfg.get("load_from")
    start = TrainingStart(None, False)
    if resume == "auto":
        found, note = find_resumable_checkpoint(cfg.work_dir)
        notes += [note] if note else []
        if found is not None:
            start = TrainingStart(found, True)
        elif warm_start is None:
            notes.append(f"no checkpoint in {cfg.work_dir} to resume from; training from the start")
    elif resume is not None:
        start = TrainingStart(resolve_checkpoint(resume), True)
    if start.checkpoint is None and warm_start is not None:
        try:
            start = TrainingStart(resolve_checkpoint(warm_start), False)
        except FileNotFoundError as err:
            hint = cfg.get("load_from_hint")
            raise FileNotFoundError(f"{err}{f'; {hint}' if hint else ''}") from None
    cfg.resume = start.resume
    cfg.load_from = None if start.checkpoint is None else str(start.checkpoint)
    return TrainingStart(start.checkpoint, start.resume, tuple(notes))


def check_start(model: torch.nn.Module, start: TrainingStart) -> str | None:
    """ValueError unless the start checkpoint's weights fit ``model``; a line saying what is loaded."""
    if start.checkpoint is None:
        return None
    loaded, total = check_weights_fit(model, start.checkpoint, strict=start.resume)
    verb = "resuming from" if start.resume else "starting from the weights of"
    return f"{verb} {start.checkpoint} ({loaded} of the model's {total} tensors)"
