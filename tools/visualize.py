"""Draw a grid PNG to look at seeds, pseudo labels and ground truth side by side.

One row per image (the first --n ids of --list), one column per source:
  image          the original image;
  seeds          its seed maps (<id>.npz) as a heat overlay (blue 0 .. red 1): the maximum over its
                 classes, or with --per-class one column per class, captioned with the class name;
  labels         each --labels folder of label PNGs (pseudo labels, predictions), in VOC colours over
                 the image (background dimmed, 255 ignore in cream);
  ground truth   --gt label PNGs, drawn the same way.
Each row is captioned with the image id and its classes; a legend at the bottom names the colours.
Any combination of --seeds, --labels and --gt works. The PNG is written atomically.

Example:
  python tools/visualize.py --images VOC2012/JPEGImages --list VOC2012/ImageSets/Segmentation/train.txt \\
      --seeds work_dirs/bas/seeds --labels work_dirs/bas/pseudo --gt VOC2012/SegmentationClass --out grid.png
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from wsss.data.classes import CLASS_NAMES_FILE, resolve_class_names
from wsss.data.dataset import IMAGE_SUFFIXES, read_split
from wsss.data.image_io import read_image
from wsss.data.label_io import IGNORE_INDEX, VOC_PALETTE, read_label_png
from wsss.fileio import atomic_write
from wsss.pseudo_labels.seed_io import load_seeds, seed_path

PAD = 4
HEADER_HEIGHT = 22
CAPTION_HEIGHT = 18
LEGEND_LINE_HEIGHT = 20
FONT_SIZE = 12
BACKGROUND = (32, 32, 32)
TEXT = (235, 235, 235)
LABEL_ALPHA = 0.7
HEAT_ALPHA = 0.5
BACKGROUND_DIM = 0.45


@dataclass
class Row:
    """One image's cells (RGB arrays at the image size, each with an optional caption) and its caption."""

    caption: str
    cells: list[tuple[np.ndarray, str] | None]


def jet(heat: np.ndarray) -> np.ndarray:
    """RGB jet colours ``(H, W, 3)`` of values in [0, 1]: blue 0 .. red 1."""
    levels = (np.clip(heat, 0, 1) * 255).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(levels, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)


def heat_overlay(image: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """The image blended with a jet rendering of ``heat`` (values in [0, 1])."""
    return (image * (1 - HEAT_ALPHA) + jet(heat) * HEAT_ALPHA).astype(np.uint8)


def label_overlay(image: np.ndarray, label: np.ndarray) -> np.ndarray:
    """VOC colours over the image where the label is not background; background pixels dimmed."""
    colours = VOC_PALETTE[label].astype(np.float32)
    foreground = (label != 0)[..., None]
    blended = image * (1 - LABEL_ALPHA) + colours * LABEL_ALPHA
    return np.where(foreground, blended, image * BACKGROUND_DIM).astype(np.uint8)


def find_image(images_dir: Path, image_id: str) -> Path:
    for suffix in IMAGE_SUFFIXES:
        path = images_dir / f"{image_id}{suffix}"
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"{images_dir / image_id}.jpg: image not found; point --images at the images of --list"
    )


def read_checked_label(path: Path, shape: tuple[int, int], num_classes: int) -> np.ndarray:
    """A label PNG that matches the image size and the class list."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: label PNG not found; every id of --list needs one in this folder")
    label = read_label_png(path)
    if label.shape != shape:
        raise ValueError(
            f"{path}: label is {label.shape[1]}x{label.shape[0]} but its image is {shape[1]}x{shape[0]}; "
            "labels must be at the image's original size"
        )
    bad = sorted({int(v) for v in np.unique(label) if v >= num_classes and v != IGNORE_INDEX})
    if bad:
        raise ValueError(
            f"{path}: values {bad} are not classes of the {num_classes}-class list; pass --classes"
        )
    return label


def read_checked_seeds(seeds_dir: Path, image_id: str, shape: tuple[int, int], num_classes: int):
    keys, maps = load_seeds(seed_path(seeds_dir, image_id))
    if maps.shape[1:] != shape:
        raise ValueError(
            f"{seed_path(seeds_dir, image_id)}: maps are {maps.shape[2]}x{maps.shape[1]} but the image is "
            f"{shape[1]}x{shape[0]}; seeds must be at the image's original size"
        )
    if keys.size and keys.max() >= num_classes:
        raise ValueError(
            f"{seed_path(seeds_dir, image_id)}: class {int(keys.max())} is outside the {num_classes}-class list; "
            "pass --classes"
        )
    return keys, maps


def column_titles(args: argparse.Namespace, seed_columns: int) -> list[str]:
    titles = ["image"]
    if args.seeds is not None:
        titles += ["seeds (max)"] if not args.per_class else [f"seed {k + 1}" for k in range(seed_columns)]
    names = [folder.name for folder in args.labels]
    for folder in args.labels:
        unique = names.count(folder.name) == 1
        titles.append(folder.name if unique else f"{folder.parent.name}/{folder.name}")
    if args.gt is not None:
        titles.append("ground truth")
    return titles


def build_rows(
    args: argparse.Namespace, ids: Sequence[str], class_names: Sequence[str]
) -> tuple[list[Row], set[int], int]:
    """The rows, the label values drawn in any label column (for the legend), and the number of seed columns."""
    num_classes = len(class_names)
    seeds = {}
    if args.seeds is not None:
        for image_id in ids:
            with Image.open(find_image(args.images, image_id)) as header:
                shape = (header.height, header.width)
            seeds[image_id] = read_checked_seeds(args.seeds, image_id, shape, num_classes)
    seed_columns = 0
    if args.seeds is not None:
        seed_columns = max((len(keys) for keys, _ in seeds.values()), default=0) if args.per_class else 1
    rows, drawn = [], set()
    for image_id in ids:
        image = read_image(find_image(args.images, image_id))
        shape = image.shape[:2]
        cells: list[tuple[np.ndarray, str] | None] = [(image, "")]
        present: set[int] = set()
        if args.seeds is not None:
            keys, maps = seeds.pop(image_id)
            present.update(int(k) for k in keys)
            if args.per_class:
                cells += [(heat_overlay(image, m), class_names[k]) for k, m in zip(keys, maps)]
                cells += [None] * (seed_columns - len(keys))
            else:
                heat = maps.max(axis=0) if len(keys) else np.zeros(shape, np.float32)
                cells.append((heat_overlay(image, heat), ""))
        folders = [*args.labels, *([args.gt] if args.gt is not None else [])]
        for folder in folders:
            label = read_checked_label(folder / f"{image_id}.png", shape, num_classes)
            values = {int(v) for v in np.unique(label)}
            drawn |= values
            if folder is args.gt or args.seeds is None:
                present |= {v for v in values if 0 < v < num_classes}
            cells.append((label_overlay(image, label), ""))
        names = ", ".join(class_names[k] for k in sorted(present)) or "no classes"
        rows.append(Row(f"{image_id}: {names}", cells))
    return rows, drawn, seed_columns


def fit(image: np.ndarray, cell: int) -> Image.Image:
    """The image scaled so its longer side is ``cell`` pixels."""
    height, width = image.shape[:2]
    scale = cell / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return Image.fromarray(image).resize(size, Image.Resampling.BILINEAR)


def clipped(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.FreeTypeFont, width: float) -> str:
    """``text`` shortened with an ellipsis to fit ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "...", font=font) > width:
        text = text[:-1]
    return text + "..."


def legend_entries(drawn: set[int], class_names: Sequence[str], with_heat: bool) -> list[tuple[str, object]]:
    """``(text, swatch)`` pairs: a class colour, or ``'heat'`` for the colour bar of the seed maps."""
    entries: list[tuple[str, object]] = []
    if with_heat:
        entries.append(("seed 0 .. 1", "heat"))
    for value in sorted(drawn):
        name = "ignore" if value == IGNORE_INDEX else class_names[value]
        entries.append((name, tuple(int(c) for c in VOC_PALETTE[value])))
    return entries


def legend_lines(
    entries: list[tuple[str, object]], width: int, draw: ImageDraw.ImageDraw, font: ImageFont.FreeTypeFont
) -> list[list[tuple[str, object, int]]]:
    """Entries wrapped into lines that fit ``width``; each entry with its own width."""
    lines: list[list[tuple[str, object, int]]] = [[]]
    used = PAD
    for text, swatch in entries:
        swatch_width = 40 if swatch == "heat" else 14
        entry_width = swatch_width + 4 + int(draw.textlength(text, font=font)) + 12
        if lines[-1] and used + entry_width > width:
            lines.append([])
            used = PAD
        lines[-1].append((text, swatch, entry_width))
        used += entry_width
    return [line for line in lines if line]


def grid_size(rows: int, columns: int, cell: int, legend_line_count: int) -> tuple[int, int]:
    """Width and height of the grid image."""
    width = PAD + columns * (cell + PAD)
    height = (
        HEADER_HEIGHT + rows * (CAPTION_HEIGHT + cell + PAD) + legend_line_count * LEGEND_LINE_HEIGHT + PAD
    )
    return width, height


def render(
    rows: list[Row], titles: Sequence[str], entries: list[tuple[str, object]], cell: int
) -> Image.Image:
    """The grid: column titles, the rows with their captions, and the legend wrapped to the grid width."""
    font = ImageFont.load_default(size=FONT_SIZE)
    columns = len(titles)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    width = grid_size(0, columns, cell, 0)[0]
    lines = legend_lines(entries, width, probe, font)
    canvas = Image.new("RGB", grid_size(len(rows), columns, cell, len(lines)), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    for column, title in enumerate(titles):
        x = PAD + column * (cell + PAD)
        draw.text((x + 2, 4), clipped(draw, title, font, cell - 4), fill=TEXT, font=font)
    y = HEADER_HEIGHT
    for row in rows:
        draw.text((PAD + 2, y + 2), clipped(draw, row.caption, font, width - 2 * PAD), fill=TEXT, font=font)
        y += CAPTION_HEIGHT
        for column, item in enumerate(row.cells):
            if item is None:
                continue
            array, caption = item
            tile = fit(array, cell)
            x = PAD + column * (cell + PAD)
            canvas.paste(tile, (x + (cell - tile.width) // 2, y + (cell - tile.height) // 2))
            if caption:
                draw.rectangle((x, y + cell - 16, x + cell - 1, y + cell - 1), fill=BACKGROUND)
                draw.text(
                    (x + 3, y + cell - 15), clipped(draw, caption, font, cell - 6), fill=TEXT, font=font
                )
        y += cell + PAD
    for line in lines:
        x = PAD
        for text, swatch, entry_width in line:
            if swatch == "heat":
                canvas.paste(Image.fromarray(jet(np.tile(np.linspace(0, 1, 40), (12, 1)))), (x, y + 4))
                swatch_width = 40
            else:
                draw.rectangle((x, y + 4, x + 13, y + 15), fill=swatch, outline=TEXT)
                swatch_width = 14
            draw.text((x + swatch_width + 4, y + 3), text, fill=TEXT, font=font)
            x += entry_width
        y += LEGEND_LINE_HEIGHT
    return canvas


def save_png(image: Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp:
        image.save(tmp, format="PNG")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", required=True, type=Path, help="folder of the original images <id>.jpg")
    parser.add_argument("--list", required=True, type=Path, help="split file; the first --n ids are drawn")
    parser.add_argument("--seeds", type=Path, help="folder of seed files <id>.npz")
    parser.add_argument(
        "--labels",
        type=Path,
        nargs="+",
        action="extend",
        default=[],
        metavar="DIR",
        help="one or more folders of label PNGs <id>.png (pseudo labels, predictions): a column each",
    )
    parser.add_argument("--gt", type=Path, help="folder of ground-truth label PNGs <id>.png")
    parser.add_argument("--n", type=int, default=16, help="number of images (rows), default 16")
    parser.add_argument(
        "--per-class", action="store_true", help="one seed column per class instead of the maximum"
    )
    parser.add_argument("--cell", type=int, default=160, help="size of a cell in pixels (default 160)")
    parser.add_argument(
        "--classes",
        help=f"'voc', 'coco' or a class-names file (default: {CLASS_NAMES_FILE} next to --images, else VOC)",
    )
    parser.add_argument("--out", type=Path, default=Path("grid.png"), help="output PNG (default grid.png)")
    args = parser.parse_args(argv)
    if args.seeds is None and not args.labels and args.gt is None:
        parser.error("give at least one of --seeds, --labels, --gt")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.n < 1 or args.cell < 16:
        raise SystemExit(
            f"error: --n must be at least 1 and --cell at least 16, got {args.n} and {args.cell}"
        )
    if not args.images.is_dir():
        raise SystemExit(
            f"error: --images {args.images} is not a folder; give the folder of the original images"
        )
    for name in ("seeds", "gt"):
        folder = getattr(args, name)
        if folder is not None and not folder.is_dir():
            raise SystemExit(f"error: --{name} {folder} is not a folder")
    for folder in args.labels:
        if not folder.is_dir():
            raise SystemExit(f"error: --labels {folder} is not a folder")
    try:
        class_names = resolve_class_names(args.classes, args.images.parent if args.classes is None else None)
        ids = read_split(args.list)[: args.n]
        rows, drawn, seed_columns = build_rows(args, ids, class_names)
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f"error: {err}") from None
    titles = column_titles(args, seed_columns)
    entries = legend_entries(drawn, class_names, args.seeds is not None)
    grid = render(rows, titles, entries, args.cell)
    save_png(grid, args.out)
    print(f"wrote {args.out}: {len(rows)} rows x {len(titles)} columns ({grid.width}x{grid.height} px)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
