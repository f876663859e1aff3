"""Hooks every training run of the toolkit gets: its summary file, the BAS map-collapse check, and
following the pipeline's share of the cores.

:class:`TrainingSummaryHook` writes ``WORK_DIR/training_summary.json`` after every validation and at
the end: each validation's metrics, the best and last values, and ``final_checkpoint`` (the best
checkpoint when the config saves one by a metric, else the last), also recorded in
``WORK_DIR/final_checkpoint``, so later stages and tools can name a work dir instead of a file.

:class:`MapCollapseHook` reads, after each training epoch, the mean foreground map of every class a
BAS model drew, and warns (and records in the summary) when one has collapsed to nearly 0, which
happens when BAS starts from a classifier that does not yet recognise that class.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from mmengine.dist import all_reduce, is_main_process
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from wsss.engine.checkpoint import FINAL_RECORD, LAST_RECORD
from wsss.fileio import write_json_atomic, write_text_atomic
from wsss.parallel import follow_thread_share
from wsss.registry import HOOKS

SUMMARY_FILE = "training_summary.json"
COLLAPSE_INFO = "collapsed_classes"


def _unwrap(runner: Any) -> torch.nn.Module:
    return runner.model.module if is_model_wrapper(runner.model) else runner.model


def _class_names(runner: Any) -> list[str]:
    meta = getattr(runner.train_dataloader.dataset, "metainfo", None) or {}
    return list(meta.get("classes", []))


@HOOKS.register_module()
class TrainingSummaryHook(Hook):
    """Keeps ``training_summary.json`` and the ``final_checkpoint`` record of a run up to date."""

    priority = "LOWEST"

    def __init__(self) -> None:
        self.history: list[dict[str, Any]] = []
        self.training = False

    def before_train(self, runner: Any) -> None:
        self.training = True
        previous = Path(runner.work_dir) / SUMMARY_FILE
        if runner.iter > 0 and previous.is_file():  # a resumed run keeps the history it had
            self.history = json.loads(previous.read_text(encoding="utf-8")).get("validation", [])

    def after_val_epoch(self, runner: Any, metrics: dict[str, float] | None = None) -> None:
        if metrics and self.training:  # a validation run after training is not part of its history
            self.history.append(
                {"epoch": runner.epoch, "iter": runner.iter, **{k: float(v) for k, v in metrics.items()}}
            )
            self._write(runner, finished=False)

    def after_train(self, runner: Any) -> None:
        self._write(runner, finished=True)
        self.training = False

    def _final_checkpoint(self, runner: Any) -> str | None:
        best = runner.message_hub.get_info("best_ckpt")
        if best and Path(best).is_file():
            return str(best)
        record = Path(runner.work_dir) / LAST_RECORD
        return record.read_text(encoding="utf-8").strip() if record.is_file() else None

    def _write(self, runner: Any, finished: bool) -> None:
        if not is_main_process():
            return
        final = self._final_checkpoint(runner) if finished else None
        metrics = sorted({key for entry in self.history for key in entry} - {"epoch", "iter"})
        summary = {
            "finished": finished,
            "epochs": runner.epoch,
            "iterations": runner.iter,
            "final_checkpoint": final,
            "validation": self.history,
            "last": {key: self.history[-1].get(key) for key in metrics} if self.history else {},
            "best": {key: max(e[key] for e in self.history if key in e) for key in metrics},
            COLLAPSE_INFO: runner.message_hub.get_info(COLLAPSE_INFO) or [],
        }
        write_json_atomic(Path(runner.work_dir) / SUMMARY_FILE, summary)
        if final is not None:
            write_text_atomic(Path(runner.work_dir) / FINAL_RECORD, final + "\n")


@HOOKS.register_module()
class MapCollapseHook(Hook):
    """Warns when a BAS class's foreground maps have collapsed: their mean over an epoch below ``threshold``.

    Models without map statistics (anything but BAS) are left alone.
    """

    priority = "LOW"

    def __init__(self, threshold: float = 0.01) -> None:
        self.threshold = threshold

    def after_train_epoch(self, runner: Any) -> None:
        model = _unwrap(runner)
        if not hasattr(model, "pop_map_statistics"):
            return
        sums, counts = model.pop_map_statistics()
        all_reduce(sums)
        all_reduce(counts)
        names = _class_names(runner)[1:] or [f"class {k + 1}" for k in range(len(sums))]
        means = sums / counts.clamp(min=1)
        collapsed = [
            (names[k], float(means[k]))
            for k in range(len(sums))
            if counts[k] > 0 and means[k] < self.threshold
        ]
        runner.message_hub.update_info(COLLAPSE_INFO, [name for name, _ in collapsed])
        if collapsed:
            listed = ", ".join(f"{name} (mean {value:.4f})" for name, value in collapsed)
            runner.logger.warning(
                f"epoch {runner.epoch}: BAS foreground maps collapsed to 0 for {listed}: the classifier did not "
                "recognise these classes when BAS started; start BAS from a trained CAM (--load-from CAM_WORK_DIR) "
                "or train the CAM longer"
            )


@HOOKS.register_module()
class ThreadShareHook(Hook):
    """Follows the pipeline's share of the cores (``wsss.parallel.follow_thread_share``) every ``interval``
    iterations, so a training stage speeds up when the stage beside it ends. No-op outside a pipeline."""

    priority = "VERY_LOW"

    def __init__(self, interval: int = 10) -> None:
        self.interval = interval

    def before_train(self, runner: Any) -> None:
        follow_thread_share()

    def after_train_iter(
        self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None
    ) -> None:
        if runner.iter % self.interval == 0:
            follow_thread_share()
