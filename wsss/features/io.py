"""Feature files: one ``<id>.npz`` per image and a ``manifest.json`` per folder.

Format: ``features`` float16 ``(D, h, w)``, ``stride`` (image pixels per feature cell, an int) and
``image_size`` ``(H, W)`` of the original image; the cell ``(y, x)`` covers image pixels
``[y * stride, (y + 1) * stride)``, so ``h = ceil(H / stride)``. The manifest's settings record the
model, scales and flip; its ``feature_dim`` and ``stride`` must agree with every file.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from wsss.fileio import atomic_write, npz_read_error, require_id_files
from wsss.manifest import read_manifest

FEATURE_SUFFIX = ".npz"
FEATURE_FORMAT = "<id>.npz: features (float16 D x h x w), stride (int), image_size (H, W)"


def feature_path(features_dir: str | os.PathLike, image_id: str) -> Path:
    """The feature file of ``image_id`` inside ``features_dir``."""
    return Path(features_dir) / f"{image_id}{FEATURE_SUFFIX}"


def save_feature_file(
    path: str | os.PathLike, features: np.ndarray, stride: int, image_size: Sequence[int]
) -> None:
    """Write one image's features atomically (float16), checked to cover the image at ``stride``."""
    path = Path(path)
    features = np.asarray(features)
    height, width = (int(v) for v in image_size)
    expected = (-(-height // stride), -(-width // stride))
    if features.ndim != 3 or features.shape[1:] != expected:
        raise ValueError(
            f"{path}: features {features.shape} do not cover a {height}x{width} image at stride {stride} "
            f"(need (D, {expected[0]}, {expected[1]}))"
        )
    if not np.isfinite(features).all():
        raise ValueError(f"{path}: features hold NaN or infinite values")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, features=features.astype(np.float16), stride=np.int64(stride),
                 image_size=np.asarray([height, width], np.int64))  # fmt: skip


def read_feature_file(path: Path) -> tuple[np.ndarray, int, tuple[int, int]]:
    """``(features float32 (D, h, w), stride, (H, W))`` of one feature file; errors name the file."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: feature file not found; extract features for this image first")
    try:
        with np.load(path, allow_pickle=False) as data:
            features = data["features"].astype(np.float32)
            stride = int(data["stride"])
            size = tuple(int(v) for v in data["image_size"])
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError, TypeError, zlib.error) as err:
        raise ValueError(
            f"{path}: unreadable feature file ({npz_read_error(err)}); extract it again"
        ) from None
    if features.ndim != 3 or stride < 1 or len(size) != 2:
        raise ValueError(f"{path}: features must be (D, h, w) with a stride and an (H, W) image size")
    if not np.isfinite(features).all():
        raise ValueError(f"{path}: features hold NaN or infinite values; extract them again")
    return features, stride, size


def is_complete_feature_file(path: Path) -> bool:
    """Whether ``path`` is a whole feature file (a killed run's truncated file is not)."""
    try:
        read_feature_file(path)
    except (FileNotFoundError, ValueError):
        return False
    return True


def check_feature_ids(features_dir: Path, ids: Sequence[str], what: str = "pseudo-labelled") -> None:
    """FileNotFoundError naming how many ids have no feature file, and the first ones."""
    require_id_files(
        features_dir, ids, feature_path,
        absent="features folder not found; run tools/extract_features.py first",
        missing=f"no features for {{count}} of {{total}} {what} images (first: {{first}}); extract features for the same images",
    )  # fmt: skip


class FeatureFolder:
    """A feature folder read file by file, each file checked against the folder's manifest.

    A file whose D or stride differs from what ``manifest.json`` records was made by another model
    (or another run) and is refused with its name.
    """

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        manifest = read_manifest(self.folder)
        self.feature_dim: int | None = None
        self.stride: int | None = None
        if manifest is not None and "feature_dim" in manifest:
            self.feature_dim, self.stride = int(manifest["feature_dim"]), int(manifest["stride"])

    def read(self, image_id: str) -> tuple[np.ndarray, int, tuple[int, int]]:
        path = feature_path(self.folder, image_id)
        features, stride, size = read_feature_file(path)
        if self.feature_dim is not None and (features.shape[0], stride) != (self.feature_dim, self.stride):
            raise ValueError(
                f"{path}: D={features.shape[0]}, stride {stride} but {self.folder / 'manifest.json'} says "
                f"D={self.feature_dim}, stride {self.stride}; the folder mixes two extractions, extract into a new folder"
            )
        return features, stride, size
