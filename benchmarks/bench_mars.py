"""MARS debiasing speed and memory at VOC scale, on random features drawn in memory (no disk).

Each image has a D x S x S feature grid (default D = 70, S = 64: STEGO's ViT-B/8 grid of a 512 px
image) and a base pseudo label at stride 8 with background and one or two foreground classes. Pass 1
clusters every image's classes and scores the centroids with the library's own pass-1 functions
(``wsss.debias.run.cluster_dataset`` and ``score_centroids``, the code tools/mars.py runs);
pass 2 computes every image's debiased score map and binarises it (threshold: the CRF's cost is the
image's, not MARS's, and is timed separately per image). Memory is the process's peak RSS, so run one
size per process to compare (``--compare`` does: 1,000 vs 10,000 images).

  python benchmarks/bench_mars.py --images 10582 --workers 2
  python benchmarks/bench_mars.py --compare
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from functools import partial

import numpy as np
import torch

from wsss.debias.mars import MARSSettings, binarize, debias_label, debiased_score, resize_score
from wsss.debias.run import CHUNK, cluster_dataset, score_centroids
from wsss.parallel import process_pool

STRIDE = 8


def sample(index: int, dim: int, grid: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random features, their cell labels and the pixel labels of one image (deterministic by index)."""
    rng = np.random.default_rng(index)
    features = rng.standard_normal((dim, grid, grid), dtype=np.float32)
    cells = np.zeros((grid, grid), np.int64)
    for cls in rng.choice(np.arange(1, 21), size=int(rng.integers(1, 3)), replace=False):
        top, left = rng.integers(0, grid // 2, size=2)
        cells[top : top + grid // 3, left : left + grid // 3] = cls
    return features, cells, np.kron(cells, np.ones((STRIDE, STRIDE), np.int64)).astype(np.uint8)


def sample_cells(image_id: str, dim: int, grid: int) -> tuple[np.ndarray, np.ndarray]:
    """Pass 1's sample loader: features and cell labels of image ``image_id`` (its index)."""
    return sample(int(image_id), dim, grid)[:2]


def debias_chunk(task: tuple[int, int, int, int, np.ndarray]) -> int:
    start, stop, dim, grid, debiased = task
    settings = MARSSettings(binarize="threshold")
    biased = 0
    for i in range(start, stop):
        features, cells, label = sample(i, dim, grid)
        classes = [int(c) for c in np.unique(cells) if c > 0]
        score = resize_score(debiased_score(features, debiased, classes), label.shape, STRIDE)
        biased += int((debias_label(label, binarize(score, settings)) == 254).sum())
    return biased


def peak_rss_mib() -> float:
    """The largest resident set of this process or any of its finished children, in MiB."""
    return (
        max(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
        )
        / 1024
    )


def run(count: int, dim: int, grid: int, workers: int) -> None:
    torch.set_num_threads(1)
    libraries = peak_rss_mib()
    ids = [str(i) for i in range(count)]
    settings = MARSSettings(binarize="threshold")
    start = time.perf_counter()
    per_image = cluster_dataset(
        partial(sample_cells, dim=dim, grid=grid), ids, settings, workers, progress=False
    )
    table = score_centroids(per_image, ids, settings.alpha, 21)
    pass1 = time.perf_counter() - start
    start = time.perf_counter()
    tasks = [(s, min(s + CHUNK, count), dim, grid, table.debiased) for s in range(0, count, CHUNK)]
    with process_pool(workers) as pool:
        sum(pool.imap_unordered(debias_chunk, tasks))
    pass2 = time.perf_counter() - start
    peak = peak_rss_mib()
    print(f"{count} images, D={dim}, {grid}x{grid} grid, {workers} workers: pass 1 {pass1:.1f} s "
          f"({count / pass1:.0f} img/s), pass 2 {pass2:.1f} s ({count / pass2:.0f} img/s), total "
          f"{(pass1 + pass2) / 60:.1f} min; {len(table.classes)} centroids "
          f"({table.centroids.nbytes / 2**20:.1f} MiB); peak RSS of one process {peak:.0f} MiB, "
          f"{peak - libraries:.0f} MiB above the libraries' {libraries:.0f} MiB")  # fmt: skip


def crf_cost(size: int = 500, repeats: int = 3) -> None:
    """Seconds per image of the mask CRF at a VOC-like image size."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (size * 3 // 4, size, 3), dtype=np.uint8)
    score = rng.random((size * 3 // 4, size)).astype(np.float32)
    start = time.perf_counter()
    for _ in range(repeats):
        binarize(score, MARSSettings(), image)
    print(
        f"mask CRF on a {size}x{size * 3 // 4} image: {(time.perf_counter() - start) / repeats:.2f} s per image"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=10582)
    parser.add_argument("--dim", type=int, default=70)
    parser.add_argument("--grid", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--compare", action="store_true", help="1,000 vs 10,000 images, one process each")
    parser.add_argument("--crf", action="store_true", help="also time the mask CRF per image")
    args = parser.parse_args()
    if args.compare:
        for count in (1000, 10000):
            subprocess.run(
                [sys.executable, __file__, "--images", str(count), "--workers", str(args.workers)], check=True
            )
    else:
        run(args.images, args.dim, args.grid, args.workers)
    if args.crf:
        crf_cost()


if __name__ == "__main__":
    main()
