"""wsss.data.shapes and tools/make_shapes.py: the procedural VOC-layout default dataset."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from wsss.cli import make_shapes
from wsss.data.classes import read_class_names
from wsss.data.label_io import read_label_png
from wsss.data.shapes import (
    SHAPES_CLASSES,
    SHAPES_CONTEXTS,
    make_shapes_dataset,
    render_sample,
    sample_rng,
)

REPO = Path(__file__).resolve().parents[1]

SEED, SIZE, N_TRAIN, N_VAL = 7, 64, 48, 16
NUM_CLASSES = len(SHAPES_CLASSES)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("shapes")
    make_shapes_dataset(root, N_TRAIN, N_VAL, SIZE, SEED, workers=1, progress=False)
    return root


def all_ids(root: Path) -> list[str]:
    lists = root / "ImageSets" / "Segmentation"
    return [line for split in ("train", "val") for line in (lists / f"{split}.txt").read_text().split()]


def test_layout_and_files_are_readable(dataset: Path) -> None:
    assert read_class_names(dataset / "class_names.txt") == SHAPES_CLASSES
    assert SHAPES_CLASSES[0] == "background" and len(SHAPES_CLASSES) == 7
    lists = dataset / "ImageSets" / "Segmentation"
    train = (lists / "train.txt").read_text().split()
    val = (lists / "val.txt").read_text().split()
    assert train == [f"shapes_train_{i:06d}" for i in range(1, N_TRAIN + 1)]
    assert val == [f"shapes_val_{i:06d}" for i in range(1, N_VAL + 1)]
    for image_id in train + val:
        with Image.open(dataset / "JPEGImages" / f"{image_id}.jpg") as image:
            assert image.format == "JPEG" and image.mode == "RGB" and image.size == (SIZE, SIZE)
        with Image.open(dataset / "SegmentationClass" / f"{image_id}.png") as label:
            assert label.mode == "P" and label.size == (SIZE, SIZE)
            palette = label.getpalette()
            values = set(np.unique(np.asarray(label)).tolist())
        assert palette[0:3] == [0, 0, 0] and palette[3:6] == [128, 0, 0] and palette[6:9] == [0, 128, 0]
        assert palette[255 * 3 : 256 * 3] == [224, 224, 192]
        assert values <= set(range(NUM_CLASSES)) | {255}
    leftovers = [p.name for p in dataset.rglob("*") if ".tmp" in p.name]
    assert leftovers == []


def test_cls_labels_agree_with_masks(dataset: Path) -> None:
    cls_labels = json.loads((dataset / "cls_labels.json").read_text())
    ids = all_ids(dataset)
    assert sorted(cls_labels) == sorted(ids)
    for image_id in ids:
        mask = read_label_png(dataset / "SegmentationClass" / f"{image_id}.png")
        present = sorted(int(v) for v in np.unique(mask) if 0 < v < 255)
        assert cls_labels[image_id] == present
        assert 1 <= len(present) <= 3


def test_boundary_ring_separates_regions_and_hugs_objects(dataset: Path) -> None:
    band_pixels = class_pixels = 0
    for image_id in all_ids(dataset):
        mask = read_label_png(dataset / "SegmentationClass" / f"{image_id}.png")
        assert (mask == 255).any(), image_id
        # Wherever two 4-neighbours hold different labels, one of them is 255.
        for a, b in ((mask[:, :-1], mask[:, 1:]), (mask[:-1, :], mask[1:, :])):
            differ = a != b
            assert np.all((a[differ] == 255) | (b[differ] == 255)), image_id
        # No stray 255: each connected blob of non-background pixels holds some class pixels.
        n_blobs, blobs = cv2.connectedComponents((mask != 0).astype(np.uint8), connectivity=8)
        for blob in range(1, n_blobs):
            assert ((mask != 255) & (blobs == blob)).any(), image_id
        band_pixels += int((mask == 255).sum())
        class_pixels += int(((mask != 0) & (mask != 255)).sum())
    assert 0.1 * class_pixels < band_pixels < 0.5 * class_pixels  # a thin ring, not a thick band


def test_same_seed_same_files_in_parallel_and_another_seed_differs(dataset: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    make_shapes_dataset(again, 10, 4, SIZE, SEED, workers=2, progress=False)
    other = tmp_path / "other"
    make_shapes_dataset(other, 10, 4, SIZE, SEED + 1, workers=1, progress=False)
    ids = all_ids(again)
    assert len(ids) == 14
    identical_to_other = 0
    for image_id in ids:
        for folder, suffix in (("SegmentationClass", ".png"), ("JPEGImages", ".jpg")):
            first = (dataset / folder / f"{image_id}{suffix}").read_bytes()
            assert (again / folder / f"{image_id}{suffix}").read_bytes() == first, image_id
        label = (dataset / "SegmentationClass" / f"{image_id}.png").read_bytes()
        identical_to_other += (other / "SegmentationClass" / f"{image_id}.png").read_bytes() == label
    assert identical_to_other == 0


def test_files_match_a_fresh_render(dataset: Path) -> None:
    for split, n in (("train", N_TRAIN), ("val", N_VAL)):
        for index in range(1, n + 1):
            image, label, _ = render_sample(sample_rng(SEED, split, index), SIZE)
            stem = f"shapes_{split}_{index:06d}"
            assert np.array_equal(read_label_png(dataset / "SegmentationClass" / f"{stem}.png"), label)
            with Image.open(dataset / "JPEGImages" / f"{stem}.jpg") as jpeg:
                decoded = np.asarray(jpeg, dtype=np.int16)
            assert np.abs(decoded - image).mean() < 5.0  # JPEG at quality 95
            again_image, again_label, _ = render_sample(sample_rng(SEED, split, index), SIZE)
            assert np.array_equal(again_image, image) and np.array_equal(again_label, label)


def test_bias_json_matches_rerendered_contexts(dataset: Path) -> None:
    bias = json.loads((dataset / "bias.json").read_text())
    assert [(c["name"], c["class"]) for c in bias["contexts"]] == [("water", "boat"), ("rails", "train")]
    contexts, classes = {}, {}
    for split, n in (("train", N_TRAIN), ("val", N_VAL)):
        for index in range(1, n + 1):
            _, _, info = render_sample(sample_rng(SEED, split, index), SIZE)
            contexts[f"shapes_{split}_{index:06d}"] = info["contexts"]
            classes[f"shapes_{split}_{index:06d}"] = info["classes"]
    assert bias["image_contexts"] == contexts
    measured = bias["measured"]["all"]
    assert measured["n_images"] == N_TRAIN + N_VAL
    for spec in SHAPES_CONTEXTS:
        k = SHAPES_CLASSES.index(spec.class_name)
        holders = [i for i in classes if k in classes[i]]
        others = [i for i in classes if k not in classes[i]]
        with_class = sum(spec.name in contexts[i] for i in holders) / len(holders)
        without = sum(spec.name in contexts[i] for i in others) / len(others)
        assert measured["context_given_class"][spec.name][spec.class_name] == pytest.approx(
            with_class, abs=1e-4
        )
        assert measured["context_without_biased_class"][spec.name] == pytest.approx(without, abs=1e-4)
        assert measured["images_per_class"][spec.class_name] == len(holders)


@pytest.fixture(scope="module")
def rendered() -> list[tuple[np.ndarray, np.ndarray, dict]]:
    return [render_sample(sample_rng(11, "train", i), 48) for i in range(1, 401)]


def test_co_occurrence_bias_is_strong(rendered: list) -> None:
    for spec in SHAPES_CONTEXTS:
        k = SHAPES_CLASSES.index(spec.class_name)
        with_class = [spec.name in info["contexts"] for _, _, info in rendered if k in info["classes"]]
        without = [spec.name in info["contexts"] for _, _, info in rendered if k not in info["classes"]]
        assert len(with_class) >= 50
        assert np.mean(with_class) >= 0.7, spec.name
        assert np.mean(without) <= 0.2, spec.name
        assert np.mean(without) > 0.0, spec.name  # a few images show the context without the class


def test_context_pixels_are_background(rendered: list) -> None:
    seen = Counter()
    background = total = 0
    for image, label, info in rendered:
        assert sorted(info["context_masks"]) == sorted(info["contexts"])
        for name, region in info["context_masks"].items():
            assert region.any()
            values = label[region]
            assert set(np.unique(values).tolist()) <= {0, 255}  # 255 only on the ring around objects
            background += int((values == 0).sum())
            total += values.size
            seen[name] += 1
        if "water" in info["context_masks"]:  # the water band is drawn blue-green
            water = image[info["context_masks"]["water"]].astype(float)
            assert water[:, 2].mean() > water[:, 0].mean()
    assert seen["water"] > 20 and seen["rails"] > 20
    assert background > 0.9 * total


def test_objects_per_image_and_on_context_placement(rendered: list) -> None:
    counts = Counter()
    for _, _, info in rendered:
        objects = info["objects"]
        assert 1 <= len(objects) <= 3
        counts[len(objects)] += 1
        assert info["classes"] == sorted({o["class_index"] for o in objects})
        for obj in objects:
            x0, y0, x1, y1 = obj["bbox"]
            assert 0 <= x0 < x1 <= 48 and 0 <= y0 < y1 <= 48
            if obj["class_name"] == "boat" and "water" in info["contexts"]:
                assert obj["on_context"] == "water"
                water_top = np.nonzero(info["context_masks"]["water"].any(axis=1))[0].min()
                assert y1 > water_top  # the keel reaches into the water
    assert counts[1] > counts[3] > 0 and counts[2] > 0


def test_colour_alone_does_not_identify_the_class(rendered: list) -> None:
    # Best hue-only classifier on the training data itself: majority class per 30-degree hue bin.
    by_bin: dict[int, Counter] = {}
    total = 0
    for _, _, info in rendered:
        for obj in info["objects"]:
            r, g, b = (c / 255.0 for c in obj["colour"])
            hue = np.degrees(np.arctan2(np.sqrt(3) * (g - b), 2 * r - g - b)) % 360
            by_bin.setdefault(int(hue // 30), Counter())[obj["class_name"]] += 1
            total += 1
    accuracy = sum(max(c.values()) for c in by_bin.values()) / total
    assert accuracy < 0.5
    assert all(len(c) >= 3 for c in by_bin.values() if sum(c.values()) >= 20)


def test_cli_writes_and_resumes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "cli"
    args = [
        "--out",
        str(out),
        "--n-train",
        "6",
        "--n-val",
        "3",
        "--size",
        "48",
        "--seed",
        "3",
        "--workers",
        "1",
    ]
    assert make_shapes.main(args) == 0
    printed = capsys.readouterr().out
    assert "wrote 9 images" in printed and "water" in printed and "rails" in printed
    assert len(list((out / "JPEGImages").glob("*.jpg"))) == 9
    assert len(list((out / "SegmentationClass").glob("*.png"))) == 9
    removed = out / "JPEGImages" / "shapes_val_000002.jpg"
    before = (out / "SegmentationClass" / "shapes_val_000002.png").read_bytes()
    removed.unlink()
    assert make_shapes.main(args) == 0
    assert "wrote 1 images (8 already present)" in capsys.readouterr().out
    assert removed.is_file()
    assert (out / "SegmentationClass" / "shapes_val_000002.png").read_bytes() == before


def test_help_explains_each_option(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        make_shapes.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--out", "--n-train", "--n-val", "--size", "--seed", "--workers", "--overwrite"):
        assert option in text


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--n-train", "0"], "--n-train must be at least 1"),
        (["--n-val", "0"], "--n-val must be at least 1"),
        (["--size", "16"], "--size must be at least 32"),
        (["--workers", "0"], "--workers must be at least 1"),
    ],
)
def test_bad_arguments_are_refused(tmp_path: Path, extra: list[str], message: str, tool_error) -> None:
    tool_error(make_shapes.main(["--out", str(tmp_path / "x"), *extra]), message)
    assert not (tmp_path / "x").exists()


def test_library_refuses_bad_values_and_foreign_folders(tool_error, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="n_val must be at least 1"):
        make_shapes_dataset(tmp_path / "a", 3, 0, 64, 0, progress=False)
    with pytest.raises(ValueError, match="at least 32"):
        render_sample(np.random.default_rng(0), 20)
    made = tmp_path / "made"
    make_shapes_dataset(made, 2, 1, 48, 0, progress=False)
    tool_error(
        make_shapes.main(
            ["--out", str(made), "--n-train", "2", "--n-val", "1", "--size", "48", "--seed", "5"]
        ),
        "--overwrite",
    )
    summary = make_shapes_dataset(made, 2, 1, 48, 5, overwrite=True, progress=False)
    assert summary["written"] == 3
    foreign = tmp_path / "voc"
    (foreign / "JPEGImages").mkdir(parents=True)
    shutil.copy(made / "JPEGImages" / "shapes_train_000001.jpg", foreign / "JPEGImages" / "2007_000032.jpg")
    with pytest.raises(ValueError, match="did not write"):
        make_shapes_dataset(foreign, 2, 1, 48, 0, progress=False)
