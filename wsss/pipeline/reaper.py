"""The stage reaper: a small process that outlives a killed pipeline just long enough to stop its stages.

A pipeline killed with SIGKILL runs no handler. The kernel's parent-death signal ends each stage
process and the toolkit's own workers (see :func:`wsss.parallel.die_with_parent`), but not a process
a stage started without asking for it (a shell command's children, a library's helper). Each stage
runs in its own process group, so the pipeline tells this reaper the groups it starts and the ones
that ended; when the pipe from the pipeline closes (it exited or was killed: the kernel closes its
files either way), the reaper kills every group still listed, then exits.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from types import TracebackType


def reap(lines: list[str] | None = None) -> set[int]:
    """Follow ``+PGID`` / ``-PGID`` lines (stdin unless ``lines``) and SIGKILL the groups left at the end."""
    groups: set[int] = set()
    for line in sys.stdin if lines is None else lines:
        line = line.strip()
        if line[:1] in ("+", "-") and line[1:].isdigit():
            (groups.add if line[0] == "+" else groups.discard)(int(line[1:]))
    for group in groups:
        try:
            os.killpg(group, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    return groups


class StageReaper:
    """The pipeline's side: start the reaper, ``watch`` each stage's process group, ``release`` it once the
    stage has ended and was stopped; leaving the ``with`` block closes the pipe (the reaper then exits)."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "wsss.pipeline.reaper"],
            stdin=subprocess.PIPE,
            text=True,
            start_new_session=True,  # Ctrl-C in the terminal reaches the stages, not the reaper
        )

    def _send(self, line: str) -> None:
        assert self._process.stdin is not None
        self._process.stdin.write(line + "\n")
        self._process.stdin.flush()

    def watch(self, group: int) -> None:
        self._send(f"+{group}")

    def release(self, group: int) -> None:
        self._send(f"-{group}")

    def __enter__(self) -> StageReaper:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        self._process.wait()


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    reap()
