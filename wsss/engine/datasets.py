"""Datasets built from a config's loaders, for the tools that run their own loops (seeds, testing, WSOL)."""

from __future__ import annotations

import copy
from typing import Any

from mmengine.config import Config
from mmengine.registry import DefaultScope
from torch.utils.data import Dataset

from wsss.registry import DATASETS

# Transforms that keep the whole image in view, so a map resized to the original size lines up with it.
FRAME_KEEPING = {"Resize", "LongestMaxSize", "SmallestMaxSize", "ResizeShorter"}


def loader_config(
    cfg: Config, keys: tuple[str, ...] = ("test_dataloader", "val_dataloader")
) -> dict[str, Any]:
    """A copy of the first of ``keys`` that the config has with a dataset; ValueError naming the keys."""
    for key in keys:
        loader = cfg.get(key)
        if loader and loader.get("dataset"):
            return copy.deepcopy(dict(loader))
    raise ValueError(f"{cfg.filename}: the config has no {' or '.join(keys)} with a dataset")


def build_dataset(cfg: Config, dataset_cfg: dict[str, Any]) -> Dataset:
    """Build ``dataset_cfg`` in the config's registry scope, keeping the dataset's own one-line errors."""
    with DefaultScope.overwrite_default_scope(cfg.get("default_scope", "wsss")):
        try:
            return DATASETS.build(dict(dataset_cfg))
        except TypeError as err:
            raise ValueError(
                f"{cfg.filename}: dataset {dataset_cfg.get('type')!r} cannot be built ({err})"
            ) from None


def split_dataset(
    cfg: Config,
    split: str | None = None,
    keys: tuple[str, ...] = ("test_dataloader", "val_dataloader"),
    **overrides: Any,
) -> Dataset:
    """The dataset of the first loader of ``keys`` the config has (test, else val), with ``split`` and
    any other dataset keys replaced."""
    dataset_cfg = dict(loader_config(cfg, keys)["dataset"])
    if split is not None:
        dataset_cfg["split"] = split
    dataset_cfg.update(overrides)
    return build_dataset(cfg, dataset_cfg)


def seed_dataset(
    cfg: Config, split: str, keys: tuple[str, ...] = ("test_dataloader", "val_dataloader")
) -> Dataset:
    """Original images of ``split`` with their image-level labels: no pipeline, no masks. Feature
    models, trained without validation, pass ``keys`` ending with ``train_dataloader``."""
    dataset = split_dataset(cfg, split, keys, pipeline=None, with_mask=False)
    if not hasattr(dataset, "img_ids") or not hasattr(dataset, "cls_labels"):
        raise ValueError(
            f"{cfg.filename}: dataset {type(dataset).__name__} has no image-level labels; seeds need an "
            "ImageLabelDataset"
        )
    return dataset


def wsol_loader_config(cfg: Config) -> dict[str, Any]:
    """The WSOL test loader (``wsol_test_dataloader``, else ``test_dataloader``), checked to only resize.

    Evaluation resizes maps back to the original image, where the boxes live, so the test pipeline may
    not crop or move the image.
    """
    loader = loader_config(cfg, ("wsol_test_dataloader", "test_dataloader"))
    moving = [
        step["type"] for step in loader["dataset"].get("pipeline") or [] if step["type"] not in FRAME_KEEPING
    ]
    if moving:
        raise ValueError(
            f"{cfg.filename}: the test pipeline has {', '.join(moving)}, which move the image against its boxes; "
            "evaluation resizes maps back to the original image, so the test pipeline may only resize"
        )
    return loader
