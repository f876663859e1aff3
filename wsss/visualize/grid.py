"""Figure grids: one row per image, one column per source (image, seeds, label folders, ground truth).

:func:`build_grid` reads the files and returns a :class:`Grid` of cells (RGB arrays at the image's
size, each with an optional caption); :func:`render_grid` lays it out as one PIL image with column
titles, row captions and a legend naming the colours. Reading and drawing are apart, so a caller can
check what a cell holds without depending on the layout.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from wsss.data.image_io import find_image, read_image
from wsss.data.label_io import BIASED_INDEX, IGNORE_INDEX, VOC_PALETTE, read_label_png
from wsss.localize.seed_io import load_seeds, seed_path
from wsss.visualize.overlay import heat_overlay, jet, label_overlay

PAD = 4
HEADER_HEIGHT = 22
CAPTION_HEIGHT = 18
LEGEND_LINE_HEIGHT = 20
FONT_SIZE = 12
BACKGROUND = (32, 32, 32)
TEXT = (235, 235, 235)
HEAT_SWATCH = "heat"

Cell = tuple[np.ndarray, str]


@dataclass
class Grid:
    """Column titles, one caption and row of cells (None: an empty cell) per image, and the label values drawn."""

    titles: list[str]
    captions: list[str] = field(default_factory=list)
    rows: list[list[Cell | None]] = field(default_factory=list)
    drawn: set[int] = field(default_factory=set)
    has_heat: bool = False


def read_checked_label(path: Path, shape: tuple[int, int], num_classes: int) -> np.ndarray:
    """A label PNG that matches the image size and the class list (254 biased and 255 ignore allowed)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: label PNG not found; every listed id needs one in this folder")
    label = read_label_png(path)
    if label.shape != shape:
        raise ValueError(
            f"{path}: label is {label.shape[1]}x{label.shape[0]} but its image is {shape[1]}x{shape[0]}; "
            "labels must be at the image's original size"
        )
    bad = sorted(
        {int(v) for v in np.unique(label) if v >= num_classes and v not in (IGNORE_INDEX, BIASED_INDEX)}
    )
    if bad:
        raise ValueError(
            f"{path}: values {bad} are not classes of the {num_classes}-class list; pass --classes"
        )
    return label


def read_checked_seeds(seeds_dir: Path, image_id: str, shape: tuple[int, int], num_classes: int):
    """``(keys, maps)`` of an image's seed file, checked against the image size and the class list."""
    path = seed_path(seeds_dir, image_id)
    keys, maps = load_seeds(path)
    if maps.shape[1:] != shape:
        raise ValueError(
            f"{path}: maps are {maps.shape[2]}x{maps.shape[1]} but the image is {shape[1]}x{shape[0]}; "
            "seeds must be at the image's original size"
        )
    if keys.size and keys.max() >= num_classes:
        raise ValueError(
            f"{path}: class {int(keys.max())} is outside the {num_classes}-class list; pass --classes"
        )
    return keys, maps


def read_heat(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """A greyscale PNG as values in [0, 1], checked against the image size."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: heat-map PNG not found; every listed id needs one in this folder")
    with Image.open(path) as image:
        heat = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
    if heat.shape != shape:
        raise ValueError(
            f"{path}: heat map is {heat.shape[1]}x{heat.shape[0]} but its image is {shape[1]}x{shape[0]}"
        )
    return heat


def _folder_titles(folders: Sequence[Path], prefix: str = "") -> list[str]:
    names = [folder.name for folder in folders]
    return [
        prefix + (folder.name if names.count(folder.name) == 1 else f"{folder.parent.name}/{folder.name}")
        for folder in folders
    ]


def build_grid(
    images_dir: str | os.PathLike,
    ids: Sequence[str],
    class_names: Sequence[str],
    seeds_dirs: Sequence[str | os.PathLike] = (),
    label_dirs: Sequence[str | os.PathLike] = (),
    gt_dir: str | os.PathLike | None = None,
    per_class: bool = False,
    heat_dirs: Sequence[str | os.PathLike] = (),
) -> Grid:
    """Read every cell of the figure: per image, its seeds (max over classes, or one cell per class with
    ``per_class`` and a single seeds folder), each heat folder (greyscale PNGs, 0..255 as 0..1, such as
    MARS's debiased scores), each label folder, and the ground truth."""
    images_dir = Path(images_dir)
    seeds_dirs, label_dirs = [Path(d) for d in seeds_dirs], [Path(d) for d in label_dirs]
    heat_dirs = [Path(d) for d in heat_dirs]
    if per_class and len(seeds_dirs) != 1:
        raise ValueError("per-class seed columns need exactly one seeds folder")
    num_classes = len(class_names)
    folders = [*label_dirs, *([Path(gt_dir)] if gt_dir is not None else [])]
    shapes, seeds = {}, {}
    for image_id in ids:
        with Image.open(find_image(images_dir, image_id)) as header:
            shapes[image_id] = (header.height, header.width)
        seeds[image_id] = [read_checked_seeds(d, image_id, shapes[image_id], num_classes) for d in seeds_dirs]
    seed_columns = max((len(s[0][0]) for s in seeds.values()), default=0) if per_class else len(seeds_dirs)
    seed_titles = (
        [f"seed {k + 1}" for k in range(seed_columns)] if per_class else _folder_titles(seeds_dirs, "seeds: ")
    )
    titles = ["image", *seed_titles, *_folder_titles(heat_dirs, "heat: "), *_folder_titles(label_dirs)] + (
        ["ground truth"] if gt_dir is not None else []
    )
    grid = Grid(titles=titles, has_heat=bool(seeds_dirs or heat_dirs))
    for image_id in ids:
        image = read_image(find_image(images_dir, image_id))
        cells: list[Cell | None] = [(image, "")]
        present: set[int] = set()
        for keys, maps in seeds[image_id]:
            present.update(int(k) for k in keys)
            if per_class:
                cells += [(heat_overlay(image, m), class_names[k]) for k, m in zip(keys, maps)]
                cells += [None] * (seed_columns - len(keys))
            else:
                heat = maps.max(axis=0) if len(keys) else np.zeros(image.shape[:2], np.float32)
                cells.append((heat_overlay(image, heat), ""))
        for folder in heat_dirs:
            cells.append((heat_overlay(image, read_heat(folder / f"{image_id}.png", image.shape[:2])), ""))
        for folder in folders:
            label = read_checked_label(folder / f"{image_id}.png", image.shape[:2], num_classes)
            values = {int(v) for v in np.unique(label)}
            grid.drawn |= values
            if folder == Path(gt_dir or "") or not seeds_dirs:
                present |= {v for v in values if 0 < v < num_classes}
            cells.append((label_overlay(image, label), ""))
        names = ", ".join(class_names[k] for k in sorted(present)) or "no classes"
        grid.captions.append(f"{image_id}: {names}")
        grid.rows.append(cells)
    return grid


def legend_entries(grid: Grid, class_names: Sequence[str]) -> list[tuple[str, object]]:
    """``(text, swatch)`` pairs: a label value's colour, or the heat colour bar of the seed maps."""
    entries: list[tuple[str, object]] = [("seed 0 .. 1", HEAT_SWATCH)] if grid.has_heat else []
    special = {IGNORE_INDEX: "ignore", BIASED_INDEX: "biased"}
    for value in sorted(grid.drawn):
        entries.append((special.get(value) or class_names[value], tuple(int(c) for c in VOC_PALETTE[value])))
    return entries


def _fit(image: np.ndarray, cell: int) -> Image.Image:
    """The image scaled so its longer side is ``cell`` pixels."""
    height, width = image.shape[:2]
    scale = cell / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return Image.fromarray(image).resize(size, Image.Resampling.BILINEAR)


def _clipped(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.FreeTypeFont, width: float) -> str:
    """``text`` shortened with an ellipsis to fit ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "...", font=font) > width:
        text = text[:-1]
    return text + "..."


def _legend_lines(
    entries, width: int, draw: ImageDraw.ImageDraw, font
) -> list[list[tuple[str, object, int]]]:
    """Entries wrapped into lines that fit ``width``; each entry with its own width."""
    lines: list[list[tuple[str, object, int]]] = [[]]
    used = PAD
    for text, swatch in entries:
        entry_width = (40 if swatch == HEAT_SWATCH else 14) + 4 + int(draw.textlength(text, font=font)) + 12
        if lines[-1] and used + entry_width > width:
            lines.append([])
            used = PAD
        lines[-1].append((text, swatch, entry_width))
        used += entry_width
    return [line for line in lines if line]


def render_grid(grid: Grid, class_names: Sequence[str], cell: int = 160) -> Image.Image:
    """The grid as one RGB image: column titles, captioned rows of cells, and the legend at the bottom."""
    font = ImageFont.load_default(size=FONT_SIZE)
    width = PAD + len(grid.titles) * (cell + PAD)
    lines = _legend_lines(
        legend_entries(grid, class_names), width, ImageDraw.Draw(Image.new("RGB", (1, 1))), font
    )
    height = (
        HEADER_HEIGHT + len(grid.rows) * (CAPTION_HEIGHT + cell + PAD) + len(lines) * LEGEND_LINE_HEIGHT + PAD
    )
    canvas = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    for column, title in enumerate(grid.titles):
        draw.text(
            (PAD + column * (cell + PAD) + 2, 4), _clipped(draw, title, font, cell - 4), fill=TEXT, font=font
        )
    y = HEADER_HEIGHT
    for caption, row in zip(grid.captions, grid.rows):
        draw.text((PAD + 2, y + 2), _clipped(draw, caption, font, width - 2 * PAD), fill=TEXT, font=font)
        y += CAPTION_HEIGHT
        for column, item in enumerate(row):
            if item is None:
                continue
            array, text = item
            tile, x = _fit(array, cell), PAD + column * (cell + PAD)
            canvas.paste(tile, (x + (cell - tile.width) // 2, y + (cell - tile.height) // 2))
            if text:
                draw.rectangle((x, y + cell - 16, x + cell - 1, y + cell - 1), fill=BACKGROUND)
                draw.text((x + 3, y + cell - 15), _clipped(draw, text, font, cell - 6), fill=TEXT, font=font)
        y += cell + PAD
    for line in lines:
        x = PAD
        for text, swatch, entry_width in line:
            if swatch == HEAT_SWATCH:
                canvas.paste(Image.fromarray(jet(np.tile(np.linspace(0, 1, 40), (12, 1)))), (x, y + 4))
            else:
                draw.rectangle((x, y + 4, x + 13, y + 15), fill=swatch, outline=TEXT)
            draw.text((x + (40 if swatch == HEAT_SWATCH else 14) + 4, y + 3), text, fill=TEXT, font=font)
            x += entry_width
        y += LEGEND_LINE_HEIGHT
    return canvas
