"""Multi-scale + flip feature extraction, one ``<id>.npz`` per image (format: :mod:`wsss.features.io`).

Each scale's input is the image resized by that factor and padded at the bottom and right to a
multiple of the model's stride (a ViT needs whole patches); the valid cells are resampled onto the
image's own grid at the model's stride (``ceil(H / stride) x ceil(W / stride)``, the scale-1.0 grid
of the MARS authors' convention) and averaged with the flipped input's flipped-back features.
``base_size`` first brings the image's shorter side to the size the model was trained at.

The loop streams like seed generation: each file is written as soon as it is made, and a rank
takes its share of the whole list before finished files are skipped.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm import tqdm

from wsss.engine.per_image import RunCounts, pending_indices, single_item
from wsss.features.base import FeatureModel
from wsss.features.io import feature_path, is_complete_feature_file, save_feature_file
from wsss.fileio import remove_stale_temporaries
from wsss.nn.preprocessor import normalized_image
from wsss.parallel import follow_thread_share

DEFAULT_FEATURE_SCALES = (1.0, 0.5, 1.5, 2.0)


@dataclass(frozen=True)
class ExtractionSettings:
    """Test scales, horizontal flips, and the shorter side the scales apply to (None: the image's own)."""

    scales: tuple[float, ...] = DEFAULT_FEATURE_SCALES
    flip: bool = True
    base_size: int | None = None


def check_feature_model(model: object, where: str) -> FeatureModel:
    """``model`` if it is a feature model, else a ValueError naming ``where`` (the config)."""
    if not isinstance(model, FeatureModel):
        raise ValueError(
            f"{where}: builds a {type(model).__name__}, not a feature model; give a config of configs/features/"
        )
    return model


@torch.no_grad()
def multiscale_features(
    model: FeatureModel, image: torch.Tensor, settings: ExtractionSettings
) -> torch.Tensor:
    """``(D, ceil(H / s), ceil(W / s))`` features of one normalised image ``(3, H, W)``, s = model stride."""
    height, width = image.shape[-2:]
    stride = model.stride
    grid = (math.ceil(height / stride), math.ceil(width / stride))
    factor = 1.0 if settings.base_size is None else settings.base_size / min(height, width)
    total = None
    for scale in settings.scales:
        size = (max(stride, round(height * scale * factor)), max(stride, round(width * scale * factor)))
        scaled = F.interpolate(image[None], size=size, mode="bilinear", align_corners=False)
        padded = F.pad(scaled, (0, -size[1] % stride, 0, -size[0] % stride))
        batch = torch.cat([padded, padded.flip(-1)]) if settings.flip else padded
        features = model.features(batch).float()
        if features.shape[-2:] != (padded.shape[-2] // stride, padded.shape[-1] // stride):
            raise ValueError(
                f"{type(model).__name__} gave a {tuple(features.shape[-2:])} grid for a {tuple(padded.shape[-2:])} "
                f"input; a feature model must give one cell per {stride} pixels"
            )
        if settings.flip:
            features = features[0:1] + features[1:2].flip(-1)
        resampled = F.interpolate(features, size=grid, mode="bilinear", align_corners=False)[0]
        total = resampled if total is None else total + resampled
    return total / (len(settings.scales) * (2 if settings.flip else 1))


@torch.inference_mode()
def extract_features(
    model: FeatureModel,
    dataset: Dataset,
    out_dir: str | os.PathLike,
    settings: ExtractionSettings | None = None,
    rank: int = 0,
    world_size: int = 1,
    workers: int = 0,
    progress: bool = True,
) -> RunCounts:
    """Write ``out_dir/<id>.npz`` for this rank's ids that have no whole file yet.

    ``dataset`` yields ``{'inputs': uint8 (3, H, W), 'data_samples': {'img_id', ...}}`` at the
    original size; the model is in eval mode on its device.
    """
    settings = settings or ExtractionSettings()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if rank == 0:
        remove_stale_temporaries(out_dir)
    ids = list(dataset.img_ids)
    todo, assigned = pending_indices(
        len(ids), lambda index: is_complete_feature_file(feature_path(out_dir, ids[index])), rank, world_size
    )
    loader = DataLoader(Subset(dataset, todo), batch_size=1, num_workers=workers, collate_fn=single_item)
    for step, item in enumerate(
        tqdm(loader, total=len(todo), desc="features", unit="img", disable=not progress)
    ):
        if step % 20 == 0:
            follow_thread_share()
        image_id = item["data_samples"]["img_id"]
        height, width = item["inputs"].shape[-2:]
        if min(height, width) < model.stride:
            raise ValueError(
                f"image {image_id!r} is {width}x{height}, smaller than one feature cell ({model.stride} px); "
                "drop it from the split or upscale it"
            )
        features = multiscale_features(model, normalized_image(model, item["inputs"]), settings)
        save_feature_file(
            feature_path(out_dir, image_id), features.cpu().numpy(), model.stride, (height, width)
        )
    return RunCounts(assigned=assigned, written=len(todo), existing=assigned - len(todo))
