"""tools/prepare_voc.py on a fake devkit (with a fake SBD release) built by the test."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image
from scipy.io import savemat

from wsss.data.label_io import read_label_png, write_label_png
from wsss.data.voc_prepare import prepare_voc

XML = "<annotation>{}</annotation>"
OBJ = "<object><name>{}</name><difficult>0</difficult></object>"


def make_devkit(root, train, val, extra_images, names):
    voc = root / "VOCdevkit" / "VOC2012"
    for sub in ("JPEGImages", "Annotations", "SegmentationClass", "ImageSets/Segmentation"):
        (voc / sub).mkdir(parents=True)
    for img_id in train + val + extra_images:
        Image.new("RGB", (6, 4)).save(voc / "JPEGImages" / f"{img_id}.jpg")
        objs = "".join(OBJ.format(n) for n in names.get(img_id, ["cat"]))
        (voc / "Annotations" / f"{img_id}.xml").write_text(XML.format(objs))
    for img_id in train + val:
        write_label_png(voc / "SegmentationClass" / f"{img_id}.png", np.ones((4, 6), np.uint8))
    (voc / "ImageSets/Segmentation/train.txt").write_text("\n".join(train) + "\n")
    (voc / "ImageSets/Segmentation/val.txt").write_text("\n".join(val) + "\n")
    return voc


def make_sbd(root, train, val):
    sbd = root / "benchmark_RELEASE" / "dataset"
    (sbd / "cls").mkdir(parents=True)
    for img_id in train + val:
        seg = np.full((4, 6), 8, np.uint8)
        savemat(sbd / "cls" / f"{img_id}.mat", {"GTcls": {"Segmentation": seg}})
    (sbd / "train.txt").write_text("\n".join(train) + "\n")
    (sbd / "val.txt").write_text("\n".join(val) + "\n")
    return sbd.parent


def test_prepare_voc_with_sbd_writes_train_aug_labels_and_masks(tmp_path):
    train, val = ["2007_000001", "2007_000002"], ["2007_000003"]
    names = {"2007_000001": ["aeroplane", "person", "person"], "2008_000010": ["cat", "dog"]}
    voc = make_devkit(tmp_path, train, val, ["2008_000010", "2008_000011"], names)
    # SBD holds a VOC val image (must be left out of train_aug) and a VOC train image.
    sbd = make_sbd(tmp_path, ["2008_000010", "2007_000003"], ["2008_000011", "2007_000001"])
    report = prepare_voc(tmp_path / "VOCdevkit", sbd)
    assert not report.fatal and not report.missing
    train_aug = (voc / "ImageSets/Segmentation/train_aug.txt").read_text().split()
    assert train_aug == ["2007_000001", "2007_000002", "2008_000010", "2008_000011"]
    labels = json.loads((voc / "cls_labels.json").read_text())
    assert (
        labels["2007_000001"] == [1, 15] and labels["2008_000010"] == [8, 12] and labels["2007_000003"] == [8]
    )
    assert (voc / "class_names.txt").read_text().splitlines()[20] == "tvmonitor"
    aug = voc / "SegmentationClassAug"
    assert np.all(read_label_png(aug / "2008_000010.png") == 8)  # from SBD
    assert np.all(read_label_png(aug / "2007_000002.png") == 1)  # VOC's own, SBD has none
    # Resumable: a second run rewrites no mask.
    stamp = (aug / "2008_000010.png").stat().st_mtime_ns
    prepare_voc(voc, sbd)
    assert (aug / "2008_000010.png").stat().st_mtime_ns == stamp


def test_prepare_voc_reports_missing_files_instead_of_crashing(tmp_path, capsys):
    from wsss.cli.prepare_voc import main

    voc = make_devkit(tmp_path, ["2007_000001", "2007_000002"], ["2007_000003"], [], {})
    (voc / "JPEGImages" / "2007_000002.jpg").unlink()
    (voc / "SegmentationClass" / "2007_000001.png").unlink()
    code = main(["--devkit", str(voc)])
    out = capsys.readouterr().out
    assert code == 1  # no SBD and no SegmentationClassAug: train_aug cannot be made
    assert "MISSING JPEGImages for train/val ids: 1 (first: 2007_000002)" in out
    assert "MISSING SegmentationClass PNGs for train/val ids: 1 (first: 2007_000001)" in out
    assert "SegmentationClassAug: not found and no --sbd given" in out
    assert (voc / "cls_labels.json").is_file()
