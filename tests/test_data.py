"""Data layer: label PNGs, image loading, the VOC-layout dataset, augmentation, prepare_voc."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from wsss.data.classes import VOC_CLASSES, read_class_names, resolve_class_names, write_class_names
from wsss.data.dataset import ImageLabelDataset, wsss_collate, xml_class_indices
from wsss.data.image_io import read_image
from wsss.data.label_io import VOC_PALETTE, colorize, read_label_png, write_label_png
from wsss.data.transforms import AlbuPipeline

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def test_voc_palette_known_entries():
    assert VOC_PALETTE[0].tolist() == [0, 0, 0]
    assert VOC_PALETTE[1].tolist() == [128, 0, 0]
    assert VOC_PALETTE[2].tolist() == [0, 128, 0]
    assert VOC_PALETTE[15].tolist() == [192, 128, 128]  # person
    assert VOC_PALETTE[255].tolist() == [224, 224, 192]


def test_label_png_round_trip_read_by_pil(tmp_path):
    label = np.array([[0, 1, 2], [15, 255, 20]], dtype=np.uint8)
    path = tmp_path / "sub" / "a.png"
    write_label_png(path, label)
    with Image.open(path) as image:
        assert image.mode == "P"
        assert np.array_equal(np.asarray(image), label)
        palette = np.array(image.getpalette()[: 256 * 3]).reshape(-1, 3)
    assert palette[255].tolist() == [224, 224, 192] and palette[1].tolist() == [128, 0, 0]
    assert np.array_equal(read_label_png(path), label)
    assert [p.name for p in path.parent.iterdir()] == ["a.png"]  # no temporary left behind
    assert colorize(label)[1, 1].tolist() == [224, 224, 192]


def test_label_png_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="2-D"):
        write_label_png(tmp_path / "x.png", np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(ValueError, match="0..255"):
        write_label_png(tmp_path / "x.png", np.array([[300]]))
    Image.new("RGB", (4, 4)).save(tmp_path / "rgb.png")
    with pytest.raises(ValueError, match="rgb.png.*mode 'RGB'"):
        read_label_png(tmp_path / "rgb.png")
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize(
    ("mode", "make"),
    [
        ("L", lambda: Image.fromarray(np.full((5, 6), 100, np.uint8))),
        (
            "RGBA",
            lambda: Image.fromarray(
                np.dstack([np.full((5, 6, 3), 200, np.uint8), np.full((5, 6), 255, np.uint8)])
            ),
        ),
        ("P", lambda: Image.fromarray(np.full((5, 6), 100, np.uint8)).convert("P")),
        ("I;16", lambda: Image.fromarray(np.full((5, 6), 65535, np.uint16))),
    ],
)
def test_read_image_any_mode_gives_rgb_uint8(tmp_path, mode, make):
    image = make()
    assert image.mode == mode
    image.save(tmp_path / "img.png")
    rgb = read_image(tmp_path / "img.png")
    assert rgb.shape == (5, 6, 3) and rgb.dtype == np.uint8
    expected = {"L": 100, "RGBA": 200, "P": 100, "I;16": 255}[mode]
    assert np.all(rgb == expected)


def test_read_image_errors_name_the_file(tmp_path):
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match="broken.jpg: unreadable image"):
        read_image(tmp_path / "broken.jpg")
    with pytest.raises(FileNotFoundError, match="nope.jpg"):
        read_image(tmp_path / "nope.jpg")


def test_class_names_file_and_config_agreement(tmp_path):
    write_class_names(tmp_path / "class_names.txt", ["background", "cat", "dog"])
    assert read_class_names(tmp_path / "class_names.txt") == ("background", "cat", "dog")
    assert resolve_class_names(None, tmp_path) == ("background", "cat", "dog")
    assert resolve_class_names(None, tmp_path / "elsewhere") == VOC_CLASSES
    with pytest.raises(ValueError, match="lists 3 classes but the config gives 21"):
        resolve_class_names("voc", tmp_path)


def make_voc(root: Path, n: int = 4, size: tuple[int, int] = (40, 48), classes=("background", "cat", "dog")):
    """A tiny VOC-layout dataset: image i holds class 1 in its left half, and class 2 when i is odd."""
    (root / "JPEGImages").mkdir(parents=True)
    (root / "ImageSets" / "Segmentation").mkdir(parents=True)
    ids = [f"2008_{i:06d}" for i in range(n)]
    rng = np.random.default_rng(0)
    for i, img_id in enumerate(ids):
        Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(
            root / "JPEGImages" / f"{img_id}.jpg"
        )
        mask = np.zeros(size, np.uint8)
        mask[:, : size[1] // 2] = 1
        if i % 2:
            mask[: size[0] // 3, size[1] // 2 :] = 2
        mask[0, :] = 255
        write_label_png(root / "SegmentationClass" / f"{img_id}.png", mask)
    (root / "ImageSets" / "Segmentation" / "train.txt").write_text("\n".join(ids) + "\n")
    write_class_names(root / "class_names.txt", classes)
    return ids


def test_dataset_items_and_labels_from_masks(tmp_path):
    ids = make_voc(tmp_path)
    ds = ImageLabelDataset(tmp_path, split="train")
    assert ds.class_names == ("background", "cat", "dog") and len(ds) == 4
    assert ds.cls_labels == [[1], [1, 2], [1], [1, 2]]
    item = ds[1]
    assert item["inputs"].shape == (3, 40, 48) and item["inputs"].dtype == torch.uint8
    sample = item["data_samples"]
    assert sample["img_id"] == ids[1] and sample["ori_shape"] == (40, 48)
    assert sample["cls_label"].tolist() == [1.0, 1.0]
    assert sample["gt_seg"].dtype == torch.int64 and set(sample["gt_seg"].unique().tolist()) == {0, 1, 2, 255}
    batch = wsss_collate([ds[0], ds[1]])
    assert batch["inputs"].shape == (2, 3, 40, 48) and len(batch["data_samples"]) == 2


def test_dataset_labels_from_json_and_pipeline(tmp_path):
    ids = make_voc(tmp_path)
    (tmp_path / "cls_labels.json").write_text(json.dumps({i: [2] for i in ids}))
    pipeline = [dict(type="RandomScale", scale_range=(0.5, 0.5)), dict(type="PadCrop", size=32)]
    ds = ImageLabelDataset(tmp_path, split="train", pipeline=pipeline)
    assert ds.cls_labels == [[2]] * 4
    item = ds[0]
    assert item["inputs"].shape == (3, 32, 32)
    gt = item["data_samples"]["gt_seg"]
    assert (gt[20:, :] == 255).all() and (gt[:, 24:] == 255).all()  # 20x24 after scaling, padded with ignore


@pytest.mark.skipif(not (SHARED / "voc-sample").is_dir(), reason="../shared/datasets not present")
def test_dataset_reads_real_voc_sample():
    root = SHARED / "voc-sample"
    ds = ImageLabelDataset(root, split="train", split_dir=".", classes="voc")
    labels = {i: [VOC_CLASSES[c] for c in cls] for i, cls in zip(ds.img_ids, ds.cls_labels)}
    assert labels == {"2007_000032": ["aeroplane", "person"], "2007_000033": ["aeroplane"]}
    assert xml_class_indices(root / "Annotations" / "2007_000032.xml", VOC_CLASSES) == [1, 15]
    with pytest.raises(FileNotFoundError, match="2007_000033.xml: XML annotation not found"):
        ImageLabelDataset(root, split="train", split_dir=".", labels_from="xml")
    item = ds[ds.img_ids.index("2007_000032")]
    h, w = item["data_samples"]["ori_shape"]
    assert item["inputs"].shape == (3, h, w) and item["data_samples"]["gt_seg"].shape == (h, w)


def test_dataset_bad_input_errors(tmp_path):
    ids = make_voc(tmp_path)
    split = tmp_path / "ImageSets" / "Segmentation"
    (split / "empty.txt").write_text("\n")
    with pytest.raises(ValueError, match="empty.txt: split list is empty"):
        ImageLabelDataset(tmp_path, split="empty")
    (split / "ghost.txt").write_text("no_such_image\n")
    with pytest.raises(
        FileNotFoundError,
        match=r"JPEGImages: no image for 1 of 1 ids of split 'ghost' \(first: no_such_image\)",
    ):
        ImageLabelDataset(tmp_path, split="ghost")
    with pytest.raises(ValueError, match="lists 3 classes but the config gives 21"):
        ImageLabelDataset(tmp_path, split="train", classes="voc")

    write_label_png(tmp_path / "SegmentationClass" / f"{ids[0]}.png", np.zeros((10, 10), np.uint8))
    ds = ImageLabelDataset(tmp_path, split="train")
    with pytest.raises(ValueError, match=f"{ids[0]}.png: label is 10x10 but its image is 48x40"):
        ds[0]
    write_label_png(tmp_path / "SegmentationClass" / f"{ids[1]}.png", np.full((40, 48), 7, np.uint8))
    with pytest.raises(ValueError, match=rf"{ids[1]}.png: label values \[7\] lie outside 0..2"):
        ImageLabelDataset(tmp_path, split="train")
    (tmp_path / "JPEGImages" / f"{ids[2]}.jpg").write_bytes(b"garbage")
    with pytest.raises(ValueError, match=f"{ids[2]}.jpg: unreadable image"):
        ds[2]
    (tmp_path / "cls_labels.json").write_text(json.dumps({i: [5] for i in ids}))
    with pytest.raises(ValueError, match=r"class indices \[5\] outside 1..2"):
        ImageLabelDataset(tmp_path, split="train")


def test_pipeline_moves_maps_with_the_image():
    image = np.zeros((8, 10, 3), np.uint8)
    image[:, 5:] = 200
    mask = np.zeros((8, 10), np.uint8)
    mask[:, 5:] = 1
    maps = np.zeros((1, 8, 10), np.float32)
    maps[0, :, 5:] = 0.75
    out = AlbuPipeline([dict(type="HorizontalFlip", p=1.0), dict(type="PadCrop", size=12)])(image, mask, maps)
    assert out["image"].shape == (12, 12, 3)
    assert (out["mask"][:8, :5] == 1).all() and (out["mask"][:8, 5:10] == 0).all()
    assert (out["mask"][8:, :] == 255).all() and (out["mask"][:, 10:] == 255).all()
    assert (out["maps"][0, :8, :5] == 0.75).all() and (out["maps"][0, 8:, :] == 0).all()
    assert (out["image"][:8, :5] == 200).all()


def test_pipeline_is_reproducible_from_the_torch_seed():
    transforms = [dict(type="RandomScale", scale_range=(0.5, 2.0)), dict(type="PadCrop", size=16)]
    image = np.random.default_rng(0).integers(0, 255, (20, 24, 3), dtype=np.uint8)

    def run(seed):
        torch.manual_seed(seed)
        pipeline = AlbuPipeline(transforms)
        return [pipeline(image)["image"] for _ in range(4)]

    first, again, other = run(1), run(1), run(2)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))


def test_split_lists_in_irn_style_and_class_names_from_a_config(tmp_path):
    from wsss.data.classes import class_names_from_spec
    from wsss.data.dataset import read_split

    (tmp_path / "list.txt").write_text(
        "/JPEGImages/2007_000032.jpg /SegmentationClassAug/2007_000032.png\nimg.v2 3 5\n"
    )
    assert read_split(tmp_path / "list.txt") == ["2007_000032", "img.v2"]  # only image suffixes are cut
    make_voc(tmp_path / "data")
    config = tmp_path / "cfg.py"
    config.write_text(f"test_dataloader = dict(dataset=dict(data_root={str(tmp_path / 'data')!r}))\n")
    assert class_names_from_spec(str(config)) == ("background", "cat", "dog")
    assert class_names_from_spec("voc") == VOC_CLASSES
    with pytest.raises(FileNotFoundError, match="nope.txt: not voc, coco"):
        class_names_from_spec(str(tmp_path / "nope.txt"))
