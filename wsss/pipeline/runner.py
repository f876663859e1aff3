"""Running a pipeline config: its stages in dependency order, resumable, re-run when what decides them changes.

State lives in the work dir: ``stages/<name>.json`` marks a stage done, with the fingerprint of its
command and config files, a token of this run of it, and the tokens of the inputs it read;
``summaries/<name>.json`` holds what it measured; ``logs/<name>.log`` its output. A stage is done
when its marker exists, its fingerprint is unchanged and its inputs are the runs it read; otherwise
it runs again, and so does everything after it.

Independent stages run side by side (``jobs``), the longest chain of remaining work first. The
cores are shared evenly among the running stages: each starts with its share as its thread count,
and training and seed stages follow the share as it changes (``wsss.parallel.follow_thread_share``),
so a stage that started beside another takes every core once it runs alone.

A stage runs in its own process group. When the pipeline is interrupted (Ctrl-C, SIGTERM, SIGHUP)
it stops each running stage's whole group; when it is killed outright (SIGKILL), the kernel's
parent-death signal (Linux; a watcher thread elsewhere) ends the stage, its pool workers and the
tools it starts (``$WSSS_DIE_WITH_PARENT``). Temporary files that killed runs left in the state
folders are deleted at the start.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from mmengine.config import Config

from wsss.fileio import remove_stale_temporaries, write_json_atomic, write_text_atomic
from wsss.parallel import DIE_WITH_PARENT_VARIABLE, THREAD_SHARE_VARIABLE, die_with_parent, usable_cores
from wsss.pipeline.reaper import StageReaper
from wsss.pipeline.stage import STAGES, PipelineContext, Stage, StageError

ENTRY_KEYS = ("type", "description", "report")


@dataclass
class StageStatus:
    """Where a stage stands before a run: ``done``, ``stale`` (done, but its command or inputs changed) or ``pending``."""

    state: str
    reason: str
    seconds: float | None = None


def build_stages(cfg: Config, ctx: PipelineContext) -> list[Stage]:
    """The stages of ``cfg.stages`` (a dict name -> entry; an entry set to None is dropped), in a valid order."""
    entries = cfg.get("stages")
    if not isinstance(entries, dict) or not entries:
        raise StageError(f"{cfg.filename}: a pipeline config needs `stages = dict(name=dict(type=...), ...)`")
    stages: list[Stage] = []
    for name, entry in entries.items():
        if entry is None:
            continue
        entry = dict(entry)
        kind = entry.get("type")
        if kind is None or STAGES.get(kind) is None:
            known = (
                ", ".join(sorted(STAGES.module_dict)) if STAGES.module_dict else "see wsss.pipeline.stages"
            )
            raise StageError(
                f"{cfg.filename}: stage {name} has type {kind!r}, which is not a stage type ({known})"
            )
        options = {key: value for key, value in entry.items() if key not in ENTRY_KEYS}
        stages.append(
            STAGES.get(kind)(name, ctx, entry.get("description", ""), entry.get("report"), **options)
        )
    ctx.stages.update({stage.name: stage for stage in stages})
    makers = [stage.name for stage in stages if stage.makes_data]
    if len(makers) > 1:
        raise StageError(f"{cfg.filename}: stages {', '.join(makers)} all make the dataset; keep one")
    ctx.data_stage = makers[0] if makers else None
    return topological(stages)


def topological(stages: Sequence[Stage]) -> list[Stage]:
    """``stages`` ordered so each comes after the stages it needs (config order kept where free)."""
    by_name = {stage.name: stage for stage in stages}
    order: list[Stage] = []
    state: dict[str, str] = {}

    def visit(stage: Stage, path: tuple[str, ...]) -> None:
        if state.get(stage.name) == "done":
            return
        if state.get(stage.name) == "visiting":
            raise StageError(f"stages depend on each other in a cycle: {' -> '.join((*path, stage.name))}")
        state[stage.name] = "visiting"
        for need in stage.needs():
            if need not in by_name:
                raise StageError(f"stage {stage.name} needs {need!r}, which is not a stage of this pipeline")
            visit(by_name[need], (*path, stage.name))
        state[stage.name] = "done"
        order.append(stage)

    for stage in stages:
        visit(stage, ())
    return order


class PipelineRunner:
    """Plans and runs the stages of one pipeline in ``ctx.work_dir``."""

    def __init__(self, stages: Sequence[Stage], ctx: PipelineContext, jobs: int = 2):
        self.stages = {stage.name: stage for stage in stages}
        self.ctx = ctx
        self.jobs = max(1, jobs)
        self.marker_dir = ctx.work_dir / "stages"
        self.summary_dir = ctx.work_dir / "summaries"
        self.log_dir = ctx.work_dir / "logs"
        self.share_dir = ctx.work_dir / "threads"
        self._outdated: set[str] = set()  # stages whose earlier output is out of date in this run

    # --- state ------------------------------------------------------------------------------------

    def marker(self, name: str) -> dict[str, Any] | None:
        path = self.marker_dir / f"{name}.json"
        try:
            return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
        except (OSError, ValueError):
            return None

    def plan(self, rerun: set[str] = frozenset()) -> dict[str, StageStatus]:
        """Each stage's status, in dependency order; ``rerun`` stages count as stale, and so does what follows."""
        status: dict[str, StageStatus] = {}
        for name, stage in self.stages.items():
            marker = self.marker(name)
            upstream_runs = [need for need in stage.needs() if status[need].state != "done"]
            if name in rerun:
                status[name] = StageStatus("stale", "asked to run again")
            elif marker is None:
                status[name] = StageStatus("pending", "not run yet")
            elif upstream_runs:
                status[name] = StageStatus("stale", f"its input {upstream_runs[0]} runs again")
            elif marker.get("fingerprint") != stage.fingerprint():
                status[name] = StageStatus("stale", "its command or config changed")
            elif marker.get("inputs") != {need: self.marker(need)["token"] for need in stage.needs()}:
                status[name] = StageStatus("stale", "an input was made again since")
            else:
                status[name] = StageStatus("done", "done", marker.get("seconds"))
        return status

    def descendants(self, name: str) -> set[str]:
        """``name`` and every stage that reads it, directly or through others."""
        found = {name}
        for other, stage in self.stages.items():  # dependency order: one pass suffices
            if any(need in found for need in stage.needs()):
                found.add(other)
        return found

    def launch_argv(self, stage: Stage) -> list[str]:
        """The stage's command, under torchrun on ``ctx.gpus`` GPUs when it runs a model and more than one is given."""
        argv = stage.argv()
        if not (stage.uses_model and self.ctx.gpus > 1):
            return argv
        module_at = argv.index("-m") + 1
        return [argv[0], "-m", "torch.distributed.run", "--nproc_per_node", str(self.ctx.gpus), "-m",
                *argv[module_at:], "--launcher", "pytorch"]  # fmt: skip

    def summary(self, stage: Stage) -> dict[str, Any]:
        """The stage's summary in the fixed schema, from its outputs (floors are checked here, also on resume)."""
        measured = stage.summarize()
        return {
            "stage": stage.name,
            "type": type(stage).__name__,
            "description": stage.description,
            "seconds": (self.marker(stage.name) or {}).get("seconds"),
            "metrics": measured.get("metrics", {}),
            "headline": measured.get("headline"),
            "per_class": measured.get("per_class", {}),
            "outputs": {"folder": str(stage.out), **measured.get("outputs", {})},
            "notes": measured.get("notes", []),
        }

    # --- running ----------------------------------------------------------------------------------

    def run(
        self, only: str | None = None, start_from: str | None = None, log=print
    ) -> dict[str, dict[str, Any]]:
        """Run what is not done (or only ``only``, or ``start_from`` and what follows); returns every summary."""
        for name in (only, start_from):
            if name is not None and name not in self.stages:
                raise StageError(f"no stage {name!r}; the stages are {', '.join(self.stages)}")
        rerun = {only} if only else self.descendants(start_from) if start_from else set()
        status = self.plan(rerun)
        todo = [name for name, s in status.items() if s.state != "done" and (only is None or name == only)]
        if only is not None:
            blocked = [need for need in self.stages[only].needs() if status[need].state != "done"]
            if blocked:
                raise StageError(
                    f"stage {only} needs {', '.join(blocked)}, which are not done; run those first"
                )
        self._outdated = {name for name, s in status.items() if s.state == "stale" and name in todo}
        for name in self.stages:
            if name in self._outdated:
                log(f"[rerun] {name}: {status[name].reason}")
        for folder in (self.marker_dir, self.summary_dir, self.log_dir, self.share_dir):
            folder.mkdir(parents=True, exist_ok=True)
            remove_stale_temporaries(folder)
        done = {name for name, s in status.items() if s.state == "done"}
        for name in self.stages:
            if name in done and only is None:
                self._write_summary(self.stages[name])
                log(f"[skip] {name} (done, {status[name].seconds or 0:.0f} s)")
        with _termination_as_interrupt(), StageReaper() as reaper:
            self._run_stages(todo, done, log, reaper)
        return {
            name: self._read_summary(name)
            for name in self.stages
            if (self.summary_dir / f"{name}.json").is_file()
        }

    def _priorities(self) -> dict[str, int]:
        """Length of the longest chain of stages from each stage to the end (run long chains first)."""
        depth: dict[str, int] = {}
        for name in reversed(list(self.stages)):
            readers = [other for other, stage in self.stages.items() if name in stage.needs()]
            depth[name] = 1 + max((depth[r] for r in readers), default=0)
        return depth

    def _run_stages(self, todo: list[str], done: set[str], log, reaper: StageReaper) -> None:
        priority = self._priorities()
        pending = sorted(todo, key=lambda name: -priority[name])
        running: dict[str, tuple[subprocess.Popen, float, Any]] = {}
        failure: str | None = None
        try:
            while pending or running:
                if failure is None:
                    ready = [n for n in pending if all(need in done for need in self.stages[n].needs())]
                    starting = ready[: self.jobs - len(running)]
                    threads = max(1, usable_cores() // max(1, len(running) + len(starting)))
                    for name in starting:
                        pending.remove(name)
                        log(f"[start] {name}: {self.stages[name].description}")
                        running[name] = self._start(self.stages[name], threads)
                        reaper.watch(running[name][0].pid)
                    if starting:
                        self._share_threads(running)
                elif not running:
                    break
                time.sleep(0.2)
                for name, (process, started, handle) in list(running.items()):
                    if process.poll() is None:
                        continue
                    reaper.release(process.pid)
                    handle.close()
                    del running[name]
                    self._share_threads(running)
                    seconds = time.monotonic() - started
                    if process.returncode != 0:
                        failure = (
                            failure
                            or f"stage {name} failed after {seconds:.0f} s; see {self.log_dir / name}.log"
                        )
                        log(f"[FAILED] {name}; see {self.log_dir / name}.log")
                        continue
                    self._mark_done(self.stages[name], seconds)
                    done.add(name)
                    log(f"[done] {name} in {seconds:.0f} s")
                    try:
                        self._write_summary(self.stages[name])
                    except StageError as err:
                        failure = failure or str(err)
        finally:
            for process, _, handle in running.values():
                _stop(process)
                reaper.release(process.pid)
                handle.close()
        if failure is not None:
            raise StageError(f"{failure} (run the same command again to resume)")

    def _share_threads(self, running: dict[str, Any]) -> None:
        """Write every running stage's share of the cores where it reads it (its thread-share file)."""
        share = str(max(1, usable_cores() // max(1, len(running))))
        for name in running:
            write_text_atomic(self.share_dir / name, share)

    def _clear_outdated(self, stage: Stage) -> None:
        """Remove a stage's earlier, now outdated output before it runs again, so that its tool starts
        afresh instead of resuming from files an older command or input made (seeds of the previous
        model, a training run of the previous config). Only folders inside the work dir that the stage
        owns are removed; a run cut short after this resumes from what it wrote since."""
        out = stage.out.resolve()
        if stage.owns_output and out.is_relative_to(self.ctx.work_dir.resolve()) and out.is_dir():
            shutil.rmtree(out)
        (self.marker_dir / f"{stage.name}.json").unlink(missing_ok=True)

    def _start(self, stage: Stage, threads: int) -> tuple[subprocess.Popen, float, Any]:
        if stage.name in self._outdated:
            self._clear_outdated(stage)
        argv = self.launch_argv(stage)
        self.share_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.share_dir / stage.name, str(threads))
        env = dict(
            os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads)
        )
        env[THREAD_SHARE_VARIABLE] = str(self.share_dir / stage.name)
        env[DIE_WITH_PARENT_VARIABLE] = str(
            os.getpid()
        )  # the tool's own children (torchrun's workers) follow it
        handle = open(self.log_dir / f"{stage.name}.log", "w", encoding="utf-8")  # noqa: SIM115 (closed when it ends)
        handle.write("$ " + shlex.join(argv) + "\n")
        handle.flush()
        process = subprocess.Popen(
            argv,
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=env,
            preexec_fn=partial(die_with_parent, os.getpid()),
            start_new_session=True,
        )
        return process, time.monotonic(), handle

    def _mark_done(self, stage: Stage, seconds: float) -> None:
        inputs = {need: self.marker(need)["token"] for need in stage.needs()}
        write_json_atomic(
            self.marker_dir / f"{stage.name}.json",
            {
                "fingerprint": stage.fingerprint(),
                "token": uuid.uuid4().hex,
                "inputs": inputs,
                "seconds": seconds,
                "command": stage.command_line(),
            },  # fmt: skip
        )

    def _write_summary(self, stage: Stage) -> None:
        write_json_atomic(self.summary_dir / f"{stage.name}.json", self.summary(stage))

    def _read_summary(self, name: str) -> dict[str, Any]:
        return json.loads((self.summary_dir / f"{name}.json").read_text(encoding="utf-8"))

    def dry_run(self) -> list[str]:
        """Every stage's command line, in an order that runs them (each after what it needs)."""
        return [shlex.join(self.launch_argv(stage)) for stage in self.stages.values()]


@contextmanager
def _termination_as_interrupt() -> Iterator[None]:
    """Inside the block, SIGTERM and SIGHUP raise KeyboardInterrupt like Ctrl-C, so the running stages'
    process groups are stopped on the way out instead of being left to the kernel's parent-death signal."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _stop(process: subprocess.Popen) -> None:
    """Stop a stage and everything it started (its process group): SIGTERM, then SIGKILL after 10 s."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


def make_context(cfg: Config, config_path: str | os.PathLike, work_dir: str | os.PathLike,
                 data_root: str | os.PathLike | None, gpus: int = 0) -> tuple[PipelineContext, list[Stage]]:  # fmt: skip
    """The context and stages of a pipeline config: ``data_root`` given drops the stages that make the data;
    the config's ``splits`` (e.g. ``dict(train="train2017", val="val2017")``) names the dataset's splits."""
    work = Path(work_dir).resolve()
    given = Path(data_root).resolve() if data_root is not None else None
    if given is not None and not given.is_dir():
        raise StageError(f"{data_root}: data root not found; give a VOC-layout dataset folder")
    ctx = PipelineContext(work, given or work / "data", Path(config_path).resolve().parent, gpus)
    ctx.splits = {**ctx.splits, **cfg.get("splits", {})}
    if given is not None:
        cfg.stages = {name: entry for name, entry in cfg.stages.items()
                      if entry is None or not getattr(STAGES.get(entry.get("type")), "makes_data", False)}  # fmt: skip
    stages = build_stages(cfg, ctx)
    if given is None and ctx.data_stage is None:
        raise StageError(f"{config_path}: no stage makes the dataset; give --data-root")
    return ctx, stages


def print_status(runner: PipelineRunner) -> None:
    """A table of the stages with their status, last run time and the reason they would run."""
    for name, status in runner.plan().items():
        seconds = "-" if status.seconds is None else f"{status.seconds:.0f} s"
        print(f"{name:<20} {status.state:<8} {seconds:>8}  {runner.stages[name].description}"
              + ("" if status.state == "done" else f"  ({status.reason})"))  # fmt: skip
