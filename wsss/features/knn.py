"""STEGO's nearest neighbours: each image's closest images by a frozen backbone's global descriptor,
found once and saved, and the training dataset that pairs every image with one of them.

Descriptor: the mean of the backbone's feature map over the image resized to ``size`` x ``size``
(DINO: the patch tokens), L2-normalised; neighbours are the top ``k`` by cosine similarity, the
image itself excluded. File: JSON ``{"k", "size", "neighbours": {id: [ids, nearest first]}}``.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset
from tqdm import tqdm

from wsss.features.base import FeatureModel
from wsss.fileio import write_json_atomic
from wsss.nn.preprocessor import normalized_image
from wsss.registry import DATASETS


@torch.inference_mode()
def global_descriptors(
    model: FeatureModel, dataset: Dataset, size: int, progress: bool = True
) -> torch.Tensor:
    """``(N, D)`` L2-normalised mean features of every image of ``dataset`` (original images, no pipeline)."""
    rows = []
    for index in tqdm(range(len(dataset)), desc="descriptors", unit="img", disable=not progress):
        image = normalized_image(model, dataset[index]["inputs"])
        resized = F.interpolate(image[None], size=(size, size), mode="bilinear", align_corners=False)
        rows.append(model.features(resized).float().mean(dim=(2, 3))[0].cpu())
    return F.normalize(torch.stack(rows), dim=1)


def nearest_neighbours(descriptors: torch.Tensor, ids: Sequence[str], k: int) -> dict[str, list[str]]:
    """Each id's ``k`` most similar other ids (cosine), nearest first."""
    if len(ids) < 2:
        raise ValueError("nearest neighbours need at least two images")
    k = min(k, len(ids) - 1)
    similarity = descriptors @ descriptors.t()
    similarity.fill_diagonal_(-float("inf"))
    top = similarity.topk(k, dim=1).indices.tolist()
    return {image_id: [ids[j] for j in row] for image_id, row in zip(ids, top)}


def save_neighbours(path: str | os.PathLike, neighbours: dict[str, list[str]], k: int, size: int) -> None:
    write_json_atomic(path, {"k": k, "size": size, "neighbours": neighbours}, indent=None)


def read_neighbours(path: str | os.PathLike) -> dict[str, list[str]]:
    """The ``neighbours`` mapping of a file written by :func:`save_neighbours`; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: neighbours file not found; make it with tools/find_neighbours.py")
    try:
        neighbours = json.loads(path.read_text(encoding="utf-8"))["neighbours"]
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise ValueError(
            f"{path}: not a neighbours file ({err}); make it with tools/find_neighbours.py"
        ) from None
    return {str(k): [str(v) for v in values] for k, values in neighbours.items()}


@DATASETS.register_module()
class NeighbourPairs(Dataset):
    """A dataset whose every item also carries one of its image's nearest neighbours, drawn at random
    among the first ``k``, as ``data_samples['pair_inputs']`` (through the same pipeline)."""

    def __init__(self, dataset: dict | Dataset, neighbours: str, k: int = 7, seed: int | None = None):
        self.dataset = DATASETS.build(dataset) if isinstance(dataset, dict) else dataset
        table = read_neighbours(neighbours)
        ids = list(self.dataset.img_ids)
        index = {image_id: i for i, image_id in enumerate(ids)}
        missing = [i for i in ids if i not in table]
        if missing:
            raise ValueError(
                f"{neighbours}: no neighbours for {len(missing)} of {len(ids)} images (first: {missing[0]}); "
                "make the file for this split"
            )
        self.partners = [
            [index[n] for n in table[i][:k] if n in index] or [position] for position, i in enumerate(ids)
        ]
        self.rng = random.Random(seed)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.dataset[index]
        partner = self.dataset[self.rng.choice(self.partners[index])]
        item["data_samples"]["pair_inputs"] = partner["inputs"]
        return item

    def __getattr__(self, name: str) -> Any:  # class names, img_ids, ... of the inner dataset
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)
