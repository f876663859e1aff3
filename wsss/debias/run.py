"""MARS over folders: base pseudo labels + feature files in, debiased labels, centroids and a manifest out.

Two passes, streamed (memory holds the centroids, ``O(N K D)``, never all features at once):

1. every image's features and base labels -> its centroids (chunks of images clustered together,
   spread over worker processes; each chunk's draws come from a generator seeded by the settings'
   seed and the chunk's index, so the result does not depend on the number of workers); then the
   scores (Eq. 1) and the debiased class centroids (Eqs. 2-3), saved in ``OUT/centroids.npz``;
2. every image again -> its debiased score (Eq. 4) saved as ``OUT/scores/<id>.png`` (8-bit, score
   x 255), binarised, and its debiased label ``OUT/<id>.png`` (Eq. 5; 254 = biased, VOC palette).

``OUT/manifest.json`` holds the settings, the sources, the counts and, per class, the share of its
pixels marked biased. A run with the same settings resumes: it reuses ``centroids.npz`` and keeps
the whole PNGs already written; a folder made with other settings is refused.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from wsss.data.image_io import index_images, read_image
from wsss.data.label_io import (
    BIASED_INDEX,
    IGNORE_INDEX,
    check_labels_exist,
    read_label_png,
    reusable_label_png,
    write_label_png,
)
from wsss.debias.mars import (
    ImageCentroids,
    MARSSettings,
    background_distance,
    binarize,
    cluster_images,
    debias_label,
    debiased_centroids,
    debiased_score,
    resize_score,
)
from wsss.features.grid import cell_labels
from wsss.features.io import FeatureFolder, check_feature_ids, feature_path
from wsss.fileio import atomic_write, remove_stale_temporaries
from wsss.manifest import check_folder_settings, read_manifest, write_manifest
from wsss.parallel import process_pool

CENTROIDS_FILE = "centroids.npz"
SCORES_DIR = "scores"
CHUNK = 16  # images clustered together; fixed, so results do not depend on the number of workers
#: image id -> (features (D, h, w), cell labels (h, w)): what pass 1 reads of one image
SampleLoader = Callable[[str], tuple[np.ndarray, np.ndarray]]


def _sample(
    features: FeatureFolder, pseudo_dir: Path, image_id: str, mean: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, int, np.ndarray]:
    """Features (centred on ``mean`` when given), base labels, stride and cell labels of one image,
    checked against each other."""
    path = feature_path(features.folder, image_id)
    features, stride, size = features.read(image_id)
    if mean is not None:
        features = features - mean[:, None, None]
    base = read_label_png(pseudo_dir / f"{image_id}.png")
    if base.shape != size:
        raise ValueError(
            f"{pseudo_dir / image_id}.png: label is {base.shape[0]}x{base.shape[1]} but {path} was extracted from a "
            f"{size[0]}x{size[1]} image; use features and pseudo labels of the same images"
        )
    try:
        cells = cell_labels(base, features.shape[1:], stride)
    except ValueError as err:
        raise ValueError(f"{path}: {err}; the feature stride does not fit the image size") from None
    return features, base, stride, cells


def _features_and_cells(
    features: FeatureFolder, pseudo_dir: Path, mean: np.ndarray | None, image_id: str
) -> tuple[np.ndarray, np.ndarray]:
    """Pass 1's sample loader over folders: one image's (centred) features and cell labels."""
    sample_features, _, _, cells = _sample(features, pseudo_dir, image_id, mean)
    return sample_features, cells


def _cluster_chunk(load: SampleLoader, settings: MARSSettings, task: tuple[int, list[str]]):
    chunk_index, ids = task
    generator = torch.Generator().manual_seed(settings.seed * 1_000_003 + chunk_index)
    return chunk_index, cluster_images([load(image_id) for image_id in ids], settings, generator)


def cluster_dataset(
    load: SampleLoader, ids: Sequence[str], settings: MARSSettings, workers: int = 1, progress: bool = True
) -> list[ImageCentroids]:
    """Step 1 over a dataset: every image's centroids, in the order of ``ids``.

    ``load(image_id)`` gives ``(features (D, h, w), cell labels (h, w))``; it must pickle (a
    module-level function or a ``partial`` of one). Chunks of :data:`CHUNK` images are clustered in
    worker processes, even for ``workers=1``: a process that keeps many small centroid arrays while
    it allocates and frees the clustering's large temporaries fragments glibc's heap, and its memory
    grew by ~15 MiB per chunk (10 GiB at VOC scale); the workers keep nothing between chunks and
    this process only collects the centroids, so memory stays flat but for them.
    """
    tasks = [(i // CHUNK, list(ids[i : i + CHUNK])) for i in range(0, len(ids), CHUNK)]
    chunks: dict[int, list[ImageCentroids]] = {}
    with (
        tqdm(total=len(ids), desc="MARS centroids", unit="img", disable=not progress) as bar,
        process_pool(max(1, min(workers, len(tasks)))) as pool,
    ):
        for chunk_index, centroids in pool.imap_unordered(partial(_cluster_chunk, load, settings), tasks):
            chunks[chunk_index] = centroids
            bar.update(len(centroids))
    return [centroids for index in sorted(chunks) for centroids in chunks[index]]


@dataclass
class CentroidTable:
    """Every centroid of the dataset: its image (index into ``ids``), class, cells, score, selection."""

    ids: list[str]
    image: np.ndarray
    classes: np.ndarray
    centroids: np.ndarray
    cells: np.ndarray
    score: np.ndarray
    selected: np.ndarray
    debiased: np.ndarray
    feature_mean: np.ndarray  # the mean the features were centred on; empty when not centred

    @property
    def mean(self) -> np.ndarray | None:
        return self.feature_mean if self.feature_mean.size else None

    def save(self, path: Path) -> None:
        with atomic_write(path) as tmp, open(tmp, "wb") as handle:
            np.savez_compressed(
                handle, ids=np.asarray(self.ids), image=self.image, classes=self.classes, centroids=self.centroids,
                cells=self.cells, score=self.score, selected=self.selected, debiased=self.debiased,
                feature_mean=self.feature_mean,
            )  # fmt: skip

    @classmethod
    def load(cls, path: Path) -> CentroidTable:
        with np.load(path, allow_pickle=False) as data:
            fields = {name: data[name] for name in data.files}
        fields["ids"] = [str(i) for i in fields["ids"]]
        return cls(**fields)


def feature_mean(features_dir: FeatureFolder, ids: Sequence[str], progress: bool = True) -> np.ndarray:
    """The mean feature vector over every cell of every image (float64 sums, one image at a time)."""
    total, cells = None, 0
    for image_id in tqdm(ids, desc="MARS feature mean", unit="img", disable=not progress):
        features, _, _ = features_dir.read(image_id)
        summed = features.sum(axis=(1, 2), dtype=np.float64)
        total = summed if total is None else total + summed
        cells += features.shape[1] * features.shape[2]
    return (total / cells).astype(np.float32)


def build_centroids(
    features_dir: FeatureFolder, pseudo_dir: Path, ids: Sequence[str], settings: MARSSettings, num_classes: int,
    workers: int = 1, progress: bool = True,
) -> CentroidTable:  # fmt: skip
    """Pass 1: every image's centroids, their scores (Eq. 1) and the debiased centroids (Eqs. 2-3);
    with ``settings.center`` a pass before it finds the mean the features are centred on."""
    mean = feature_mean(features_dir, ids, progress) if settings.center else None
    load = partial(_features_and_cells, features_dir, pseudo_dir, mean)
    per_image = cluster_dataset(load, ids, settings, workers, progress)
    top = max((int(c.classes.max(initial=0)) for c in per_image), default=0)
    if top >= num_classes:
        raise ValueError(
            f"{pseudo_dir}: label value {top} is not a class of the {num_classes}-class list; pass the "
            "dataset's class list"
        )
    return score_centroids(per_image, ids, settings.alpha, num_classes, mean)


def score_centroids(
    per_image: Sequence[ImageCentroids], ids: Sequence[str], alpha: float, num_classes: int,
    mean: np.ndarray | None = None,
) -> CentroidTable:  # fmt: skip
    """Eqs. 1-3 over the centroids of every image (``per_image[i]`` belongs to ``ids[i]``)."""
    image = np.concatenate([np.full(len(c.classes), i, dtype=np.int64) for i, c in enumerate(per_image)])
    classes = np.concatenate([c.classes for c in per_image])
    vectors = np.concatenate([c.centroids for c in per_image])
    cells = np.concatenate([c.cells for c in per_image])
    foreground = classes > 0
    score = np.full(len(classes), np.nan, dtype=np.float32)
    score[foreground] = background_distance(vectors[foreground], vectors[~foreground])
    debiased, chosen = debiased_centroids(
        vectors[foreground], classes[foreground], score[foreground], alpha, num_classes
    )
    selected = np.zeros(len(classes), dtype=bool)
    selected[foreground] = chosen
    kept_mean = np.zeros(0, dtype=np.float32) if mean is None else mean
    return CentroidTable(list(ids), image, classes, vectors, cells, score, selected, debiased, kept_mean)


def _debias_one(features_dir: FeatureFolder, pseudo_dir: Path, out_dir: Path, images: dict[str, Path], debiased: np.ndarray,
                mean: np.ndarray | None, settings: MARSSettings, num_classes: int, image_id: str) -> np.ndarray:  # fmt: skip
    """Pass 2 for one image; returns its per-class (foreground pixels, biased pixels) counts ``(2, C)``."""
    base = read_label_png(pseudo_dir / f"{image_id}.png")
    out = out_dir / f"{image_id}.png"
    label = reusable_label_png(out, base.shape)
    if label is None or not (out_dir / SCORES_DIR / f"{image_id}.png").is_file():
        features, base, stride, _ = _sample(features_dir, pseudo_dir, image_id, mean)
        classes = [int(c) for c in np.unique(base) if 0 < c < num_classes]
        score = resize_score(debiased_score(features, debiased, classes), base.shape, stride)
        image = read_image(images[image_id]) if settings.binarize == "crf" else None
        label = debias_label(base, binarize(score, settings, image))
        with atomic_write(out_dir / SCORES_DIR / f"{image_id}.png") as tmp:
            Image.fromarray(np.round(np.clip(score, 0, 1) * 255).astype(np.uint8), mode="L").save(
                tmp, format="PNG"
            )
        write_label_png(out, label)
    counted = (base > 0) & (base < num_classes)
    pixels = np.bincount(base[counted], minlength=num_classes)
    biased = np.bincount(base[counted & (label == BIASED_INDEX)], minlength=num_classes)
    return np.stack([pixels, biased])


def run_mars(
    pseudo_dir: str | os.PathLike,
    features_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    ids: Sequence[str],
    class_names: Sequence[str],
    settings: MARSSettings,
    images_dir: str | os.PathLike | None = None,
    workers: int = 1,
    progress: bool = True,
) -> dict[str, Any]:
    """Debias the base pseudo labels of ``ids`` into ``out_dir`` (see the module docstring); returns the manifest."""
    pseudo_dir, features_dir, out_dir = Path(pseudo_dir), Path(features_dir), Path(out_dir)
    if not ids:
        raise ValueError("no images to debias; give a non-empty list")
    check_labels_exist(pseudo_dir, ids, "pseudo-label")
    check_feature_ids(features_dir, ids)
    if settings.binarize == "crf":
        from wsss.pseudo.crf import import_pydensecrf

        import_pydensecrf()
        if images_dir is None:
            raise ValueError("binarize='crf' needs the images the labels belong to; give the images folder")
        images = index_images(
            images_dir, ids, "pseudo-labelled images", "point the images folder at their images"
        )
    else:
        images = {}
    num_classes = len(class_names)
    sources = {
        "pseudo": str(pseudo_dir.resolve()),
        "features": str(features_dir.resolve()),
        "num_classes": num_classes,
    }
    settings_record = {**settings.to_dict(), **sources}
    check_folder_settings(out_dir, settings_record, pattern="*.png")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / SCORES_DIR).mkdir(exist_ok=True)
    for folder in (out_dir, out_dir / SCORES_DIR):
        remove_stale_temporaries(folder)
    previous = read_manifest(out_dir)
    write_manifest(out_dir, settings_record, complete=False, label_values=LABEL_VALUES)
    table = None
    if previous is not None and (out_dir / CENTROIDS_FILE).is_file():
        try:
            table = CentroidTable.load(out_dir / CENTROIDS_FILE)
        except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile, zlib.error):
            table = None  # a cache cut off by a killed run: computed again
        table = table if table is not None and table.ids == list(ids) else None
    if table is None:
        table = build_centroids(
            FeatureFolder(features_dir), pseudo_dir, ids, settings, num_classes, workers, progress
        )
        table.save(out_dir / CENTROIDS_FILE)
    work = partial(
        _debias_one,
        FeatureFolder(features_dir),
        pseudo_dir,
        out_dir,
        images,
        table.debiased,
        table.mean,
        settings,
        num_classes,
    )
    counts = np.zeros((2, num_classes), dtype=np.int64)
    with tqdm(total=len(ids), desc="MARS labels", unit="img", disable=not progress) as bar:
        if workers <= 1:
            for image_counts in map(work, ids):
                counts += image_counts
                bar.update()
        else:
            with process_pool(min(workers, len(ids))) as pool:
                for image_counts in pool.imap_unordered(work, ids, chunksize=4):
                    counts += image_counts
                    bar.update()
    per_class = {}
    for cls in range(1, num_classes):
        members = table.classes == cls
        pixels, biased = int(counts[0, cls]), int(counts[1, cls])
        per_class[class_names[cls]] = {
            "centroids": int(members.sum()), "selected": int((members & table.selected).sum()),
            "pixels": pixels, "biased_pixels": biased, "biased_share": biased / pixels if pixels else None,
        }  # fmt: skip
    manifest = {
        "complete": True,
        "label_values": LABEL_VALUES,
        "counts": {
            "images": len(ids),
            "foreground_centroids": int((table.classes > 0).sum()),
            "background_centroids": int((table.classes == 0).sum()),
        },  # fmt: skip
        "per_class": per_class,
    }
    write_manifest(out_dir, settings_record, **manifest)
    return {"settings": settings_record, **manifest}


LABEL_VALUES = (
    f"0 background, 1..C classes, {BIASED_INDEX} biased (a base foreground pixel outside the debiased mask), "
    f"{IGNORE_INDEX} ignore"
)


def load_settings(config: dict[str, Any]) -> MARSSettings:
    """:class:`MARSSettings` from a config's ``mars = dict(...)`` (unknown keys named)."""
    known = set(MARSSettings.__dataclass_fields__)
    unknown = set(config) - known
    if unknown:
        raise ValueError(f"unknown MARS setting(s) {sorted(unknown)}; the settings are {sorted(known)}")
    values = dict(config)
    if isinstance(values.get("crf"), dict):
        from wsss.pseudo.crf import ProbCRFSettings

        values["crf"] = ProbCRFSettings(**values["crf"])
    return MARSSettings(**values)
