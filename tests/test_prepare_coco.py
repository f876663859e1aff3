"""tools/prepare_coco.py: COCO instances json -> VOC-layout label PNGs, lists and image-level labels."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pycocotools.mask as mask_utils
import pytest
from PIL import Image

from wsss.cli import prepare_coco
from wsss.data.classes import COCO_CLASSES, read_class_names
from wsss.data.label_io import read_label_png

REPO = Path(__file__).resolve().parents[1]
TOOL = REPO / "tools" / "prepare_coco.py"
COCO_MINI = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "coco-mini"


H, W = 30, 40
# Raw ids 1, 5, 90 -> indices 1, 2, 3 (listed out of order on purpose).
CATEGORIES = [
    {"id": 90, "name": "toothbrush", "supercategory": "indoor"},
    {"id": 1, "name": "person", "supercategory": "person"},
    {"id": 5, "name": "airplane", "supercategory": "vehicle"},
]


def box_mask(top: int, bottom: int, left: int, right: int) -> np.ndarray:
    """A (H, W) uint8 mask with rows top..bottom-1 and columns left..right-1 set."""
    mask = np.zeros((H, W), dtype=np.uint8)
    mask[top:bottom, left:right] = 1
    return mask


def uncompressed_rle(mask: np.ndarray) -> dict:
    """COCO uncompressed RLE written out by hand: column-major run lengths, starting with a run of zeros."""
    flat = mask.flatten(order="F").tolist()
    counts, current, run = [], 0, 0
    for value in flat:
        if value == current:
            run += 1
        else:
            counts.append(run)
            current, run = value, 1
    counts.append(run)
    return {"size": [H, W], "counts": counts}


def compressed_rle(mask: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(mask))
    return {"size": rle["size"], "counts": rle["counts"].decode("ascii")}


def annotation(ann_id: int, image_id: int, category_id: int, segmentation, iscrowd: int = 0) -> dict:
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": category_id,
        "segmentation": segmentation,
        "iscrowd": iscrowd,
        "area": 0.0,  # deliberately wrong: the painter must rely on the masks, not on this field
        "bbox": [0, 0, 1, 1],
    }


def write_json(path: Path, images: list[dict], annotations: list[dict]) -> Path:
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": CATEGORIES}))
    return path


@pytest.fixture()
def coco(tmp_path: Path) -> dict:
    """Train json: image a (four objects), b (none), c (only a degenerate polygon); val json: image d."""
    images_dir = tmp_path / "images"
    images_dir.mkdir()
    for name in ("a.jpg", "b.jpg", "c.jpg", "d.jpg"):
        Image.new("RGB", (W, H), (90, 120, 30)).save(images_dir / name)
    train_images = [
        {"id": 10, "file_name": "a.jpg", "height": H, "width": W},
        {"id": 20, "file_name": "b.jpg", "height": H, "width": W},
        {"id": 30, "file_name": "c.jpg", "height": H, "width": W},
    ]
    train_annotations = [
        # Small square (compressed RLE, toothbrush=3) listed before the big polygon it lies on, so
        # painting in file order would hide it; area order must put it on top.
        annotation(1, 10, 90, compressed_rle(box_mask(8, 13, 10, 15))),
        # Big polygon (airplane=2): rows/cols 2..20 x 2..30.
        annotation(2, 10, 5, [[2, 2, 30, 2, 30, 20, 2, 20]]),
        # Crowd region (person=1), uncompressed RLE, rows 15..27, cols 25..37: overlaps the polygon's corner.
        annotation(3, 10, 1, uncompressed_rle(box_mask(15, 28, 25, 38)), iscrowd=1),
        # Tiny polygon (toothbrush=3) inside the crowd region only.
        annotation(4, 10, 90, [[32, 23, 36, 23, 36, 27, 32, 27]]),
        # Image c: a polygon of two points covers no pixel.
        annotation(5, 30, 1, [[5, 5, 9, 9]]),
    ]
    val_images = [{"id": 40, "file_name": "d.jpg", "height": H, "width": W}]
    val_annotations = [annotation(6, 40, 5, [[4, 4, 20, 4, 20, 20, 4, 20]])]
    return {
        "images": images_dir,
        "train": write_json(tmp_path / "instances_train2014.json", train_images, train_annotations),
        "val": write_json(tmp_path / "instances_val2014.json", val_images, val_annotations),
        "out": tmp_path / "out",
    }


def run(coco: dict, split: str = "train", *extra: str, out: Path | None = None) -> Path:
    out = out or coco["out"]
    assert (
        prepare_coco.main(
            ["--ann", str(coco[split]), "--images", str(coco["images"]), "--out", str(out), *extra]
        )
        == 0
    )
    return out


# (row, col) -> expected value under each crowd policy.
PIXELS = {
    (5, 5): (2, 2),  # polygon only
    (10, 12): (3, 3),  # small square on the polygon: smaller wins
    (18, 28): (1, 255),  # crowd over the polygon: crowd is smaller; ignore wins when ignored
    (25, 34): (3, 255),  # tiny polygon inside the crowd: on top under 'class', ignored under 'ignore'
    (25, 27): (1, 255),  # crowd only
    (0, 0): (0, 0),
    (28, 5): (0, 0),
    (22, 15): (0, 0),
}


@pytest.mark.parametrize("crowd", ["class", "ignore"])
def test_pixels_follow_area_order_and_crowd_policy(coco: dict, crowd: str) -> None:
    out = run(coco, "train", "--crowd", crowd)
    label = read_label_png(out / "SegmentationClass" / "a.png")
    assert label.shape == (H, W)
    column = 0 if crowd == "class" else 1
    for (row, col), expected in PIXELS.items():
        assert label[row, col] == expected[column], (row, col)
    values = set(np.unique(label).tolist())
    assert values == ({0, 1, 2, 3} if crowd == "class" else {0, 2, 3, 255})
    # Image-level labels hold the crowd class under both policies.
    assert json.loads((out / "cls_labels.json").read_text()) == {"a": [1, 2, 3]}


def test_outputs_layout_palette_and_names(coco: dict) -> None:
    out = run(coco)
    assert (out / "ImageSets" / "Segmentation" / "train2014.txt").read_text() == "a\n"
    assert sorted(p.name for p in (out / "SegmentationClass").iterdir()) == ["a.png"]
    assert read_class_names(out / "class_names.txt") == ("background", "person", "airplane", "toothbrush")
    with Image.open(out / "SegmentationClass" / "a.png") as image:
        assert image.mode == "P"
        assert image.getpalette()[3:9] == [128, 0, 0, 0, 128, 0]
        assert np.asarray(image)[10, 12] == 3
    link = out / "JPEGImages"
    assert link.is_symlink() and link.resolve() == coco["images"].resolve()


def test_keep_empty_lists_all_background_images(coco: dict) -> None:
    out = run(coco, "train", "--keep-empty")
    assert (out / "ImageSets" / "Segmentation" / "train2014.txt").read_text().split() == ["a", "b", "c"]
    for stem in ("b", "c"):
        label = read_label_png(out / "SegmentationClass" / f"{stem}.png")
        assert label.shape == (H, W) and not label.any()
    assert json.loads((out / "cls_labels.json").read_text()) == {"a": [1, 2, 3], "b": [], "c": []}


def test_rerun_rewrites_nothing_and_repairs_bad_png(coco: dict) -> None:
    out = run(coco)
    files = [p for p in out.rglob("*") if p.is_file() and not p.is_symlink()]
    assert len(files) == 4  # PNG, split list, class names, cls labels
    before = {p: p.stat().st_mtime_ns for p in files}
    run(coco)
    assert {p: p.stat().st_mtime_ns for p in files} == before

    png = out / "SegmentationClass" / "a.png"
    Image.new("P", (5, 5)).save(png)  # wrong size: a rerun must repaint it
    run(coco)
    assert read_label_png(png).shape == (H, W) and read_label_png(png)[10, 12] == 3


def test_two_workers_match_one(coco: dict, tmp_path: Path) -> None:
    one = run(coco, "train", "--keep-empty", out=tmp_path / "one")
    two = run(coco, "train", "--keep-empty", "--workers", "2", out=tmp_path / "two")
    for stem in ("a", "b", "c"):
        first = read_label_png(one / "SegmentationClass" / f"{stem}.png")
        np.testing.assert_array_equal(first, read_label_png(two / "SegmentationClass" / f"{stem}.png"))
    for name in ("cls_labels.json", "class_names.txt", "ImageSets/Segmentation/train2014.txt"):
        assert (one / name).read_text() == (two / name).read_text()


def test_train_and_val_merge_into_one_folder(
    coco: dict, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run(coco, "train")
    other_images = tmp_path / "val_images"
    other_images.mkdir()
    (other_images / "d.jpg").write_bytes((coco["images"] / "d.jpg").read_bytes())
    prepare_coco.main(["--ann", str(coco["val"]), "--images", str(other_images), "--out", str(coco["out"])])
    out = coco["out"]
    assert (out / "JPEGImages").resolve() == coco["images"].resolve()  # left as it was
    assert (out / "train2014").resolve() == coco["images"].resolve()
    assert (out / "val2014").resolve() == other_images.resolve()  # each split reaches its own images
    (out / "val2014").unlink()
    (out / "val2014").symlink_to(coco["images"])
    with caplog.at_level(logging.WARNING):
        prepare_coco.main(
            ["--ann", str(coco["val"]), "--images", str(other_images), "--out", str(coco["out"])]
        )
    assert any("val2014 already exists" in record.getMessage() for record in caplog.records)
    assert (out / "ImageSets" / "Segmentation" / "train2014.txt").read_text() == "a\n"
    assert (out / "ImageSets" / "Segmentation" / "val2014.txt").read_text() == "d\n"
    assert json.loads((out / "cls_labels.json").read_text()) == {"a": [1, 2, 3], "d": [2]}
    assert read_label_png(out / "SegmentationClass" / "d.png")[10, 10] == 2


def test_clear_errors(tool_error, coco: dict, tmp_path: Path) -> None:
    missing = tmp_path / "instances_missing.json"
    tool_error(
        prepare_coco.main(
            ["--ann", str(missing), "--images", str(coco["images"]), "--out", str(coco["out"])]
        ),
        f"error: {missing}: annotation file not found",
    )
    captions = tmp_path / "captions_train2014.json"
    captions.write_text(json.dumps({"images": [], "annotations": []}))
    tool_error(
        prepare_coco.main(
            ["--ann", str(captions), "--images", str(coco["images"]), "--out", str(coco["out"])]
        ),
        "not a COCO instances file.*'categories'",
    )
    nowhere = tmp_path / "no_images"
    tool_error(
        prepare_coco.main(["--ann", str(coco["train"]), "--images", str(nowhere), "--out", str(coco["out"])]),
        f"error: {nowhere}: images folder not found",
    )
    assert not coco["out"].exists()
    bad_rle = {"size": [H + 1, W], "counts": [0, 5]}
    broken = write_json(
        tmp_path / "instances_broken.json",
        [{"id": 1, "file_name": "a.jpg", "height": H, "width": W}],
        [annotation(7, 1, 1, bad_rle)],
    )
    tool_error(
        prepare_coco.main(["--ann", str(broken), "--images", str(coco["images"]), "--out", str(coco["out"])]),
        f"error: {broken}: annotation 7: RLE size",
    )


def test_help_states_the_crowd_policy() -> None:
    result = subprocess.run([sys.executable, str(TOOL), "--help"], capture_output=True, text=True, check=True)
    assert "--crowd" in result.stdout and "ignore wins" in result.stdout and "--keep-empty" in result.stdout


def test_real_coco_mini(tmp_path: Path) -> None:
    ann_path = COCO_MINI / "annotations" / "instances_train2017.json"
    if not ann_path.is_file():
        pytest.skip("shared/datasets/coco-mini is not available")
    out = tmp_path / "coco"
    assert (
        prepare_coco.main(
            [
                "--ann",
                str(ann_path),
                "--images",
                str(COCO_MINI / "train2017"),
                "--out",
                str(out),
                "--workers",
                "2",
            ]
        )
        == 0
    )
    data = json.loads(ann_path.read_text())
    index_of = {cid: i + 1 for i, cid in enumerate(sorted(c["id"] for c in data["categories"]))}
    by_image: dict[int, list[dict]] = {}
    for ann in data["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    annotated = {
        image["file_name"].rsplit(".", 1)[0]: image for image in data["images"] if image["id"] in by_image
    }

    listed = (out / "ImageSets" / "Segmentation" / "train2017.txt").read_text().split()
    assert sorted(listed) == sorted(annotated) and len(listed) == len(annotated)
    assert read_class_names(out / "class_names.txt") == COCO_CLASSES
    cls_labels = json.loads((out / "cls_labels.json").read_text())
    checked_objects = 0
    for stem in listed:
        image = annotated[stem]
        label = read_label_png(out / "SegmentationClass" / f"{stem}.png")
        with Image.open(COCO_MINI / "train2017" / image["file_name"]) as jpg:
            assert label.shape == (jpg.height, jpg.width) == (image["height"], image["width"])
        values = np.unique(label)
        assert values.min() >= 0 and values[values != 255].max() <= 80
        anns = by_image[image["id"]]
        assert cls_labels[stem] == sorted({index_of[a["category_id"]] for a in anns})

        # Independent expectation: each pixel shows the class of the smallest mask covering it.
        h, w = image["height"], image["width"]
        masks = []
        for ann in anns:
            seg = ann["segmentation"]
            if isinstance(seg, list):
                rle = mask_utils.merge(mask_utils.frPyObjects(seg, h, w))
            else:
                rle = mask_utils.frPyObjects(seg, h, w) if isinstance(seg["counts"], list) else seg
            masks.append(mask_utils.decode(rle).astype(bool))
        areas = np.array([m.sum() for m in masks], dtype=np.int32)
        stack = np.stack(masks)
        covering_area = np.where(stack, areas[:, None, None], np.iinfo(np.int32).max)
        least = covering_area.min(axis=0)
        classes = np.array([index_of[a["category_id"]] for a in anns])
        covered = stack.any(axis=0)
        expected = np.where(covered, classes[covering_area.argmin(axis=0)], 0)
        unambiguous = ~covered | ((covering_area == least).sum(axis=0) == 1)  # equal areas would tie
        np.testing.assert_array_equal(label[unambiguous], expected[unambiguous], err_msg=stem)

        # The brief's spot check: a pixel strictly inside the smallest object shows its class.
        smallest = int(np.argmin(areas))
        mask = masks[smallest]
        interior = mask.copy()  # pixels whose 4-neighbours are inside the mask too
        interior[1:, :] &= mask[:-1, :]
        interior[:-1, :] &= mask[1:, :]
        interior[:, 1:] &= mask[:, :-1]
        interior[:, :-1] &= mask[:, 1:]
        others_as_small = [m for i, m in enumerate(masks) if i != smallest and areas[i] <= areas[smallest]]
        for other in others_as_small:
            interior &= ~other
        rows, cols = np.nonzero(interior)
        if len(rows):
            middle = len(rows) // 2
            assert label[rows[middle], cols[middle]] == index_of[anns[smallest]["category_id"]], stem
            checked_objects += 1
    assert checked_objects >= 40
