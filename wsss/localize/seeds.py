"""Seed generation: multi-scale + flip maps of a trained localizer, one ``<id>.npz`` per image.

The loop streams: a DataLoader (batch 1) reads the images not yet done, each image's maps are
written at once (atomically, by :func:`~wsss.localize.seed_io.save_seeds`) and nothing is kept,
so memory does not grow with the dataset. Under ``torchrun`` every rank takes ``ids[rank::world]``
of the whole list *before* skipping finished files, so ranks never disagree about who does an id,
however far an earlier run got.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm import tqdm

from wsss.data.image_io import image_size
from wsss.engine.per_image import RunCounts, pending_indices, single_item
from wsss.fileio import remove_stale_temporaries
from wsss.localize.multiscale import DEFAULT_SCALES, fuse_maps, multiscale_class_maps, normalize_maps
from wsss.localize.seed_io import is_complete_seed_file, load_seeds, save_seeds, seed_file_layout, seed_path
from wsss.nn.preprocessor import normalized_image
from wsss.parallel import follow_thread_share


def class_maps_function(
    model: nn.Module, source: str | None = None
) -> Callable[[torch.Tensor], torch.Tensor]:
    """``batch -> (B, C-1, h, w)`` maps of a localizer; ``source`` picks BAS's ``'fpm'`` or ``'cam'``."""
    if not hasattr(model, "class_maps"):
        raise ValueError(
            f"{type(model).__name__} has no class_maps; give the config of a localizer (BAS, CAM)"
        )
    if source is None:
        return model.class_maps
    if "source" not in inspect.signature(model.class_maps).parameters:
        raise ValueError(f"{type(model).__name__} has one kind of map only; drop --source")
    return lambda batch: model.class_maps(batch, source=source)


@dataclass(frozen=True)
class SeedSettings:
    """How maps are made: test scales, horizontal flips, the map source of BAS (None: the model's
    default), and ``base_size``: when given, the scales apply to the image brought to that shorter side
    (the size the localizer was trained at), else to the image as it is; maps always come back at the
    image's own size."""

    scales: tuple[float, ...] = DEFAULT_SCALES
    flip: bool = True
    source: str | None = None
    base_size: int | None = None

    def scales_for(self, height: int, width: int) -> tuple[float, ...]:
        """The scale factors to apply to an image of ``height`` x ``width``."""
        factor = 1.0 if self.base_size is None else self.base_size / min(height, width)
        return tuple(scale * factor for scale in self.scales)


def image_seeds(
    model: nn.Module,
    image: torch.Tensor,
    keys: Sequence[int],
    settings: SeedSettings,
    cam_model: nn.Module | None = None,
) -> torch.Tensor:
    """Maps ``(K, H, W)`` of the classes ``keys`` (1-based) for a uint8 image, each divided by its maximum.

    With ``cam_model`` the maps are the authors' fusion ``normalise(normalise(CAM) + normalise(BAS))``.
    """
    scales = settings.scales_for(*image.shape[-2:])
    maps = multiscale_class_maps(
        class_maps_function(model, settings.source),
        normalized_image(model, image),
        keys,
        scales,
        settings.flip,
    )
    if cam_model is None:
        return normalize_maps(maps)
    cam_maps = multiscale_class_maps(
        cam_model.class_maps, normalized_image(cam_model, image), keys, scales, settings.flip
    )
    return fuse_maps(maps, cam_maps.to(maps.device))


@torch.inference_mode()
def generate_seeds(
    model: nn.Module,
    dataset: Dataset,
    out_dir: str | os.PathLike,
    settings: SeedSettings | None = None,
    cam_model: nn.Module | None = None,
    rank: int = 0,
    world_size: int = 1,
    workers: int = 0,
    progress: bool = True,
) -> RunCounts:
    """Write ``out_dir/<id>.npz`` for this rank's ids without a whole file of their labels (the keys) at
    their image's size.

    ``dataset`` yields ``{'inputs': uint8 (3, H, W), 'data_samples': {'img_id', 'cls_label', ...}}`` at
    the original size (an :class:`~wsss.data.dataset.ImageLabelDataset` without pipeline); the models
    are in eval mode on their devices. Memory stays flat: each image's maps are written and dropped.
    """
    settings = settings or SeedSettings()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if rank == 0:
        remove_stale_temporaries(out_dir)
    todo, assigned = pending_indices(
        len(dataset), lambda index: _has_seed_file(dataset, index, out_dir), rank, world_size
    )
    loader = DataLoader(Subset(dataset, todo), batch_size=1, num_workers=workers, collate_fn=single_item)
    written = 0
    for step, item in enumerate(
        tqdm(loader, total=len(todo), desc="seeds", unit="img", disable=not progress)
    ):
        if step % 20 == 0:
            follow_thread_share()
        sample = item["data_samples"]
        keys = (torch.nonzero(sample["cls_label"] > 0.5).flatten() + 1).tolist()
        maps = image_seeds(model, item["inputs"], keys, settings, cam_model)
        save_seeds(
            seed_path(out_dir, sample["img_id"]), np.asarray(keys, dtype=np.int64), maps.float().cpu().numpy()
        )
        written += 1
    return RunCounts(assigned=assigned, written=written, existing=assigned - len(todo))


def _has_seed_file(dataset: Dataset, index: int, out_dir: Path) -> bool:
    """Whether ``out_dir`` holds a whole seed file for item ``index``: its labels, maps of its image's size."""
    path = seed_path(out_dir, dataset.img_ids[index])
    return path.is_file() and is_complete_seed_file(
        path, keys=sorted(set(dataset.cls_labels[index])), size=image_size(dataset.img_paths[index])
    )


def fuse_seed_files(bas_file: Path, cam_file: Path, out_file: Path) -> None:
    """Write the authors' CAM + BAS fusion of one image's two seed files (same keys, same size) to ``out_file``.

    Seed maps are already each divided by its maximum, so this is the fusion
    ``normalise(normalise(CAM) + normalise(BAS))`` of the two localizers' multi-scale maps.
    """
    bas_keys, bas_maps = load_seeds(bas_file)
    cam_keys, cam_maps = load_seeds(cam_file)
    if not np.array_equal(bas_keys, cam_keys) or bas_maps.shape != cam_maps.shape:
        raise ValueError(
            f"{bas_file} (classes {bas_keys.tolist()}, maps {bas_maps.shape}) and {cam_file} (classes "
            f"{cam_keys.tolist()}, maps {cam_maps.shape}) do not match; fuse seeds of the same split and labels"
        )
    fused = fuse_maps(torch.from_numpy(bas_maps), torch.from_numpy(cam_maps))
    save_seeds(out_file, bas_keys, fused.numpy())


def _is_fused(image_id: str, bas_dir: Path, out_dir: Path) -> bool:
    """Whether ``out_dir`` holds a whole fused file of ``image_id``, with its BAS seeds' keys and size."""
    fused = seed_file_layout(seed_path(out_dir, image_id))
    return fused is not None and fused == seed_file_layout(seed_path(bas_dir, image_id))


def fuse_seed_folders(
    bas_dir: str | os.PathLike,
    cam_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    ids: Sequence[str],
    progress: bool = True,
) -> RunCounts:
    """Write ``out_dir/<id>.npz``, the fusion of the BAS and CAM seed files of every id that has none yet."""
    bas_dir, cam_dir, out_dir = Path(bas_dir), Path(cam_dir), Path(out_dir)
    remove_stale_temporaries(out_dir)
    todo = [image_id for image_id in ids if not _is_fused(image_id, bas_dir, out_dir)]
    for image_id in tqdm(todo, desc="fuse seeds", unit="img", disable=not progress):
        fuse_seed_files(
            seed_path(bas_dir, image_id), seed_path(cam_dir, image_id), seed_path(out_dir, image_id)
        )
    return RunCounts(assigned=len(ids), written=len(todo), existing=len(ids) - len(todo))
