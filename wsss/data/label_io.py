"""Label PNGs in the VOC convention: palette images whose pixel values are class indices.

255 marks boundary / ignore pixels and is drawn as (224, 224, 192). A viewer that ignores the
palette shows such a PNG as almost black; the values are still right.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from wsss.fileio import atomic_write

IGNORE_INDEX = 255


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


def colorize(label: np.ndarray) -> np.ndarray:
    """RGB rendering ``(H, W, 3)`` of a label map with the VOC colours."""
    return VOC_PALETTE[np.asarray(label, dtype=np.uint8)]
