"""Training on several datasets at once (real + synthetic), each with its own root, at a chosen ratio.

A config puts them in one :class:`MixedDataset`; the first dataset is the primary one (the one
``--data-root`` points at). :class:`RatioSampler` decides how much of each an epoch sees::

    train_dataloader = dict(
        sampler=dict(type="RatioSampler", ratios=(1.0, 0.5)),   # all real images + half as many synthetic
        dataset=dict(type="MixedDataset", datasets=[
            dict(type="ImageLabelDataset", data_root="data/shapes", split="train", ...),
            dict(type="ImageLabelDataset", data_root="work_dirs/synth", split="train", ...),
        ]),
    )
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from mmengine.dist import get_dist_info, sync_random_seed
from torch.utils.data import ConcatDataset, Dataset, Sampler

from wsss.registry import DATA_SAMPLERS, DATASETS


@DATASETS.register_module()
class MixedDataset(ConcatDataset):
    """Several datasets with the same classes, indexed one after the other; the first is the primary."""

    def __init__(self, datasets: Sequence[dict | Dataset]):
        built = [DATASETS.build(d) if isinstance(d, dict) else d for d in datasets]
        if not built:
            raise ValueError("MixedDataset needs at least one dataset")
        names = [tuple(getattr(d, "class_names", ())) for d in built]
        for index, other in enumerate(names[1:], start=1):
            if other != names[0]:
                raise ValueError(
                    f"MixedDataset: dataset {index} ({getattr(built[index], 'data_root', '?')}) has classes "
                    f"{list(other)[:4]}... but the primary ({getattr(built[0], 'data_root', '?')}) has "
                    f"{list(names[0])[:4]}...; every part must use the primary's class list"
                )
        super().__init__(built)

    @property
    def primary(self) -> Dataset:
        return self.datasets[0]

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.primary.class_names)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def metainfo(self) -> dict[str, Any]:
        return dict(self.primary.metainfo)


@DATA_SAMPLERS.register_module()
class RatioSampler(Sampler[int]):
    """Per epoch: ``ratios[i] * len(primary)`` items of part ``i`` of a :class:`MixedDataset`, shuffled together.

    A part with fewer items than it must give repeats them (every item before any twice); one with
    more gives a fresh random subset each epoch. ``ratios[0]`` is usually 1 (the whole primary
    dataset). Distributed runs split the epoch's indices between ranks (padded to equal length), and
    ``set_epoch`` (called by mmengine's ``DistSamplerSeedHook``) reshuffles.
    """

    def __init__(self, dataset: MixedDataset, ratios: Sequence[float] = (1.0, 1.0), seed: int | None = None):
        if not isinstance(dataset, MixedDataset):
            raise ValueError("RatioSampler needs a MixedDataset (several datasets) as the loader's dataset")
        if len(ratios) != len(dataset.datasets):
            raise ValueError(
                f"RatioSampler: {len(ratios)} ratios for {len(dataset.datasets)} datasets; give one ratio per dataset"
            )
        if any(r < 0 for r in ratios) or sum(ratios) <= 0:
            raise ValueError(f"RatioSampler: ratios must be non-negative and not all 0, got {list(ratios)}")
        self.dataset = dataset
        self.ratios = tuple(float(r) for r in ratios)
        self.rank, self.world_size = get_dist_info()
        self.seed = sync_random_seed() if seed is None else seed
        self.epoch = 0
        primary = len(dataset.primary)
        self.counts = [round(ratio * primary) for ratio in self.ratios]
        self.num_samples = math.ceil(sum(self.counts) / self.world_size)

    def _part_indices(self, part: int, count: int, generator: torch.Generator) -> torch.Tensor:
        size = len(self.dataset.datasets[part])
        if count == 0 or size == 0:
            return torch.empty(0, dtype=torch.long)
        repeats = math.ceil(count / size)
        order = torch.cat([torch.randperm(size, generator=generator) for _ in range(repeats)])[:count]
        return order + (self.dataset.cumulative_sizes[part - 1] if part else 0)

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        parts = [self._part_indices(i, count, generator) for i, count in enumerate(self.counts)]
        indices = torch.cat(parts)[torch.randperm(sum(self.counts), generator=generator)].tolist()
        total = self.num_samples * self.world_size
        indices += indices[: total - len(indices)]
        return iter(indices[self.rank : total : self.world_size])

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
