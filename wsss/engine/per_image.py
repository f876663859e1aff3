"""Tools that write one file per image (seeds, features, predictions): shares, resumption, counts.

Under ``torchrun`` every rank takes ``ids[rank::world]`` of the whole list *before* skipping
finished files, so ranks never disagree about who does an id, however far an earlier run got.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass
class RunCounts:
    """What one rank did: ids assigned to it, files written, and files that were already there."""

    assigned: int
    written: int
    existing: int

    def describe(self, where: str, done: str = "written") -> str:
        """``'<assigned> images <where>: <written> <done>, <existing> already there'``, as the tools print it."""
        return f"{self.assigned} images {where}: {self.written} {done}, {self.existing} already there"


def sum_counts(counts: RunCounts, device: torch.device) -> RunCounts:
    """The counts summed over all ranks of a distributed run (this rank's otherwise)."""
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return counts
    values = torch.tensor([counts.assigned, counts.written, counts.existing], dtype=torch.long, device=device)
    dist.all_reduce(values)
    return RunCounts(*(int(v) for v in values.tolist()))


def pending_indices(
    count: int, is_done: Callable[[int], bool], rank: int = 0, world_size: int = 1
) -> tuple[list[int], int]:
    """This rank's share of ``range(count)[rank::world_size]`` without the items already done; and the share's size."""
    share = range(count)[rank::world_size]
    return [i for i in share if not is_done(i)], len(share)


def single_item(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Collate for batch size 1: images keep their own sizes."""
    return batch[0]
