"""Atomic file writes: a reader (or a resumed run) never sees half a file.

Every writer of the toolkit goes through these: text, JSON and images are written to a temporary
sibling (same folder, same suffix) and renamed onto the target, which is atomic on one file system.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from wsss.parallel import process_alive

TMP_MARK = ".tmp"


def atomic_path(path: str | os.PathLike) -> Path:
    """A temporary sibling of ``path`` to write to before renaming onto it (same folder, same suffix)."""
    path = Path(path)
    return path.with_name(f".{path.stem}.{os.getpid()}{TMP_MARK}{path.suffix}")


@contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write; it replaces ``path`` when the block succeeds and is removed if not.

    The folder of ``path`` is created when missing.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = atomic_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def remove_stale_temporaries(folder: str | os.PathLike) -> int:
    """Delete temporary files a killed run left in ``folder`` (``.<name>.<pid>.tmp.<suffix>``); returns the count.

    Only files whose writer process is gone are removed, so a writer running beside this one keeps its own.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    removed = 0
    for entry in os.scandir(folder):
        name = entry.name
        if not (name.startswith(".") and TMP_MARK in name and entry.is_file()):
            continue
        pid_text = name[1:].rsplit(TMP_MARK, 1)[0].rsplit(".", 1)[-1]
        if pid_text.isdigit() and process_alive(int(pid_text)):
            continue
        Path(entry.path).unlink(missing_ok=True)
        removed += 1
    return removed


def first_items(items: Iterable[Any], limit: int = 5) -> str:
    """The first ``limit`` items joined by commas, with ", ..." when there are more: how errors list many ids."""
    items = [str(item) for item in items]
    return ", ".join(items[:limit]) + (", ..." if len(items) > limit else "")


def require_id_files(
    folder: str | os.PathLike,
    ids: Sequence[str],
    path_of: Callable[[Path, str], Path],
    absent: str,
    missing: str,
) -> None:
    """FileNotFoundError unless ``folder`` holds ``path_of(folder, id)`` for every id.

    A missing folder raises ``"<folder>: <absent>"``; missing files raise ``"<folder>: <missing>"`` with
    ``{count}``, ``{total}`` and ``{first}`` (the first ids, see :func:`first_items`) filled in.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: {absent}")
    lacking = [image_id for image_id in ids if not path_of(folder, image_id).is_file()]
    if lacking:
        message = missing.format(count=len(lacking), total=len(ids), first=first_items(lacking))
        raise FileNotFoundError(f"{folder}: {message}")


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes (hex, first 16 digits): what tells two files apart that share a path."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()[:16]


def read_text_file(path: str | os.PathLike, what: str, fix: str) -> str:
    """A UTF-8 text file's contents (a byte-order mark dropped); a missing or non-UTF-8 file is one error
    naming it, ``what`` it is and the ``fix``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {what} not found; {fix}")
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not a UTF-8 text file ({err.reason} at byte {err.start}); {fix}") from None


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_write(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(path: str | os.PathLike, data: Any, indent: int | None = 2) -> None:
    """Write ``data`` as JSON to ``path`` atomically; NaN is refused (write None instead)."""
    write_text_atomic(path, json.dumps(data, indent=indent, allow_nan=False) + "\n")


def save_jpeg_atomic(
    path: str | os.PathLike, image: np.ndarray | Image.Image, quality: int = 95, comment: str | None = None
) -> None:
    """Write an RGB image to a JPEG atomically, without chroma subsampling; ``comment`` goes into its COM segment."""
    if not isinstance(image, Image.Image):
        image = Image.fromarray(np.asarray(image))
    extra = {} if comment is None else {"comment": comment.encode("utf-8")}
    with atomic_write(path) as tmp:
        image.save(tmp, format="JPEG", quality=quality, subsampling=0, **extra)


def save_png_atomic(path: str | os.PathLike, image: np.ndarray | Image.Image) -> None:
    """Write an RGB (or greyscale) image, as an array or a PIL image, to a PNG atomically."""
    if not isinstance(image, Image.Image):
        image = Image.fromarray(np.asarray(image))
    with atomic_write(path) as tmp:
        image.save(tmp, format="PNG")


def npz_read_error(err: BaseException) -> str:
    """Why ``np.load`` failed, without numpy's advice to unpickle a file that is neither .npz nor .npy."""
    if isinstance(err, ValueError) and "pickled" in str(err):
        return "neither an .npz archive nor an .npy array"
    return str(err) or type(err).__name__
