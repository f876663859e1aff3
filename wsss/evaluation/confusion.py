"""Streaming confusion-matrix evaluation of label maps: aAcc, mIoU, mAcc and per-class errors.

Conventions (see docs/DATA.md): pixels whose ground truth is 255 are ignored; a prediction outside
``[0, num_classes)`` counts as background 0; a class absent from both ground truth and prediction
has NaN scores and is left out of the means (as in mmsegmentation and IRN). All scores are percent.

The per-image counting packs ``gt << 8 | pred`` into one uint16 code per pixel. Label maps are
made of long runs of equal codes, so the codes are run-length encoded first and only the runs are
counted, which is several times faster than a plain ``np.bincount`` over all pixels; maps with
many short runs (noise) fall back to the plain count.
"""

from __future__ import annotations

import json
import math
import os
import struct
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from multiprocessing import Pool
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from wsss.data.label_io import IGNORE_INDEX, read_label_png
from wsss.fileio import atomic_write

# Largest number of classes: 255 is the ignore index, so class indices stop at 254.
MAX_CLASSES = IGNORE_INDEX
# Run-length counting wins while runs are longer than this many pixels on average.
_MIN_MEAN_RUN = 8


def as_numpy(array: Any) -> np.ndarray:
    """A numpy view of a numpy array or a (possibly GPU) torch tensor, without importing torch."""
    if hasattr(array, "detach"):
        array = array.detach().cpu().numpy()
    return np.asarray(array)


def _check_num_classes(num_classes: int) -> None:
    if not 1 <= num_classes <= MAX_CLASSES:
        raise ValueError(
            f"num_classes must lie in 1..{MAX_CLASSES} (255 is the ignore index), got {num_classes}"
        )


def _require_integer(array: np.ndarray, what: str) -> None:
    if not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"{what} must hold integer class indices, got dtype {array.dtype}")


def _describe_bad_values(values: np.ndarray, num_classes: int) -> str:
    shown = ", ".join(str(int(v)) for v in values[:10])
    more = f" and {len(values) - 10} more" if len(values) > 10 else ""
    return (
        f"ground-truth values [{shown}{more}] are outside the class range 0..{num_classes - 1} "
        f"and are not the ignore index {IGNORE_INDEX}; check num_classes / the class list against the labels"
    )


def validate_ground_truth(gt: np.ndarray, num_classes: int) -> None:
    """Raise ValueError naming every ground-truth value that is neither a class index nor 255."""
    bad = (gt != IGNORE_INDEX) & ((gt < 0) | (gt >= num_classes))
    if bad.any():
        raise ValueError(_describe_bad_values(np.unique(gt[bad]), num_classes))


def _joint_counts(gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """``(256, 256)`` int64 counts of (gt, pred) value pairs of two uint8 maps of the same shape."""
    codes = (gt.astype(np.uint16) << 8 | pred).ravel()
    if codes.size == 0:
        return np.zeros((256, 256), dtype=np.int64)
    run_ends = np.flatnonzero(codes[1:] != codes[:-1])
    if (run_ends.size + 1) * _MIN_MEAN_RUN > codes.size:
        counts = np.bincount(codes, minlength=1 << 16)
    else:
        run_ends = np.append(run_ends, codes.size - 1)
        run_lengths = np.diff(run_ends, prepend=-1)
        # Float weights hold integer sums exactly up to 2**53 pixels.
        counts = np.bincount(codes[run_ends], weights=run_lengths, minlength=1 << 16).astype(np.int64)
    return counts.reshape(256, 256)


def confusion_matrix(pred: Any, gt: Any, num_classes: int) -> np.ndarray:
    """The ``(C, C)`` int64 confusion matrix (rows ground truth, columns prediction) of one pair of maps.

    ``pred`` and ``gt`` are integer numpy arrays or torch tensors of equal shape. Ground-truth pixels
    equal to 255 are ignored; predictions outside ``[0, C)`` count as background; ground-truth values
    outside the class range (other than 255) raise ValueError naming them.
    """
    _check_num_classes(num_classes)
    pred = as_numpy(pred)
    gt = as_numpy(gt)
    _require_integer(pred, "prediction")
    _require_integer(gt, "ground truth")
    if pred.shape != gt.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from ground-truth shape {gt.shape}")
    if pred.dtype != np.uint8:
        pred = np.where((pred >= 0) & (pred < num_classes), pred, 0).astype(np.uint8)
    if gt.dtype != np.uint8:
        validate_ground_truth(gt, num_classes)
        gt = gt.astype(np.uint8)
    joint = _joint_counts(gt, pred)
    bad_rows = np.flatnonzero(joint[num_classes:IGNORE_INDEX].any(axis=1)) + num_classes
    if bad_rows.size:
        raise ValueError(_describe_bad_values(bad_rows, num_classes))
    matrix = joint[:num_classes, :num_classes].copy()
    matrix[:, 0] += joint[:num_classes, num_classes:].sum(axis=1)
    return matrix


@dataclass(frozen=True, eq=False)
class SegmentationResult:
    """Scores of one confusion matrix, all in percent; NaN where a score is undefined.

    ``absent`` marks classes with no pixel in ground truth or prediction: NaN everywhere and left
    out of mIoU and mAcc. A class predicted but never in the ground truth has IoU 0 and NaN accuracy
    (left out of mAcc only). ``fp_ratio``/``fn_ratio`` are MARS's error ratios, (P - TP) / union and
    (T - TP) / union, with P and T the predicted and ground-truth pixel counts.
    """

    matrix: np.ndarray
    aAcc: float
    mIoU: float
    mAcc: float
    iou: np.ndarray
    acc: np.ndarray
    fp_ratio: np.ndarray
    fn_ratio: np.ndarray
    absent: np.ndarray

    @property
    def num_classes(self) -> int:
        return int(self.matrix.shape[0])

    def summary(self) -> dict[str, float]:
        """The three headline numbers, keyed as mmsegmentation does."""
        return {"aAcc": self.aAcc, "mIoU": self.mIoU, "mAcc": self.mAcc}

    def to_dict(self, class_names: Sequence[str]) -> dict[str, Any]:
        """A JSON-ready dict (NaN as None) with per-class rows named by ``class_names``."""
        if len(class_names) != self.num_classes:
            raise ValueError(f"got {len(class_names)} class names for {self.num_classes} classes")
        per_class = [
            {
                "class": name,
                "IoU": _json_float(self.iou[i]),
                "Acc": _json_float(self.acc[i]),
                "FP_ratio": _json_float(self.fp_ratio[i]),
                "FN_ratio": _json_float(self.fn_ratio[i]),
                "absent": bool(self.absent[i]),
            }
            for i, name in enumerate(class_names)
        ]
        return {
            "unit": "percent",
            "ignore_index": IGNORE_INDEX,
            "absent_classes": "scores null, left out of mIoU and mAcc",
            "aAcc": _json_float(self.aAcc),
            "mIoU": _json_float(self.mIoU),
            "mAcc": _json_float(self.mAcc),
            "per_class": per_class,
            "confusion_matrix": self.matrix.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SegmentationResult:
        """Rebuild a result from :meth:`to_dict` output (null back to NaN)."""
        rows = data["per_class"]

        def column(key: str) -> np.ndarray:
            return np.array([_from_json_float(row[key]) for row in rows], dtype=np.float64)

        return cls(
            matrix=np.array(data["confusion_matrix"], dtype=np.int64),
            aAcc=_from_json_float(data["aAcc"]),
            mIoU=_from_json_float(data["mIoU"]),
            mAcc=_from_json_float(data["mAcc"]),
            iou=column("IoU"),
            acc=column("Acc"),
            fp_ratio=column("FP_ratio"),
            fn_ratio=column("FN_ratio"),
            absent=np.array([row["absent"] for row in rows], dtype=bool),
        )


def _json_float(value: float) -> float | None:
    value = float(value)
    return None if math.isnan(value) else value


def _from_json_float(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _mean_or_nan(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else math.nan


def scores_from_matrix(matrix: np.ndarray) -> SegmentationResult:
    """All scores of a ``(C, C)`` confusion matrix (rows ground truth, columns prediction)."""
    matrix = np.asarray(matrix, dtype=np.int64)
    true_positive = np.diag(matrix).astype(np.float64)
    gt_pixels = matrix.sum(axis=1).astype(np.float64)
    pred_pixels = matrix.sum(axis=0).astype(np.float64)
    union = gt_pixels + pred_pixels - true_positive
    absent = union == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(absent, np.nan, 100.0 * true_positive / union)
        acc = np.where(gt_pixels > 0, 100.0 * true_positive / gt_pixels, np.nan)
        fp_ratio = np.where(absent, np.nan, 100.0 * (pred_pixels - true_positive) / union)
        fn_ratio = np.where(absent, np.nan, 100.0 * (gt_pixels - true_positive) / union)
    total = gt_pixels.sum()
    return SegmentationResult(
        matrix=matrix,
        aAcc=float(100.0 * true_positive.sum() / total) if total > 0 else math.nan,
        mIoU=_mean_or_nan(iou[~absent]),
        mAcc=_mean_or_nan(acc[gt_pixels > 0]),
        iou=iou,
        acc=acc,
        fp_ratio=fp_ratio,
        fn_ratio=fn_ratio,
        absent=absent,
    )


class ConfusionMatrix:
    """A confusion matrix accumulated over any number of (prediction, ground truth) pairs.

    ``matrix`` is ``(C, C)`` int64 with rows = ground truth and columns = prediction. Partial
    matrices from workers or ranks combine with :meth:`merge` or ``+``.
    """

    def __init__(self, num_classes: int, matrix: np.ndarray | None = None) -> None:
        _check_num_classes(num_classes)
        self.num_classes = num_classes
        if matrix is None:
            self.matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
        else:
            matrix = np.array(matrix, dtype=np.int64)
            if matrix.shape != (num_classes, num_classes):
                raise ValueError(f"matrix shape {matrix.shape} does not match {num_classes} classes")
            self.matrix = matrix

    def update(self, pred: Any, gt: Any) -> None:
        """Count one prediction map against its ground truth (numpy arrays or torch tensors)."""
        self.matrix += confusion_matrix(pred, gt, self.num_classes)

    def merge(self, other: ConfusionMatrix) -> ConfusionMatrix:
        """Add another matrix's counts into this one (in place) and return self."""
        if other.num_classes != self.num_classes:
            raise ValueError(
                f"cannot merge {other.num_classes}-class counts into {self.num_classes}-class counts"
            )
        self.matrix += other.matrix
        return self

    def __add__(self, other: ConfusionMatrix) -> ConfusionMatrix:
        return ConfusionMatrix(self.num_classes, self.matrix).merge(other)

    def compute(self) -> SegmentationResult:
        """aAcc, mIoU, mAcc and the per-class scores of the counts so far."""
        return scores_from_matrix(self.matrix)


def _format_score(value: float, undefined: str) -> str:
    return undefined if math.isnan(value) else f"{value:.2f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], align_first_left: bool) -> list[str]:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def line(cells: Sequence[str], is_header: bool) -> str:
        parts = []
        for i, (cell, width) in enumerate(zip(cells, widths)):
            if is_header:
                parts.append(cell.center(width))
            elif i == 0 and align_first_left:
                parts.append(cell.ljust(width))
            else:
                parts.append(cell.rjust(width))
        return "| " + " | ".join(parts) + " |"

    return [rule, line(header, True), rule, *(line(row, False) for row in rows), rule]


def format_table(result: SegmentationResult, class_names: Sequence[str], show_errors: bool = False) -> str:
    """The per-class table users know from mmsegmentation (IoU and Acc, percent, two decimals),
    then aAcc / mIoU / mAcc; ``show_errors`` adds MARS's FP and FN ratio columns."""
    if len(class_names) != result.num_classes:
        raise ValueError(f"got {len(class_names)} class names for {result.num_classes} classes")
    header = ["Class", "IoU", "Acc"] + (["FP", "FN"] if show_errors else [])
    rows = []
    for i, name in enumerate(class_names):
        if result.absent[i]:
            rows.append([name] + ["absent"] * (len(header) - 1))
            continue
        row = [name, _format_score(result.iou[i], "-"), _format_score(result.acc[i], "no gt")]
        if show_errors:
            row += [_format_score(result.fp_ratio[i], "-"), _format_score(result.fn_ratio[i], "-")]
        rows.append(row)
    summary = [[_format_score(v, "nan") for v in (result.aAcc, result.mIoU, result.mAcc)]]
    lines = _table(header, rows, align_first_left=True)
    lines += _table(["aAcc", "mIoU", "mAcc"], summary, align_first_left=False)
    notes = []
    if result.absent.any():
        notes.append("absent: no pixel of the class in ground truth or prediction; left out of mIoU and mAcc")
    if np.any(~result.absent & np.isnan(result.acc)):
        notes.append("no gt: predicted but not in the ground truth; IoU 0, left out of mAcc")
    return "\n".join(lines + notes)


def save_json(result: SegmentationResult, path: str | os.PathLike, class_names: Sequence[str]) -> None:
    """Write :meth:`SegmentationResult.to_dict` to ``path`` atomically (NaN as null)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result.to_dict(class_names), indent=2, allow_nan=False)
    with atomic_write(path) as tmp:
        tmp.write_text(text + "\n", encoding="utf-8")


def load_json(path: str | os.PathLike) -> tuple[SegmentationResult, tuple[str, ...]]:
    """Read a file written by :func:`save_json`: the result and its class names."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return SegmentationResult.from_dict(data), tuple(row["class"] for row in data["per_class"])


def usable_cores() -> int:
    """CPU cores this process may run on (the affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _first_ids(ids: Sequence[str], count: int = 5) -> str:
    return ", ".join(ids[:count]) + (", ..." if len(ids) > count else "")


def _check_files_exist(folder: Path, ids: Sequence[str], what: str) -> None:
    missing = [image_id for image_id in ids if not (folder / f"{image_id}.png").is_file()]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} of {len(ids)} {what} PNGs are missing from {folder} "
            f"(first: {_first_ids(missing)}); every listed id needs <id>.png there"
        )


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _decode_unfiltered_png(data: bytes) -> np.ndarray | None:
    """Pixel values of an 8-bit palette or greyscale, non-interlaced PNG whose rows are all stored
    unfiltered (what Pillow writes for label maps, and how the VOC label PNGs are stored), or None
    for any other PNG. Inflating the data directly is about twice as fast as going through Pillow."""
    if not data.startswith(_PNG_SIGNATURE):
        return None
    header, compressed, pos = None, [], len(_PNG_SIGNATURE)
    while pos + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        body = memoryview(data)[pos + 8 : pos + 8 + length]
        if kind == b"IHDR" and length == 13:
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            compressed.append(body)
        elif kind == b"IEND":
            break
        pos += length + 12  # length, type, body, CRC
    if header is None:
        return None
    width, height, bit_depth, colour_type, _, _, interlace = header
    if bit_depth != 8 or colour_type not in (0, 3) or interlace:
        return None
    try:
        raw = zlib.decompress(b"".join(compressed))
    except zlib.error:
        return None
    if len(raw) != height * (width + 1):
        return None
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(height, width + 1)
    if rows[:, 0].any():  # a filter byte other than 0 ("None"): leave the unfiltering to Pillow
        return None
    return rows[:, 1:]


def read_label_fast(path: Path) -> np.ndarray:
    """A label PNG as a 2-D uint8 array: the direct path when the file allows it, else ``read_label_png``
    (which also reports unreadable or non-index files). OpenCV is no shortcut here: it expands
    palette PNGs to BGR even with IMREAD_UNCHANGED."""
    try:
        labels = _decode_unfiltered_png(path.read_bytes())
    except OSError:
        labels = None
    return labels if labels is not None else read_label_png(path)


def _folder_chunk_matrix(
    pred_dir: Path, gt_dir: Path, num_classes: int, ids: Sequence[str]
) -> tuple[np.ndarray, int]:
    """Summed confusion matrix of the ``<id>.png`` pairs of one chunk, and the chunk's length."""
    total = np.zeros((num_classes, num_classes), dtype=np.int64)
    for image_id in ids:
        pred_path = pred_dir / f"{image_id}.png"
        gt_path = gt_dir / f"{image_id}.png"
        pred = read_label_fast(pred_path)
        gt = read_label_fast(gt_path)
        if pred.shape != gt.shape:
            raise ValueError(
                f"{pred_path}: prediction is {pred.shape[0]}x{pred.shape[1]} (HxW) but ground truth {gt_path} "
                f"is {gt.shape[0]}x{gt.shape[1]}; predictions must be at the ground-truth resolution"
            )
        try:
            total += confusion_matrix(pred, gt, num_classes)
        except ValueError as err:
            raise ValueError(f"{gt_path}: {err}") from None
    return total, len(ids)


def map_id_chunks(
    count_chunk: Callable[[Sequence[str]], tuple[Any, int]],
    ids: Sequence[str],
    workers: int,
    progress: bool,
    desc: str,
    max_chunk: int = 64,
) -> Iterator[Any]:
    """Yield ``count_chunk(chunk)[0]`` for chunks of ``ids``, spread over ``workers`` processes.

    ``count_chunk`` returns (partial result, number of ids done). Several chunks per worker keep the
    progress bar moving and the load balanced; results arrive in any order, so they must be summable.
    """
    workers = max(1, min(workers, len(ids)))
    chunk_size = max(1, min(max_chunk, math.ceil(len(ids) / (workers * 8))))
    chunks = [ids[start : start + chunk_size] for start in range(0, len(ids), chunk_size)]
    with tqdm(total=len(ids), desc=desc, unit="img", disable=not progress) as bar:
        if workers == 1:
            for partial_result, done in map(count_chunk, chunks):
                bar.update(done)
                yield partial_result
        else:
            # Leaving the block terminates the pool, so a failing chunk stops the others at once.
            with Pool(workers) as pool:
                for partial_result, done in pool.imap_unordered(count_chunk, chunks):
                    bar.update(done)
                    yield partial_result


def evaluate_label_folders(
    pred_dir: str | os.PathLike,
    gt_dir: str | os.PathLike,
    ids: Sequence[str],
    num_classes: int,
    workers: int = 1,
    progress: bool = True,
) -> ConfusionMatrix:
    """Confusion matrix of ``pred_dir/<id>.png`` against ``gt_dir/<id>.png`` over ``ids``.

    With ``workers > 1`` the ids are split into chunks and each worker process decodes its chunk
    and returns one partial matrix, so only small matrices cross process boundaries. Raises
    FileNotFoundError listing missing files before any work starts, and ValueError naming the file
    for a size mismatch or an out-of-range ground-truth value.
    """
    if not ids:
        raise ValueError("the id list is empty; nothing to evaluate")
    pred_dir, gt_dir = Path(pred_dir), Path(gt_dir)
    _check_files_exist(pred_dir, ids, "prediction")
    _check_files_exist(gt_dir, ids, "ground-truth")
    count_chunk = partial(_folder_chunk_matrix, pred_dir, gt_dir, num_classes)
    result = ConfusionMatrix(num_classes)
    for matrix in map_id_chunks(count_chunk, ids, workers, progress, "evaluate", max_chunk=64):
        result.matrix += matrix
    return result
