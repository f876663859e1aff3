"""Checks a PASCAL VOC 2012 devkit and writes what WSSS training needs from it.

Writes into the VOC2012 folder: ``ImageSets/Segmentation/train_aug.txt`` ((VOC train + SBD train +
SBD val) - VOC val; 10,582 ids for the full data), ``cls_labels.json`` (image-level labels from the
XML tags, as 1-based class indices) and ``class_names.txt``. With ``--sbd`` it also converts SBD's
``cls/*.mat`` masks to ``SegmentationClassAug/*.png`` (VOC's own PNG where SBD has none; SBD masks
have no 255 boundary band).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from wsss.data.classes import VOC_CLASSES, write_class_names
from wsss.data.dataset import xml_class_indices
from wsss.data.label_io import write_label_png
from wsss.fileio import atomic_write, write_text_atomic


@dataclass
class VocReport:
    """What was found, written and missing; ``fatal`` problems stop training from working at all."""

    root: Path
    counts: dict[str, int] = field(default_factory=dict)
    missing: dict[str, list[str]] = field(default_factory=dict)
    fatal: list[str] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)

    def add_missing(self, what: str, ids: list[str]) -> None:
        if ids:
            self.missing[what] = ids

    def format(self) -> str:
        lines = [f"VOC root: {self.root}"]
        lines += [f"  {name}: {count}" for name, count in self.counts.items()]
        for what, ids in self.missing.items():
            lines.append(f"  MISSING {what}: {len(ids)} (first: {', '.join(ids[:5])})")
        lines += [f"  ERROR {msg}" for msg in self.fatal]
        lines += [f"  wrote {path}" for path in self.written]
        return "\n".join(lines)


def find_voc_root(devkit: Path) -> Path:
    """Accept ``VOCdevkit``, ``VOCdevkit/VOC2012`` or any folder that holds ``JPEGImages``."""
    for candidate in (devkit, devkit / "VOC2012", devkit / "VOCdevkit" / "VOC2012"):
        if (candidate / "JPEGImages").is_dir():
            return candidate
    raise FileNotFoundError(
        f"{devkit}: no JPEGImages folder here or in VOC2012/; point --devkit at VOCdevkit/VOC2012"
    )


def _read_ids(path: Path) -> list[str]:
    return (
        [line.split()[0] for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []
    )


def convert_sbd(sbd: Path, root: Path, voc_ids: set[str], report: VocReport) -> set[str]:
    """Write SBD's masks as ``SegmentationClassAug`` PNGs (resumable); returns the SBD ids."""
    from scipy.io import loadmat

    sbd_root = sbd / "dataset" if (sbd / "dataset" / "cls").is_dir() else sbd
    cls_dir = sbd_root / "cls"
    if not cls_dir.is_dir():
        report.fatal.append(f"{sbd}: no cls/ folder of .mat masks (expected benchmark_RELEASE/dataset)")
        return set()
    sbd_ids = set(_read_ids(sbd_root / "train.txt")) | set(_read_ids(sbd_root / "val.txt"))
    report.counts["SBD train+val ids"] = len(sbd_ids)
    out_dir = root / "SegmentationClassAug"
    out_dir.mkdir(exist_ok=True)
    missing = []
    for img_id in tqdm(sorted(sbd_ids), desc="SBD -> PNG", unit="mask"):
        out = out_dir / f"{img_id}.png"
        if out.is_file():
            continue
        mat = cls_dir / f"{img_id}.mat"
        if not mat.is_file():
            missing.append(img_id)
            continue
        write_label_png(out, np.asarray(loadmat(str(mat))["GTcls"][0]["Segmentation"][0], dtype=np.uint8))
    report.add_missing("SBD .mat masks", missing)
    for img_id in sorted(voc_ids - sbd_ids):
        out, src = out_dir / f"{img_id}.png", root / "SegmentationClass" / f"{img_id}.png"
        if not out.is_file() and src.is_file():
            with atomic_write(out) as tmp:
                tmp.write_bytes(src.read_bytes())
    return sbd_ids


def prepare_voc(devkit: str | os.PathLike, sbd: str | os.PathLike | None = None) -> VocReport:
    """Check the devkit, write train_aug / cls_labels.json / class_names.txt, and report what is missing."""
    root = find_voc_root(Path(devkit))
    report = VocReport(root=root)
    seg_sets = root / "ImageSets" / "Segmentation"
    train, val = _read_ids(seg_sets / "train.txt"), _read_ids(seg_sets / "val.txt")
    if not train or not val:
        report.fatal.append(
            f"{seg_sets}: train.txt and val.txt are needed (found {len(train)} / {len(val)} ids)"
        )
        return report
    report.counts.update({"VOC train": len(train), "VOC val": len(val)})
    images = {p.stem for p in (root / "JPEGImages").glob("*.jpg")}
    report.counts["JPEGImages"] = len(images)
    voc_seg = set(train) | set(val)
    report.add_missing("JPEGImages for train/val ids", sorted(voc_seg - images))
    report.add_missing(
        "SegmentationClass PNGs for train/val ids",
        sorted(i for i in voc_seg if not (root / "SegmentationClass" / f"{i}.png").is_file()),
    )

    aug_dir = root / "SegmentationClassAug"
    if sbd is not None:
        extra = convert_sbd(Path(sbd), root, voc_seg, report)
    elif aug_dir.is_dir():
        extra = {p.stem for p in aug_dir.glob("*.png")}
    else:
        extra = set()
        report.fatal.append(
            f"{aug_dir}: not found and no --sbd given; train_aug needs SBD (pass --sbd benchmark_RELEASE) "
            "or the SegmentationClassAug download"
        )
    train_aug = sorted((set(train) | extra) - set(val))
    report.counts["train_aug"] = len(train_aug)
    if extra:
        report.add_missing("JPEGImages for train_aug ids", sorted(set(train_aug) - images))
        report.add_missing(
            "SegmentationClassAug PNGs for train_aug ids",
            sorted(i for i in train_aug if not (aug_dir / f"{i}.png").is_file()),
        )
        write_text_atomic(seg_sets / "train_aug.txt", "".join(f"{i}\n" for i in train_aug))
        report.written.append(seg_sets / "train_aug.txt")

    labelled = sorted(set(train_aug) | voc_seg)
    labels, no_xml = {}, []
    for img_id in tqdm(labelled, desc="XML tags", unit="img"):
        xml = root / "Annotations" / f"{img_id}.xml"
        if xml.is_file():
            labels[img_id] = xml_class_indices(xml, VOC_CLASSES)
        else:
            no_xml.append(img_id)
    report.add_missing("Annotations XML", no_xml)
    write_text_atomic(root / "cls_labels.json", json.dumps(labels, indent=0, sort_keys=True))
    report.written.append(root / "cls_labels.json")
    write_class_names(root / "class_names.txt", VOC_CLASSES)
    report.written.append(root / "class_names.txt")
    return report
