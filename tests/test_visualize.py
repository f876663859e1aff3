"""Figures: what each grid cell holds (the library), the overlays, and tools/visualize.py's output and errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from wsss.cli import visualize
from wsss.data.image_io import read_image
from wsss.data.label_io import BIASED_INDEX, IGNORE_INDEX, VOC_PALETTE, read_label_png
from wsss.localize.seed_io import save_seeds
from wsss.visualize.grid import build_grid, legend_entries, render_grid
from wsss.visualize.overlay import BACKGROUND_DIM, heat_overlay, label_overlay

CLASSES = ("background", "disc", "bar")


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


def train_ids(tiny_voc: Path, n: int = 3) -> list[str]:
    return (tiny_voc / "ImageSets" / "Segmentation" / "train.txt").read_text().split()[:n]


def test_label_overlay_colours_classes_and_dims_background():
    image = np.full((2, 3, 3), 200, np.uint8)
    label = np.array([[0, 1, IGNORE_INDEX], [2, BIASED_INDEX, 0]], np.uint8)
    drawn = label_overlay(image, label, alpha=0.5).astype(float)
    assert np.allclose(drawn[0, 0], 200 * BACKGROUND_DIM, atol=1)
    for (y, x), value in {(0, 1): 1, (0, 2): IGNORE_INDEX, (1, 0): 2, (1, 1): BIASED_INDEX}.items():
        assert np.allclose(drawn[y, x], 0.5 * 200 + 0.5 * VOC_PALETTE[value], atol=1)


def test_grid_cells_hold_the_image_seeds_labels_and_ground_truth(tiny_voc, seeds):
    gt = tiny_voc / "SegmentationClass"
    ids = train_ids(tiny_voc)
    grid = build_grid(tiny_voc / "JPEGImages", ids, CLASSES, [seeds], [gt], gt)
    assert grid.titles == ["image", "seeds: seeds", "SegmentationClass", "ground truth"]
    assert len(grid.rows) == 3 and all(len(row) == 4 for row in grid.rows)
    for image_id, caption, row in zip(ids, grid.captions, grid.rows):
        image = read_image(tiny_voc / "JPEGImages" / f"{image_id}.jpg")
        mask = read_label_png(gt / f"{image_id}.png")
        assert np.array_equal(row[0][0], image)
        assert np.array_equal(row[1][0], heat_overlay(image, (mask > 0).astype(np.float32)))
        assert np.array_equal(row[2][0], label_overlay(image, mask)) and np.array_equal(row[3][0], row[2][0])
        names = [CLASSES[v] for v in sorted(set(np.unique(mask)) - {0})]
        assert caption == f"{image_id}: {', '.join(names)}"
    assert grid.drawn == {0, 1, 2} and grid.has_heat
    assert [text for text, _ in legend_entries(grid, CLASSES)] == ["seed 0 .. 1", "background", "disc", "bar"]


def test_per_class_seed_columns_leave_missing_classes_empty(tiny_voc, seeds):
    ids = train_ids(tiny_voc)  # the first three train images have 2, 1 and 1 classes
    grid = build_grid(tiny_voc / "JPEGImages", ids, CLASSES, [seeds], per_class=True)
    assert grid.titles == ["image", "seed 1", "seed 2"]
    assert [cell[1] for cell in grid.rows[0][1:]] == ["disc", "bar"] and grid.rows[1][2] is None
    with pytest.raises(ValueError, match="exactly one seeds folder"):
        build_grid(tiny_voc / "JPEGImages", ids, CLASSES, [seeds, seeds], per_class=True)


def test_rendered_grid_grows_with_rows_and_columns(tiny_voc, seeds):
    gt = tiny_voc / "SegmentationClass"
    small = render_grid(
        build_grid(tiny_voc / "JPEGImages", train_ids(tiny_voc, 2), CLASSES, [seeds]), CLASSES, 64
    )
    large = render_grid(
        build_grid(tiny_voc / "JPEGImages", train_ids(tiny_voc, 3), CLASSES, [seeds], [gt], gt), CLASSES, 64
    )
    assert large.width > small.width and large.height > small.height and large.mode == "RGB"


def test_tool_writes_the_figure_and_refuses_bad_input(tiny_voc, seeds, tmp_path, capsys, tool_error):
    out = tmp_path / "figs" / "grid.png"
    args = [
        "--images",
        str(tiny_voc / "JPEGImages"),
        "--list",
        str(tiny_voc / "ImageSets" / "Segmentation" / "train.txt"),
    ]
    assert visualize.main([*args, "--seeds", str(seeds), "--gt", str(tiny_voc / "SegmentationClass"), "--n", "2",
                           "--cell", "64", "--out", str(out)]) == 0  # fmt: skip
    assert "wrote" in capsys.readouterr().out
    with Image.open(out) as figure:
        assert figure.format == "PNG" and figure.width > 3 * 64
    tool_error(visualize.main([*args, "--out", str(tmp_path / "x.png")]), "give at least one of --seeds")
    save_seeds(seeds / "tiny_001.npz", [1], np.zeros((1, 10, 10), np.float32))
    code = visualize.main([*args, "--seeds", str(seeds), "--out", str(tmp_path / "bad.png")])
    tool_error(code, r"tiny_001.npz: maps are 10x10 but the image is 48x48")
    assert not (tmp_path / "bad.png").exists()
    tool_error(
        visualize.main([*args, "--gt", str(tmp_path / "nowhere"), "--out", str(out)]),
        "--gt .*nowhere: not an existing folder",
    )


def test_heat_columns_read_greyscale_scores_and_check_their_size(tiny_voc):
    ids = train_ids(tiny_voc, 2)
    heat = tiny_voc / "scores"
    heat.mkdir()
    ramp = np.tile(np.linspace(0, 255, 48).astype(np.uint8), (48, 1))
    for image_id in ids:
        Image.fromarray(ramp).save(heat / f"{image_id}.png")
    grid = build_grid(tiny_voc / "JPEGImages", ids, CLASSES, heat_dirs=[heat])
    assert grid.titles == ["image", "heat: scores"] and grid.has_heat
    image = read_image(tiny_voc / "JPEGImages" / f"{ids[0]}.jpg")
    assert np.array_equal(grid.rows[0][1][0], heat_overlay(image, ramp.astype(np.float32) / 255.0))
    Image.fromarray(ramp[:10]).save(heat / f"{ids[1]}.png")
    with pytest.raises(ValueError, match=f"{ids[1]}.png: heat map is 48x10 but its image is 48x48"):
        build_grid(tiny_voc / "JPEGImages", ids, CLASSES, heat_dirs=[heat])
