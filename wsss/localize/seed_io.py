"""Seed files: one ``<id>.npz`` per image holding the localization maps of its ground-truth classes.

Format: ``keys`` is a 1-D integer array of 1-based class indices (the image's ground-truth classes,
background excluded) and ``maps`` a float16 ``(K, H, W)`` array, one map per key, each divided by its
maximum so values lie in [0, 1], at the image's original size. Files are written compressed and
atomically (temporary name, then ``os.replace``), so a reader never sees half a file.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from wsss.fileio import atomic_write, npz_read_error, require_id_files
from wsss.manifest import check_folder_settings, write_manifest

SEED_SUFFIX = ".npz"
SEED_MANIFEST = "seeds.json"
SEED_FORMAT = "<id>.npz: keys (1-based class indices), maps (float16 K x H x W, each divided by its maximum)"
# Rounding slack allowed above 1 before a map counts as not normalised.
_NORMALISED_SLACK = 1e-3


def seed_path(seeds_dir: str | os.PathLike, image_id: str) -> Path:
    """The seed file of ``image_id`` inside ``seeds_dir``."""
    return Path(seeds_dir) / f"{image_id}{SEED_SUFFIX}"


def _as_keys(keys: Any, where: str) -> np.ndarray:
    keys = np.asarray(keys)
    if keys.ndim != 1:
        raise ValueError(f"{where}: keys must be a 1-D array of class indices, got shape {keys.shape}")
    if keys.size and not np.issubdtype(keys.dtype, np.integer):
        raise ValueError(f"{where}: keys must be integer class indices, got dtype {keys.dtype}")
    keys = keys.astype(np.int64)
    if keys.size and keys.min() < 1:
        raise ValueError(
            f"{where}: keys are 1-based class indices (background excluded), got {keys.tolist()}"
        )
    if np.unique(keys).size != keys.size:
        raise ValueError(f"{where}: keys repeat a class: {keys.tolist()}")
    return keys


def _check_maps(maps: np.ndarray, num_keys: int, where: str) -> None:
    if maps.ndim != 3:
        raise ValueError(
            f"{where}: maps must be a (K, H, W) array, got {maps.ndim} dims (shape {maps.shape})"
        )
    if maps.shape[0] != num_keys:
        raise ValueError(
            f"{where}: maps hold {maps.shape[0]} class maps but keys list {num_keys} classes; "
            "give one map per key, in the same order"
        )


def save_seeds(path: str | os.PathLike, keys: Sequence[int] | np.ndarray, maps: np.ndarray) -> None:
    """Write one image's seeds: ``keys`` (K,) 1-based classes, ``maps`` (K, H, W) in [0, 1], stored float16."""
    path = Path(path)
    keys = _as_keys(keys, str(path))
    maps = np.asarray(maps)
    _check_maps(maps, keys.size, str(path))
    if not (np.issubdtype(maps.dtype, np.floating) or np.issubdtype(maps.dtype, np.integer)):
        raise ValueError(f"{path}: maps must be numeric, got dtype {maps.dtype}")
    if maps.size:
        if not np.isfinite(maps).all():
            raise ValueError(f"{path}: maps contain NaN or infinite values")
        low, high = float(maps.min()), float(maps.max())
        if low < 0 or high > 1 + _NORMALISED_SLACK:
            raise ValueError(
                f"{path}: map values span {low:.4g}..{high:.4g}; seeds must lie in [0, 1] "
                "(apply ReLU and divide each map by its maximum)"
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, keys=keys, maps=np.clip(maps, 0, 1).astype(np.float16))


def load_seeds(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read a seed file: ``keys`` (K,) int64 and ``maps`` (K, H, W) float32; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: seed file not found; make seeds for this image first")
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, zlib.error) as err:
        raise ValueError(f"{path}: unreadable seed file ({npz_read_error(err)}); make it again") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ValueError(
            f"{path}: not an .npz archive; seeds are saved with keys and maps arrays (save_seeds)"
        )
    with data:
        missing = [name for name in ("keys", "maps") if name not in data.files]
        if missing:
            raise ValueError(
                f"{path}: seed file lacks the array(s) {', '.join(missing)} "
                f"(found: {', '.join(data.files) or 'none'}); seeds need 'keys' and 'maps'"
            )
        try:
            keys = data["keys"]
            maps = data["maps"]
        except (OSError, ValueError, zipfile.BadZipFile, EOFError, zlib.error) as err:
            raise ValueError(f"{path}: unreadable seed file ({err}); make it again") from err
    keys = _as_keys(keys, str(path))
    _check_maps(maps, keys.size, str(path))
    if not np.issubdtype(maps.dtype, np.floating):
        raise ValueError(f"{path}: maps must hold float scores, got dtype {maps.dtype}")
    maps = maps.astype(np.float32)
    if not np.isfinite(maps).all():
        raise ValueError(f"{path}: maps hold NaN or infinite values; make the seeds for this image again")
    if maps.size and (maps.min() < 0 or maps.max() > 1 + _NORMALISED_SLACK):
        raise ValueError(
            f"{path}: map values span {maps.min():.4g}..{maps.max():.4g}, outside [0, 1], so thresholds would "
            "mean nothing; write seeds with save_seeds (ReLU, each map divided by its maximum)"
        )
    return keys, maps


def list_seed_ids(seeds_dir: str | os.PathLike) -> list[str]:
    """Sorted image ids of the seed files in ``seeds_dir``; errors when the folder is missing or has none."""
    seeds_dir = Path(seeds_dir)
    if not seeds_dir.is_dir():
        raise FileNotFoundError(
            f"{seeds_dir}: seeds folder not found; give the folder of <id>{SEED_SUFFIX} files"
        )
    ids = sorted(
        entry.name[: -len(SEED_SUFFIX)]
        for entry in os.scandir(seeds_dir)
        if entry.name.endswith(SEED_SUFFIX) and not entry.name.startswith(".") and entry.is_file()
    )
    if not ids:
        raise FileNotFoundError(
            f"{seeds_dir}: seeds folder holds no <id>{SEED_SUFFIX} files; make seeds first"
        )
    return ids


def check_seeds_exist(seeds_dir: str | os.PathLike, ids: Sequence[str]) -> None:
    """Raise FileNotFoundError saying how many listed ids lack a seed file, and naming the first few."""
    require_id_files(
        seeds_dir, ids, seed_path,
        absent=f"seeds folder not found; give the folder of <id>{SEED_SUFFIX} files",
        missing="{count} of {total} listed ids have no seed file (first: {first}); make seeds for them or fix the list",
    )  # fmt: skip


def _npy_shape(stream: Any) -> tuple[int, ...]:
    """The array shape in a ``.npy`` stream's header, read without the data."""
    major, _ = np.lib.format.read_magic(stream)
    read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
    return read_header(stream)[0]


def seed_file_layout(path: str | os.PathLike) -> tuple[list[int], tuple[int, ...]] | None:
    """``(keys, maps shape)`` of a whole seed archive, else None (missing, truncated, empty, not a seed
    file). Cheap: it reads the zip directory, the keys and the maps' array header, not the maps."""
    try:
        with zipfile.ZipFile(path) as archive:
            if not {"keys.npy", "maps.npy"} <= set(archive.namelist()):
                return None
            with archive.open("keys.npy") as stream:
                keys = np.lib.format.read_array(stream)
            with archive.open("maps.npy") as stream:
                shape = _npy_shape(stream)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error):
        return None
    if keys.ndim != 1 or len(shape) != 3 or shape[0] != keys.size:
        return None
    return keys.tolist(), tuple(shape)


def is_complete_seed_file(
    path: str | os.PathLike, keys: Sequence[int] | None = None, size: tuple[int, int] | None = None
) -> bool:
    """Whether ``path`` is a whole seed file, and, when given, holds exactly ``keys`` with maps of
    ``size`` ``(H, W)``: what lets a resumed run redo the files a killed run left truncated or empty, or
    another image's file put in its place."""
    layout = seed_file_layout(path)
    if layout is None:
        return False
    stored_keys, shape = layout
    return (keys is None or stored_keys == list(keys)) and (size is None or shape[1:] == tuple(size))


def check_seed_out_dir(out_dir: str | os.PathLike, settings: dict[str, Any]) -> None:
    """ValueError unless ``out_dir`` is new, or holds seeds made with the same ``settings`` (its seeds.json)."""
    check_folder_settings(out_dir, settings, name=SEED_MANIFEST, pattern=f"*{SEED_SUFFIX}")


def write_seed_manifest(out_dir: str | os.PathLike, settings: dict[str, Any], **extra: Any) -> None:
    """Write ``out_dir/seeds.json`` atomically: the settings that decide the maps, ``extra`` facts, the format."""
    write_manifest(out_dir, settings, name=SEED_MANIFEST, **extra, format=SEED_FORMAT)
