"""tools/visualize.py: grid geometry, cell contents, column combinations and errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tools import visualize
from wsss.data.label_io import VOC_PALETTE, read_label_png
from wsss.pseudo_labels.seed_io import save_seeds

REPO = Path(__file__).resolve().parents[1]
TOOL = REPO / "tools" / "visualize.py"
CELL = 96


@pytest.fixture
def seeds(tiny_voc: Path) -> Path:
    """Seeds equal to the masks: one map per class present, 1 on the class, 0 elsewhere."""
    folder = tiny_voc / "seeds"
    for mask_path in (tiny_voc / "SegmentationClass").glob("*.png"):
        mask = read_label_png(mask_path)
        keys = [int(v) for v in np.unique(mask) if v != 0]
        save_seeds(
            folder / f"{mask_path.stem}.npz", keys, np.stack([(mask == k).astype(np.float32) for k in keys])
        )
    return folder


def draw(tiny_voc: Path, out: Path, *columns: str, n: int = 3) -> Image.Image:
    visualize.main(["--images", str(tiny_voc / "JPEGImages"),
                    "--list", str(tiny_voc / "ImageSets" / "Segmentation" / "train.txt"),
                    "--n", str(n), "--cell", str(CELL), "--out", str(out), *columns])  # fmt: skip
    with Image.open(out) as image:
        return image.convert("RGB")


def cell_origin(row: int, column: int) -> tuple[int, int]:
    """Top-left pixel (x, y) of a cell (square images fill their cell)."""
    x = visualize.PAD + column * (CELL + visualize.PAD)
    y = (
        visualize.HEADER_HEIGHT
        + row * (visualize.CAPTION_HEIGHT + CELL + visualize.PAD)
        + visualize.CAPTION_HEIGHT
    )
    return x, y


def test_grid_size_and_cells(tiny_voc, seeds, tmp_path):
    gt = tiny_voc / "SegmentationClass"
    grid = draw(tiny_voc, tmp_path / "grid.png", "--seeds", str(seeds), "--labels", str(gt), "--gt", str(gt))
    # 4 columns (image, seeds, labels, gt) of 96 px with 4 px gaps; the legend (heat bar and
    # background, disc, bar: about 320 px) fits on one line of the 404 px grid.
    assert grid.size == (4 + 4 * 100, 22 + 3 * (18 + 96 + 4) + 20 + 4)
    assert visualize.grid_size(3, 4, CELL, 1) == grid.size

    # The image cell is the image scaled to the cell.
    image = Image.open(tiny_voc / "JPEGImages" / "tiny_000.jpg").convert("RGB")
    expected = np.asarray(image.resize((CELL, CELL), Image.Resampling.BILINEAR), dtype=np.int16)
    x, y = cell_origin(0, 0)
    assert np.array_equal(np.asarray(grid, dtype=np.int16)[y : y + CELL, x : x + CELL], expected)

    # Inside a class region the gt cell is pulled towards the class's VOC colour, outside it is darkened.
    mask = read_label_png(gt / "tiny_000.png")
    big = np.asarray(Image.fromarray(mask).resize((CELL, CELL), Image.Resampling.NEAREST))
    x, y = cell_origin(0, 3)
    gt_cell = np.asarray(grid, dtype=np.float64)[y : y + CELL, x : x + CELL]
    for value in (1, 2):
        inside = big == value
        inside[1:-1, 1:-1] &= inside[:-2, 1:-1] & inside[2:, 1:-1] & inside[1:-1, :-2] & inside[1:-1, 2:]
        plain = expected[inside].mean(axis=0)
        drawn = gt_cell[inside].mean(axis=0)
        colour = VOC_PALETTE[value].astype(np.float64)
        assert np.linalg.norm(drawn - colour) < np.linalg.norm(plain - colour) - 20
    outside = big == 0
    assert gt_cell[outside].mean() < 0.6 * expected[outside].mean()


def test_column_combinations(tiny_voc, seeds, tmp_path):
    gt = str(tiny_voc / "SegmentationClass")
    no_seeds = draw(tiny_voc, tmp_path / "gt.png", "--labels", gt, gt, "--gt", gt, n=2)
    assert no_seeds.size == visualize.grid_size(2, 4, CELL, 1)
    # Per class: the first three train images have 2, 1 and 1 classes, so two seed columns.
    per_class = draw(tiny_voc, tmp_path / "per_class.png", "--seeds", str(seeds), "--per-class")
    assert per_class.size == visualize.grid_size(3, 3, CELL, 1)
    x, y = cell_origin(1, 2)  # tiny_001 has one class: its second seed cell is empty
    assert np.all(np.asarray(per_class)[y : y + CELL, x : x + CELL] == visualize.BACKGROUND)
    with pytest.raises(SystemExit):
        visualize.main(["--images", str(tiny_voc / "JPEGImages"), "--list", str(tiny_voc / "x.txt")])


def test_wrong_seed_size_names_the_file(tiny_voc, seeds, tmp_path):
    save_seeds(seeds / "tiny_001.npz", [1], np.zeros((1, 10, 10), np.float32))
    with pytest.raises(SystemExit, match=r"tiny_001.npz: maps are 10x10 but the image is 48x48"):
        draw(tiny_voc, tmp_path / "grid.png", "--seeds", str(seeds))
    assert not (tmp_path / "grid.png").exists()
