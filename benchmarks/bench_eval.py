"""Benchmark eval_seg's folder evaluation against the plain single-process loop of IRN / chainercv.

Writes N synthetic VOC-size (500x375) prediction / ground-truth label PNG pairs that look like
segmentation labels (filled polygons and ellipses on background, 255 bands along the ground-truth
boundaries, predictions shifted / eroded / dilated copies with a few spurious blobs), then times
(a) ``evaluate_label_folders`` (eval_seg's code path) with --workers processes and with one, and
(b) a plain loop: PIL decode + per-image masked ``np.bincount``. The methods take turns for --repeat
rounds and each one's best wall time and best CPU time count (CPU time per pair is the figure that
other load on a shared machine barely moves); the confusion matrices must be identical.

    python benchmarks/bench_eval.py --n 1449 --workers 2
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from tqdm import tqdm

from wsss.data.label_io import IGNORE_INDEX, write_label_png
from wsss.evaluation.folders import evaluate_label_folders
from wsss.parallel import usable_cores

NUM_CLASSES = 21
HEIGHT, WIDTH = 375, 500


def _draw_random_shape(canvas: np.ndarray, value: int, rng: np.random.Generator) -> None:
    """Paint one filled ellipse or star-shaped polygon of ``value`` somewhere on ``canvas``."""
    height, width = canvas.shape
    center = (int(rng.integers(0, width)), int(rng.integers(0, height)))
    if rng.random() < 0.5:
        axes = (int(rng.integers(15, 160)), int(rng.integers(15, 160)))
        cv2.ellipse(canvas, center, axes, float(rng.uniform(0, 180)), 0, 360, value, thickness=-1)
    else:
        corners = int(rng.integers(3, 10))
        angles = np.sort(rng.uniform(0, 2 * np.pi, corners))
        radii = rng.uniform(25, 170, corners)
        points = np.stack([center[0] + radii * np.cos(angles), center[1] + radii * np.sin(angles)], axis=1)
        cv2.fillPoly(canvas, [points.astype(np.int32)], value)


def make_pair(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A (prediction, ground truth) pair of uint8 label maps in the VOC style."""
    labels = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    for _ in range(int(rng.integers(1, 5))):
        _draw_random_shape(labels, int(rng.integers(1, NUM_CLASSES)), rng)
    # The prediction: shifted, opened or closed, plus a spurious blob now and then.
    pred = np.roll(labels, tuple(int(s) for s in rng.integers(-8, 9, size=2)), axis=(0, 1))
    kernel = np.ones((int(rng.integers(1, 5)) * 2 + 1,) * 2, dtype=np.uint8)
    pred = cv2.morphologyEx(pred, cv2.MORPH_OPEN if rng.random() < 0.5 else cv2.MORPH_CLOSE, kernel)
    if rng.random() < 0.5:
        _draw_random_shape(pred, int(rng.integers(0, NUM_CLASSES)), rng)
    # VOC draws a 255 band about 5 pixels wide along object boundaries.
    boundary = cv2.morphologyEx(labels, cv2.MORPH_GRADIENT, np.ones((3, 3), dtype=np.uint8)) > 0
    boundary = cv2.dilate(boundary.astype(np.uint8), np.ones((4, 4), dtype=np.uint8)) > 0
    gt = labels.copy()
    gt[boundary] = IGNORE_INDEX
    return pred, gt


def write_dataset(root: Path, count: int, seed: int) -> list[str]:
    """Write ``count`` pairs as ``root/{pred,gt}/<id>.png``; returns the ids."""
    rng = np.random.default_rng(seed)
    ids = [f"bench_{i:06d}" for i in range(count)]
    for image_id in tqdm(ids, desc="write PNGs", unit="pair"):
        pred, gt = make_pair(rng)
        write_label_png(root / "pred" / f"{image_id}.png", pred)
        write_label_png(root / "gt" / f"{image_id}.png", gt)
    return ids


def plain_loop(root: Path, ids: Sequence[str]) -> np.ndarray:
    """The usual single-process loop: PIL decode, mask out 255, bincount of C * gt + pred per image."""
    matrix = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
    for image_id in ids:
        pred = np.asarray(Image.open(root / "pred" / f"{image_id}.png"))
        gt = np.asarray(Image.open(root / "gt" / f"{image_id}.png"))
        valid = gt != IGNORE_INDEX
        codes = NUM_CLASSES * gt[valid].astype(np.int64) + pred[valid]
        matrix += np.bincount(codes, minlength=NUM_CLASSES**2).reshape(NUM_CLASSES, NUM_CLASSES)
    return matrix


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished (waited-for) worker processes."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def best_times(
    methods: dict[str, Callable[[], np.ndarray]], repeat: int
) -> dict[str, tuple[float, float, np.ndarray]]:
    """Each method's shortest wall time and shortest CPU time over ``repeat`` rounds, and its matrix.

    The methods take turns within each round, so load from other processes on a shared machine hits
    them alike; CPU time is the figure that such load barely moves.
    """
    best: dict[str, tuple[float, float, np.ndarray]] = {}
    for _ in range(repeat):
        for name, run in methods.items():
            wall, cpu = time.perf_counter(), _cpu_seconds()
            matrix = run()
            wall, cpu = time.perf_counter() - wall, _cpu_seconds() - cpu
            if name in best:
                wall, cpu = min(wall, best[name][0]), min(cpu, best[name][1])
            best[name] = (wall, cpu, matrix)
    return best


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=1449, help="number of pairs (default: VOC val, 1449)")
    parser.add_argument(
        "--workers",
        type=int,
        default=usable_cores(),
        help="eval_seg worker processes (default: cores)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each method; the best counts")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the synthetic labels")
    parser.add_argument(
        "--keep-dir", type=Path, help="write the PNGs here and keep them (default: a temp dir)"
    )
    args = parser.parse_args(argv)
    if args.n < 1 or args.workers < 1 or args.repeat < 1:
        raise SystemExit("error: --n, --workers and --repeat must be at least 1")

    root = args.keep_dir if args.keep_dir is not None else Path(tempfile.mkdtemp(prefix="bench_eval_"))
    try:
        ids = write_dataset(root, args.n, args.seed)
        methods = {"plain": lambda: plain_loop(root, ids)}
        for workers in sorted({1, args.workers}):
            methods[f"eval_seg, {workers} worker(s)"] = lambda w=workers: (
                evaluate_label_folders(
                    root / "pred", root / "gt", ids, NUM_CLASSES, workers=w, progress=False
                ).matrix
            )
        timings = best_times(methods, args.repeat)
    finally:
        if args.keep_dir is None:
            shutil.rmtree(root, ignore_errors=True)

    plain_wall, plain_cpu, plain_matrix = timings.pop("plain")
    print(
        f"{args.n} pairs of {WIDTH}x{HEIGHT}, {NUM_CLASSES} classes, best of {args.repeat} interleaved rounds"
    )
    print(f"load average at the end: {os.getloadavg()[0]:.2f} on {usable_cores()} usable cores")
    print(
        f"{'plain loop (PIL + masked bincount), 1 process:':<47}{args.n / plain_wall:8.1f} pairs/s  "
        f"{1000 * plain_cpu / args.n:6.3f} CPU ms/pair"
    )
    for name, (wall, cpu, matrix) in timings.items():
        if not np.array_equal(matrix, plain_matrix):
            raise AssertionError(f"{name} and the plain loop give different confusion matrices")
        print(
            f"{name + ':':<47}{args.n / wall:8.1f} pairs/s  {1000 * cpu / args.n:6.3f} CPU ms/pair  "
            f"({plain_wall / wall:.2f}x the plain loop's pairs/s)"
        )
    print("confusion matrices identical: yes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
