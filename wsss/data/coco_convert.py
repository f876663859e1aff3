"""Turn a COCO ``instances_*.json`` into VOC-layout semantic label PNGs for WSSS.

Output under ``out``::

    SegmentationClass/<image stem>.png   palette PNG, 0 background, 1..K categories, 255 ignore
    ImageSets/Segmentation/<split>.txt   listed image stems (split from the json name)
    class_names.txt                      background + the json's category names in id order
    cls_labels.json                      {image stem: sorted 1-based class indices}, merged across splits
    <split> -> the images folder         symlink per split (e.g. train2014, val2014): configs read
                                         each split's images through it (``img_dir='<split>'``)
    JPEGImages -> the images folder      symlink to the first split's images, made only when absent

Class index of a category: ``sorted(category ids).index(id) + 1`` (COCO ids are 1..90 with gaps).

Painting policy (these choices are why self-made COCO labels differ between codebases):

* Every object is painted in order of decreasing mask area (pixel count; ties by annotation id),
  so a smaller object overlapping a larger one stays visible on top of it.
* ``crowd="class"`` (default): crowd regions take part in that same order, painted with their class.
* ``crowd="ignore"``: crowd regions are painted 255 after all other objects, so wherever a crowd
  region overlaps anything the pixel is ignored; a coarse crowd mask cannot vouch for any class there.
* Image-level labels (``cls_labels.json``) hold the classes of all annotations with a non-empty
  mask, crowd ones included, whatever the crowd policy: the class is present in the image.
* An image without annotations, or with only empty masks, is left out of the split list and gets
  no PNG, unless ``keep_empty`` is set (then an all-background PNG and an empty class list).
* Polygons with fewer than 3 points are skipped (they cover no pixel).

A run is resumable: a PNG already present with the json's image size is kept, not repainted; so
after changing the crowd policy, delete ``SegmentationClass`` first. List and json files are
written at the end, atomically, and only when their content changes.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pycocotools.mask as mask_utils
from PIL import Image
from tqdm import tqdm

from wsss.data.classes import CLASS_NAMES_FILE, COCO_CLASSES, read_class_names, write_class_names
from wsss.data.label_io import IGNORE_INDEX, write_label_png
from wsss.fileio import atomic_write, remove_stale_temporaries
from wsss.parallel import process_pool

CrowdPolicy = Literal["class", "ignore"]
CROWD_POLICIES: tuple[str, ...] = ("class", "ignore")
CLS_LABELS_FILE = "cls_labels.json"
REQUIRED_KEYS = ("images", "annotations", "categories")
# A label map is painted in memory at the json's size: refuse sizes no photo has (a typo, or a
# corrupt json) before they allocate gigabytes. 2**28 pixels is a 256 MB uint8 map.
MAX_IMAGE_PIXELS = 2**28

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImageTask:
    """What a worker needs to paint one image: its file stem, its size and its annotations."""

    stem: str
    height: int
    width: int
    annotations: tuple[tuple[int, int, bool, Any], ...]  # (annotation id, class index, iscrowd, segmentation)


@dataclass(frozen=True)
class ImageResult:
    """A worker's answer: the image's classes, whether it has any object pixel, and whether a PNG was written."""

    stem: str
    classes: tuple[int, ...]
    empty: bool
    written: bool


@dataclass(frozen=True)
class ConversionSummary:
    """Counts of one conversion run, for the tool's report and for tests."""

    split: str
    listed: int
    written: int
    reused: int
    left_out_empty: int
    split_file: Path
    refused: tuple[Any, ...] = ()


def split_name(ann_path: str | os.PathLike) -> str:
    """Split name from an annotation file name: ``instances_train2014.json`` -> ``train2014``, else its stem."""
    stem = Path(ann_path).stem
    match = re.fullmatch(r"instances_(.+)", stem)
    return match.group(1) if match else stem


def load_instances(ann_path: str | os.PathLike) -> dict:
    """Read a COCO instances json, refusing files that are missing or lack images/annotations/categories."""
    ann_path = Path(ann_path)
    if not ann_path.is_file():
        raise FileNotFoundError(
            f"{ann_path}: annotation file not found; pass the path of a COCO instances json "
            "(e.g. annotations/instances_train2014.json)"
        )
    try:
        with open(ann_path, encoding="utf-8") as file:
            data = json.load(file)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{ann_path}: not valid JSON ({err}); re-download the annotation file") from err
    missing = [key for key in REQUIRED_KEYS if not isinstance(data, dict) or key not in data]
    if missing:
        raise ValueError(
            f"{ann_path}: not a COCO instances file (no {', '.join(repr(k) for k in missing)}); "
            "pass an instances_*.json, not a captions or keypoints file"
        )
    return data


def category_indices(categories: Sequence[dict], ann_path: str | os.PathLike) -> dict[int, int]:
    """Map raw category ids to 1-based class indices in id order."""
    if not isinstance(categories, list) or not all(
        isinstance(category, dict) and "id" in category and isinstance(category.get("name"), str)
        and category["name"].strip() and "\n" not in category["name"]
        for category in categories
    ):  # fmt: skip
        raise ValueError(
            f"{ann_path}: 'categories' must be a list of objects with an 'id' and a one-line 'name'"
        )
    try:
        ids = [int(category["id"]) for category in categories]
    except (TypeError, ValueError):
        raise ValueError(
            f"{ann_path}: a category id is not a whole number; fix the 'categories' list"
        ) from None
    if len(set(ids)) != len(ids):
        raise ValueError(f"{ann_path}: category ids repeat; fix the 'categories' list")
    if len(ids) > IGNORE_INDEX - 1:
        raise ValueError(f"{ann_path}: {len(ids)} categories do not fit in a uint8 label map (254 at most)")
    return {category_id: index + 1 for index, category_id in enumerate(sorted(ids))}


def class_names(categories: Sequence[dict]) -> tuple[str, ...]:
    """Background followed by the category names in category-id order; warns if an 80-class json is not COCO's."""
    names = tuple(
        category["name"] for category in sorted(categories, key=lambda category: int(category["id"]))
    )
    if len(names) == len(COCO_CLASSES) - 1 and names != COCO_CLASSES[1:]:
        first = next(i for i, (a, b) in enumerate(zip(names, COCO_CLASSES[1:])) if a != b)
        log.warning(
            "category %d is named %r where COCO has %r; using the json's names",
            first + 1,
            names[first],
            COCO_CLASSES[first + 1],
        )
    return ("background", *names)


def check_polygon(polygon: Any, height: int, width: int) -> list[float] | None:
    """A polygon's coordinates as floats when they can be painted, None when it covers nothing (< 3 points);
    ValueError for coordinates that are not finite numbers or lie beyond one image size outside the image,
    which would make pycocotools rasterise edges of absurd length (gigabytes for one coordinate of 1e9)."""
    if not isinstance(polygon, (list, tuple)):
        raise ValueError(f"a polygon must be a list of coordinates, got {type(polygon).__name__}")
    if len(polygon) < 6 or len(polygon) % 2:
        return None
    try:
        values = np.asarray(polygon, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("polygon coordinates must be numbers") from None
    if values.ndim != 1 or not np.isfinite(values).all():
        raise ValueError("polygon coordinates must be finite numbers")
    xs, ys = values[0::2], values[1::2]
    if xs.min() < -width or xs.max() > 2 * width or ys.min() < -height or ys.max() > 2 * height:
        raise ValueError(
            f"polygon coordinates span x {xs.min():.4g}..{xs.max():.4g}, y {ys.min():.4g}..{ys.max():.4g}, far "
            f"outside the {width}x{height} image"
        )
    return values.tolist()


def check_segmentation(segmentation: Any, height: int, width: int) -> Any:
    """The segmentation in a paintable form (polygons checked, RLE sizes checked); ValueError otherwise."""
    if isinstance(segmentation, list):
        polygons = [check_polygon(polygon, height, width) for polygon in segmentation]
        return [polygon for polygon in polygons if polygon is not None]
    if isinstance(segmentation, dict) and "counts" in segmentation and "size" in segmentation:
        size = segmentation["size"]
        if not isinstance(size, (list, tuple)) or [int(v) for v in size] != [height, width]:
            raise ValueError(f"RLE size {size} differs from the image size {[height, width]}")
        counts = segmentation["counts"]
        if isinstance(counts, list):
            if not all(isinstance(c, int) and c >= 0 for c in counts) or sum(counts) != height * width:
                raise ValueError(
                    f"uncompressed RLE counts must be non-negative integers summing to {height * width}"
                )
        elif isinstance(counts, (str, bytes)):
            # pycocotools decodes without bounds checks: counts that do not sum to the image size
            # would write past its buffer (garbage labels or a segfault), so they are checked here.
            if sum(compressed_rle_counts(counts)) != height * width:
                raise ValueError(f"compressed RLE counts do not sum to the image size {height}x{width}")
        else:
            raise ValueError(f"RLE counts must be a list or a string, got {type(counts).__name__}")
        return segmentation
    raise ValueError(f"unknown segmentation format {type(segmentation).__name__}")


def compressed_rle_counts(counts: str | bytes) -> list[int]:
    """The run lengths of a COCO compressed RLE string (pycocotools' ``rleFrString`` in Python);
    ValueError for characters outside its alphabet, a cut-off number or a negative or too long run."""
    if isinstance(counts, str):
        try:
            counts = counts.encode("ascii")
        except UnicodeEncodeError:
            raise ValueError("compressed RLE counts must be ASCII") from None
    runs: list[int] = []
    position = 0
    while position < len(counts):
        value, shift, more = 0, 0, True
        while more:
            if position >= len(counts):
                raise ValueError("compressed RLE counts end in the middle of a number")
            code = counts[position] - 48
            if not 0 <= code < 64 or shift > 30:
                raise ValueError("compressed RLE counts hold a character or a number pycocotools cannot read")
            value |= (code & 0x1F) << shift
            more = bool(code & 0x20)
            position += 1
            shift += 5
            if not more and code & 0x10:
                value |= -1 << shift
        if len(runs) > 2:
            value += runs[-2]
        if not 0 <= value < 2**32:
            raise ValueError("compressed RLE counts decode to a negative or too long run")
        runs.append(value)
    return runs


def annotation_rle(segmentation: Any, height: int, width: int) -> dict | None:
    """One RLE for checked polygons, an uncompressed RLE or a compressed RLE; ``None`` when it covers nothing."""
    if isinstance(segmentation, list):
        if not segmentation:
            return None
        return mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    if isinstance(segmentation["counts"], list):
        return mask_utils.frPyObjects(segmentation, height, width)
    rle = dict(segmentation)
    if isinstance(rle["counts"], str):
        rle["counts"] = rle["counts"].encode("ascii")
    return rle


def paint_label(
    height: int, width: int, objects: Sequence[tuple[int, int, bool, dict]], crowd: CrowdPolicy
) -> np.ndarray:
    """Paint ``(annotation id, class index, iscrowd, rle)`` objects into a uint8 label map by the module's policy."""
    if crowd not in CROWD_POLICIES:
        raise ValueError(f"crowd policy must be one of {CROWD_POLICIES}, got {crowd!r}")

    def order(obj: tuple[int, int, bool, dict]) -> tuple[bool, int, int]:
        ann_id, _, is_crowd, rle = obj
        return (crowd == "ignore" and is_crowd, -int(mask_utils.area(rle)), ann_id)

    label = np.zeros((height, width), dtype=np.uint8)
    for _, index, is_crowd, rle in sorted(objects, key=order):
        value = IGNORE_INDEX if crowd == "ignore" and is_crowd else index
        label[mask_utils.decode(rle).astype(bool)] = value
    return label


def has_valid_png(path: Path, height: int, width: int) -> bool:
    """Whether ``path`` is a readable palette/greyscale PNG of the expected size (so a rerun may keep it)."""
    try:
        with Image.open(path) as image:
            return image.format == "PNG" and image.mode in ("P", "L") and image.size == (width, height)
    except OSError:
        return False


def convert_image(task: ImageTask, label_dir: Path, crowd: CrowdPolicy, keep_empty: bool) -> ImageResult:
    """Paint one image's label PNG unless a valid one is already there; report its classes."""
    objects = []
    for ann_id, index, is_crowd, segmentation in task.annotations:
        try:
            rle = annotation_rle(segmentation, task.height, task.width)
            area = 0 if rle is None else int(mask_utils.area(rle))
        except (TypeError, ValueError, OverflowError) as err:
            raise ValueError(
                f"annotation {ann_id} of image {task.stem}: unreadable segmentation ({err})"
            ) from None
        if area > 0:
            objects.append((ann_id, index, is_crowd, rle))
    classes = tuple(sorted({index for _, index, _, _ in objects}))
    empty = not objects
    path = label_dir / f"{task.stem}.png"
    if (empty and not keep_empty) or has_valid_png(path, task.height, task.width):
        return ImageResult(task.stem, classes, empty, written=False)
    write_label_png(path, paint_label(task.height, task.width, objects, crowd))
    return ImageResult(task.stem, classes, empty, written=True)


def _convert_star(args: tuple[ImageTask, Path, CrowdPolicy, bool]) -> ImageResult:
    return convert_image(*args)


def _positive_int(value: Any, what: str) -> int:
    try:
        if isinstance(value, bool):
            raise TypeError
        number = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a whole number, got {value!r}") from None
    if number < 1 or number != value:
        raise ValueError(f"{what} must be a positive whole number, got {value!r}")
    return number


def build_tasks(
    data: dict, ann_path: str | os.PathLike, skip_bad: bool = False
) -> tuple[list[ImageTask], list[Any]]:
    """Group the json's annotations by image into checked tasks; also the ids of annotations left out.

    Every problem names the image or annotation and stops the conversion, unless ``skip_bad``: then
    the bad annotation is left out and its id returned (an image with bad fields stops it either way).
    """
    indices = category_indices(data["categories"], ann_path)
    images: dict[int, tuple[str, int, int]] = {}
    seen = set()
    if not isinstance(data["images"], list) or not isinstance(data["annotations"], list):
        raise ValueError(
            f"{ann_path}: 'images' and 'annotations' must be lists; re-download the annotation file"
        )
    for image in data["images"]:
        try:
            if not isinstance(image, dict):
                raise TypeError("an image entry must be a JSON object")
            image_id = int(image["id"])
            stem = Path(image["file_name"]).stem
            height = _positive_int(image.get("height"), "height")
            width = _positive_int(image.get("width"), "width")
            if height * width > MAX_IMAGE_PIXELS:
                raise ValueError(
                    f"{width}x{height} is too large for a label map ({MAX_IMAGE_PIXELS} pixels at most)"
                )
        except (KeyError, TypeError, ValueError) as err:
            shown = image.get("id", "?") if isinstance(image, dict) else "?"
            raise ValueError(f"{ann_path}: image {shown}: {err}; fix its entry in 'images'") from None
        if image_id in images:
            raise ValueError(
                f"{ann_path}: two images have the id {image_id}; annotations could not tell them apart"
            )
        if stem in seen:
            raise ValueError(f"{ann_path}: two images share the file stem {stem!r}; label PNGs would collide")
        seen.add(stem)
        images[image_id] = (stem, height, width)
    by_image: dict[int, list[tuple[int, int, bool, Any]]] = {}
    refused: list[Any] = []
    for annotation in data["annotations"]:
        ann_id = annotation.get("id", "?") if isinstance(annotation, dict) else "?"
        try:
            if not isinstance(annotation, dict):
                raise ValueError("an annotation must be a JSON object")
            for key in ("image_id", "category_id", "segmentation"):
                if key not in annotation:
                    raise ValueError(f"no {key!r}")
            own_id = int(annotation.get("id", 0))
            category_id = int(annotation["category_id"])
            if category_id not in indices:
                raise ValueError(f"category id {category_id} is not in 'categories'")
            image_id = int(annotation["image_id"])
            if image_id not in images:
                raise ValueError(f"image_id {image_id} is not in 'images'")
            _, height, width = images[image_id]
            segmentation = check_segmentation(annotation["segmentation"], height, width)
        except (TypeError, ValueError) as err:
            if not skip_bad:
                raise ValueError(
                    f"{ann_path}: annotation {ann_id}: {err}; fix or drop that annotation (or pass --skip-bad)"
                ) from None
            refused.append(ann_id)
            continue
        by_image.setdefault(image_id, []).append(
            (own_id, indices[category_id], bool(annotation.get("iscrowd", 0)), segmentation)
        )
    tasks = [
        ImageTask(stem, h, w, tuple(by_image.get(image_id, ()))) for image_id, (stem, h, w) in images.items()
    ]
    return tasks, refused


def check_image_sizes(
    images: Path, tasks: Sequence[ImageTask], data: dict, ann_path: str | os.PathLike
) -> None:
    """ValueError when an image file's real size differs from the json's height and width (labels would
    not fit the image); reads headers only."""
    names = {Path(image["file_name"]).stem: Path(image["file_name"]).name for image in data["images"]}
    for task in tasks:
        path = images / names[task.stem]
        if not path.is_file():
            continue
        try:
            with Image.open(path) as image:
                size = image.size
        except OSError as err:
            raise ValueError(
                f"{path}: unreadable image ({err}); replace it or drop it from {ann_path}"
            ) from None
        if size != (task.width, task.height):
            raise ValueError(
                f"{path}: is {size[0]}x{size[1]} but {ann_path} says {task.width}x{task.height}; "
                "fix the json's width and height (or use the images it was made for)"
            )


def write_text_if_changed(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and rename, skipping the write when nothing changed."""
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def link_images(out: Path, images: Path, split: str) -> list[Path]:
    """Link ``out/<split>`` (and ``out/JPEGImages`` when absent) to ``images``; returns the links it made.

    COCO keeps each split's images in its own folder, so one output folder holding train and val
    reaches both through the per-split links. A link that leads elsewhere is kept, with a warning.
    """
    made = []
    for link in (out / split, out / "JPEGImages"):
        if not link.exists() and not link.is_symlink():
            link.symlink_to(images.resolve(), target_is_directory=True)
            made.append(link)
        elif link.name == split and (not link.exists() or not os.path.samefile(link, images)):
            log.warning(
                "%s already exists and is not %s; kept as is, so this split's images may not be found",
                link,
                images,
            )
    return made


def check_images_dir(images: Path, data: dict, ann_path: str | os.PathLike) -> None:
    """Refuse a missing images folder or one holding none of the json's images; warn about missing files."""
    if not images.is_dir():
        raise FileNotFoundError(
            f"{images}: images folder not found; pass the folder holding the json's images (e.g. train2014/)"
        )
    names = [image["file_name"] for image in data["images"]]
    present = set(os.listdir(images))
    missing = [name for name in names if Path(name).name not in present]
    if names and len(missing) == len(names):
        raise FileNotFoundError(
            f"{images}: holds none of the {len(names)} images named in {ann_path} (e.g. {names[0]}); "
            "pass the images folder of this split"
        )
    if missing:
        log.warning(
            "%d of %d images named in %s are missing from %s (e.g. %s)",
            len(missing),
            len(names),
            ann_path,
            images,
            missing[0],
        )


def read_cls_labels(path: Path) -> dict[str, list[int]]:
    """An existing ``cls_labels.json`` (for merging splits), or an empty dict."""
    if not path.is_file():
        return {}
    try:
        labels = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(
            f"{path}: unreadable ({err}); delete it and rerun every split into this folder"
        ) from err
    if not isinstance(labels, dict):
        raise ValueError(
            f"{path}: expected a JSON object {{image stem: [class indices]}}; delete it and rerun"
        )
    return labels


def convert_coco(
    ann_path: str | os.PathLike,
    images: str | os.PathLike,
    out: str | os.PathLike,
    crowd: CrowdPolicy = "class",
    keep_empty: bool = False,
    workers: int = 1,
    progress: bool = True,
    skip_bad: bool = False,
) -> ConversionSummary:
    """Convert one COCO instances json into VOC-layout labels under ``out`` (see the module docstring).

    Everything in the json is checked before anything is written, so a bad json leaves no output
    behind; ``skip_bad`` leaves out annotations that cannot be painted (listed in the summary).
    """
    if crowd not in CROWD_POLICIES:
        raise ValueError(f"crowd policy must be one of {CROWD_POLICIES}, got {crowd!r}")
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    images, out = Path(images), Path(out)
    data = load_instances(ann_path)
    tasks, refused = build_tasks(data, ann_path, skip_bad)
    check_images_dir(images, data, ann_path)
    names = class_names(data["categories"])
    check_image_sizes(images, tasks, data, ann_path)
    names_file = out / CLASS_NAMES_FILE
    if names_file.is_file() and read_class_names(names_file) != names:
        raise ValueError(
            f"{names_file}: lists other classes than {ann_path}; convert this json into a fresh --out folder"
        )
    cls_path = out / CLS_LABELS_FILE
    cls_labels = read_cls_labels(cls_path)

    label_dir = out / "SegmentationClass"
    created = [path for path in (out, label_dir) if not path.exists()]
    label_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(label_dir)
    split = split_name(ann_path)
    links = link_images(out, images, split)
    jobs = [(task, label_dir, crowd, keep_empty) for task in tasks]
    bar = dict(total=len(jobs), desc=f"coco {split}", unit="img", disable=not progress)
    try:
        if workers == 1:
            results = [_convert_star(job) for job in tqdm(jobs, **bar)]
        else:
            with process_pool(workers) as pool:
                results = list(tqdm(pool.imap_unordered(_convert_star, jobs, chunksize=16), **bar))
    except BaseException:
        for link in links:
            link.unlink(missing_ok=True)
        for folder in reversed(created):
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        raise

    listed = [result for result in results if keep_empty or not result.empty]
    for result in results:
        cls_labels.pop(result.stem, None)  # a stem this run leaves out must not keep an older entry
    cls_labels.update({result.stem: list(result.classes) for result in listed})
    split_file = out / "ImageSets" / "Segmentation" / f"{split}.txt"
    write_text_if_changed(split_file, "".join(f"{stem}\n" for stem in sorted(r.stem for r in listed)))
    if not names_file.is_file():
        write_class_names(names_file, names)
    write_text_if_changed(cls_path, json.dumps(cls_labels, sort_keys=True))
    written = sum(result.written for result in results)
    return ConversionSummary(
        split=split,
        listed=len(listed),
        written=written,
        reused=len(listed) - written,
        left_out_empty=len(results) - len(listed),
        split_file=split_file,
        refused=tuple(refused),
    )
