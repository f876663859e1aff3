"""Process-level parallelism shared by the stages: usable cores and a chunked process-pool map."""

from __future__ import annotations

import ctypes
import math
import os
import signal
import sys
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


def die_with_parent() -> None:
    """Have the kernel stop this process when its parent dies (Linux; a no-op elsewhere).

    For pool workers and stage subprocesses: a parent killed with SIGKILL cannot stop its children,
    which would otherwise go on writing files into a run that is over.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGKILL)


def worker_init() -> None:
    """Initializer of the toolkit's pool workers: die with the parent, leave Ctrl-C to it."""
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def process_pool(workers: int):
    """A ``multiprocessing`` pool of ``workers`` whose processes die with this one (see :func:`worker_init`)."""
    return Pool(workers, initializer=worker_init)


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
