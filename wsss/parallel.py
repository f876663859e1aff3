"""Process-level parallelism shared by the stages: usable cores and a chunked process-pool map."""

from __future__ import annotations

import ctypes
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from multiprocessing import Pool
from typing import Any

from tqdm import tqdm


def usable_cores() -> int:
    """CPU cores this process may run on: the affinity mask where the OS has one (Linux), else the count."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


THREAD_SHARE_VARIABLE = "WSSS_THREAD_SHARE_FILE"


def follow_thread_share() -> int | None:
    """Set torch's intra-op threads to the share the pipeline currently gives this process.

    The pipeline runner writes each running stage's share of the cores into the file named by
    ``$WSSS_THREAD_SHARE_FILE`` whenever a stage starts or ends, so a stage that started beside
    another takes every core once it runs alone. Returns the thread count set (None: no share file,
    or it is unreadable: nothing changes). Cheap enough to call every few iterations.
    """
    path = os.environ.get(THREAD_SHARE_VARIABLE)
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            threads = int(handle.read().strip())
    except (OSError, ValueError):
        return None
    import torch

    if threads >= 1 and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads


DIE_WITH_PARENT_VARIABLE = "WSSS_DIE_WITH_PARENT"
EXIT_PARENT_GONE = 143  # as if terminated


def die_with_parent(parent_pid: int | None = None) -> bool:
    """Have the kernel kill this process when its parent dies (Linux's ``PR_SET_PDEATHSIG``).

    For stage subprocesses (as a ``preexec_fn``) and pool workers: a parent killed with SIGKILL cannot
    stop its children, which would otherwise go on writing files into a run that is over. With
    ``parent_pid``, a parent that died before this call (the child was reparented) ends it at once.
    Returns False where the kernel offers no such signal (not Linux): see :func:`watch_parent`.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        if libc.prctl(pr_set_pdeathsig, signal.SIGKILL) != 0:
            return False
    except (OSError, AttributeError):
        return False
    if parent_pid is not None and os.getppid() != parent_pid:
        os.kill(os.getpid(), signal.SIGKILL)
    return True


def watch_parent(parent_pid: int | None = None, interval: float = 1.0) -> None:
    """End this process when its parent dies: the kernel's signal on Linux, else (portable fallback) a
    daemon thread that exits once the parent process id changes (the orphan was reparented)."""
    parent_pid = os.getppid() if parent_pid is None else parent_pid
    if die_with_parent(parent_pid):
        return

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(interval)
        os._exit(EXIT_PARENT_GONE)

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()


def watch_parent_if_asked() -> None:
    """For the tools: die with the parent when started under the pipeline runner, which puts its
    process id in ``$WSSS_DIE_WITH_PARENT``, so a stage's processes (torchrun's workers too) end with it.

    A process that starts after the pipeline is already gone (killed while this one was starting)
    exits at once.
    """
    value = os.environ.get(DIE_WITH_PARENT_VARIABLE, "")
    if not value:
        return
    if value.isdigit() and not process_alive(int(value)):
        os._exit(EXIT_PARENT_GONE)
    watch_parent()


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs; a zombie (dead, not yet reaped) counts as gone where /proc tells."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        pass
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def worker_init(parent_pid: int | None = None) -> None:
    """Initializer of the toolkit's pool workers: die with the parent, leave Ctrl-C to it."""
    watch_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def process_pool(workers: int):
    """A ``multiprocessing`` pool of ``workers`` whose processes die with this one (see :func:`worker_init`)."""
    return Pool(workers, initializer=worker_init, initargs=(os.getpid(),))


def map_id_chunks(
    count_chunk: Callable[[Sequence[str]], tuple[Any, int]],
    ids: Sequence[str],
    workers: int,
    progress: bool,
    desc: str,
    max_chunk: int = 64,
) -> Iterator[Any]:
    """Yield ``count_chunk(chunk)[0]`` for chunks of ``ids``, spread over ``workers`` processes.

    ``count_chunk`` returns (partial result, number of ids done). Several chunks per worker keep the
    progress bar moving and the load balanced; results arrive in any order, so they must be summable.
    """
    workers = max(1, min(workers, len(ids)))
    chunk_size = max(1, min(max_chunk, math.ceil(len(ids) / (workers * 8))))
    chunks = [ids[start : start + chunk_size] for start in range(0, len(ids), chunk_size)]
    with tqdm(total=len(ids), desc=desc, unit="img", disable=not progress) as bar:
        if workers == 1:
            for partial_result, done in map(count_chunk, chunks):
                bar.update(done)
                yield partial_result
        else:
            # Leaving the block terminates the pool, so a failing chunk stops the others at once.
            with process_pool(workers) as pool:
                for partial_result, done in pool.imap_unordered(count_chunk, chunks):
                    bar.update(done)
                    yield partial_result
