"""A small scheduler for resumable pipeline stages run as tool subprocesses.

Each stage is one command (a ``tools/`` script) with the stages it needs; a stage whose marker file
exists is skipped, so re-running the pipeline resumes it. Independent stages run side by side and
every stage writes its own log. A stage gets its share of the CPU threads when it starts: the cores
divided by the stages running at that moment, itself included. Small CPU models train about twice
as fast on two threads as on one, so a stage that starts alone gets them all.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from wsss.fileio import write_text_atomic


@dataclass
class Stage:
    """One step: ``command()`` builds its argv when it starts (it may read earlier stages' outputs)."""

    name: str
    command: Callable[[], list[str]]
    needs: Sequence[str] = ()
    description: str = ""
    seconds: float | None = field(default=None, init=False)
    skipped: bool = field(default=False, init=False)


class StageFailed(RuntimeError):
    """A stage's command exited non-zero."""


class StageRunner:
    """Runs stages in dependency order, ``jobs`` at a time, with markers in ``work_dir/stages``."""

    def __init__(self, stages: Sequence[Stage], work_dir: str | os.PathLike, jobs: int = 2):
        self.stages = {stage.name: stage for stage in stages}
        unknown = {need for stage in stages for need in stage.needs} - set(self.stages)
        if unknown:
            raise ValueError(f"stages need unknown stages: {sorted(unknown)}")
        self.work_dir = Path(work_dir)
        self.marker_dir = self.work_dir / "stages"
        self.log_dir = self.work_dir / "logs"
        self.jobs = max(1, jobs)

    def marker(self, name: str) -> Path:
        return self.marker_dir / f"{name}.json"

    @staticmethod
    def threads_for(running: int) -> int:
        """Threads for a stage that will run beside ``running - 1`` others: an even share of the cores."""
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        return max(1, cores // max(1, running))

    def _start(self, stage: Stage, threads: int) -> tuple[subprocess.Popen, float, list[str]]:
        argv = stage.command()
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
        log = open(self.log_dir / f"{stage.name}.log", "w", encoding="utf-8")  # noqa: SIM115 (closed on finish)
        log.write("$ " + " ".join(argv) + "\n")
        log.flush()
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        process.log = log  # type: ignore[attr-defined]
        return process, time.monotonic(), argv

    def run(self) -> dict[str, Stage]:
        """Run every stage not yet marked done; raise :class:`StageFailed` naming the first failure's log."""
        self.marker_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        done: set[str] = set()
        for name, stage in self.stages.items():
            if self.marker(name).is_file():
                stage.seconds = json.loads(self.marker(name).read_text())["seconds"]
                stage.skipped = True
                done.add(name)
        pending = [name for name in self.stages if name not in done]
        running: dict[str, tuple[subprocess.Popen, float, list[str]]] = {}
        failed: list[str] = []
        bar = tqdm(total=len(self.stages), initial=len(done), desc="pipeline", unit="stage", file=sys.stdout)
        for name in done:
            tqdm.write(f"[skip] {name} (done before, {self.stages[name].seconds:.0f} s)", file=sys.stdout)
        while pending or running:
            if not failed:
                ready = [name for name in pending if all(need in done for need in self.stages[name].needs)]
                starting = ready[: self.jobs - len(running)]
                threads = self.threads_for(len(running) + len(starting))
                for name in starting:
                    pending.remove(name)
                    tqdm.write(f"[start] {name}: {self.stages[name].description}", file=sys.stdout)
                    running[name] = self._start(self.stages[name], threads)
            elif not running:
                break
            time.sleep(0.2)
            for name, (process, started, argv) in list(running.items()):
                if process.poll() is None:
                    continue
                process.log.close()  # type: ignore[attr-defined]
                del running[name]
                seconds = time.monotonic() - started
                if process.returncode != 0:
                    failed.append(name)
                    tqdm.write(
                        f"[FAILED] {name} after {seconds:.0f} s; see {self.log_dir / name}.log",
                        file=sys.stdout,
                    )
                    continue
                stage = self.stages[name]
                stage.seconds = seconds
                write_text_atomic(
                    self.marker(name), json.dumps({"seconds": seconds, "command": argv}, indent=1)
                )
                done.add(name)
                bar.update(1)
                tqdm.write(f"[done] {name} in {seconds:.0f} s", file=sys.stdout)
        bar.close()
        if failed:
            logs = ", ".join(str(self.log_dir / f"{name}.log") for name in failed)
            raise StageFailed(f"stage {failed[0]} failed; see {logs} (re-run the same command to resume)")
        return self.stages


def python_tool(script: str, *args: object) -> list[str]:
    """argv running ``tools/<script>`` with this interpreter."""
    tools = Path(__file__).resolve().parents[2] / "tools"
    return [sys.executable, str(tools / script), *(str(a) for a in args)]
