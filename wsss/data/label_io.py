"""Label PNGs in the VOC convention: palette images whose pixel values are class indices.

255 marks boundary / ignore pixels and is drawn as (224, 224, 192). A viewer that ignores the
palette shows such a PNG as almost black; the values are still right.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from wsss.fileio import atomic_write, require_id_files

IGNORE_INDEX = 255
# MARS's debiased labels mark foreground pixels it found to be biased context (rails, water) with 254.
BIASED_INDEX = 254


def voc_colormap(n: int = 256) -> np.ndarray:
    """The standard bit-interleaved PASCAL VOC colour map, ``(n, 3)`` uint8; index 255 is (224, 224, 192)."""
    cmap = np.zeros((n, 3), dtype=np.uint8)
    for i in range(n):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        cmap[i] = (r, g, b)
    return cmap


VOC_PALETTE = voc_colormap()


def write_label_png(path: str | os.PathLike, label: np.ndarray) -> None:
    """Write a 2-D array of class indices (0..254, 255 ignore) as a VOC palette PNG, atomically."""
    label = np.asarray(label)
    if label.ndim != 2:
        raise ValueError(f"{path}: a label map must be 2-D (H, W), got shape {label.shape}")
    if label.dtype != np.uint8:
        if label.size and (label.min() < 0 or label.max() > 255):
            raise ValueError(f"{path}: label values must lie in 0..255, got {label.min()}..{label.max()}")
        label = label.astype(np.uint8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(label)  # mode "L"; putpalette turns it into "P" with the same values
    image.putpalette(VOC_PALETTE.flatten().tolist())
    with atomic_write(path) as tmp:
        image.save(tmp, format="PNG")


def read_label_png(path: str | os.PathLike) -> np.ndarray:
    """Read a label PNG as a 2-D uint8 array of class indices.

    Palette ("P") and greyscale ("L") PNGs are read as their raw values; anything else (RGB colour
    masks, 16-bit) is refused, since its values are not class indices.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: label file not found")
    try:
        with Image.open(path) as image:
            if image.mode not in ("P", "L"):
                raise ValueError(
                    f"{path}: label PNG has mode {image.mode!r}; expected a palette ('P') or greyscale ('L') "
                    "image whose pixel values are class indices (convert colour masks to indices first)"
                )
            return np.array(image, dtype=np.uint8)
    except OSError as err:
        raise ValueError(f"{path}: cannot read label PNG ({err}); re-export the file") from err


def reusable_label_png(path: str | os.PathLike, shape: Sequence[int]) -> np.ndarray | None:
    """The label map in ``path`` when it is a whole label PNG of ``shape[:2]``, else None.

    What a resumed run keeps: a missing, truncated or wrongly sized file is made again.
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        label = read_label_png(path)
    except ValueError:
        return None
    return label if label.shape == tuple(shape[:2]) else None


def colorize(label: np.ndarray) -> np.ndarray:
    """RGB rendering ``(H, W, 3)`` of a label map with the VOC colours."""
    return VOC_PALETTE[np.asarray(label, dtype=np.uint8)]


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _decode_unfiltered_png(data: bytes) -> np.ndarray | None:
    """Pixel values of an 8-bit palette or greyscale, non-interlaced PNG whose rows are all stored
    unfiltered (what Pillow writes for label maps, and how the VOC label PNGs are stored), or None
    for any other PNG. Inflating the data directly is about twice as fast as going through Pillow."""
    if not data.startswith(_PNG_SIGNATURE):
        return None
    header, compressed, pos = None, [], len(_PNG_SIGNATURE)
    while pos + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        body = memoryview(data)[pos + 8 : pos + 8 + length]
        if kind == b"IHDR" and length == 13:
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            compressed.append(body)
        elif kind == b"IEND":
            break
        pos += length + 12  # length, type, body, CRC
    if header is None:
        return None
    width, height, bit_depth, colour_type, _, _, interlace = header
    if bit_depth != 8 or colour_type not in (0, 3) or interlace:
        return None
    try:
        raw = zlib.decompress(b"".join(compressed))
    except zlib.error:
        return None
    if len(raw) != height * (width + 1):
        return None
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(height, width + 1)
    if rows[:, 0].any():  # a filter byte other than 0 ("None"): leave the unfiltering to Pillow
        return None
    return rows[:, 1:]


def read_label_fast(path: Path) -> np.ndarray:
    """A label PNG as a 2-D uint8 array: the direct path when the file allows it, else ``read_label_png``
    (which also reports unreadable or non-index files). OpenCV is no shortcut here: it expands
    palette PNGs to BGR even with IMREAD_UNCHANGED."""
    try:
        labels = _decode_unfiltered_png(path.read_bytes())
    except OSError:
        labels = None
    return labels if labels is not None else read_label_png(path)


def check_labels_exist(folder: str | os.PathLike, ids: Sequence[str], what: str = "label") -> None:
    """FileNotFoundError saying how many of ``ids`` have no ``<id>.png`` in ``folder``, naming the first few."""
    require_id_files(
        folder, ids, lambda root, image_id: root / f"{image_id}.png",
        absent=f"{what} folder not found; give the folder of <id>.png files",
        missing=f"{{count}} of {{total}} {what} PNGs are missing (first: {{first}}); every listed id needs <id>.png there",
    )  # fmt: skip
