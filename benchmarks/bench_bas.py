"""Benchmark the BAS localizer: training step, seed generation speed, and seed generation memory.

(a) Training images/s of one BAS step (forward, the four losses, backward, SGD update) with our
    background branch (``call_frozen``: the live later stages run with detached parameters and
    cloned buffers) against the authors' way, a ``copy.deepcopy`` of the later stages and the
    classifier at every forward. Both start from the same weights, see the same batch and draw the
    same classes; their first-step losses are printed side by side as a check. The two take turns
    for --rounds rounds and each one's best round counts.
(b) Seed generation images/s (``wsss.localize.seeds.generate_seeds``: 4 scales + flips, one .npz
    per image) on --seed-images random images.
(c) Peak memory (RSS high-water mark, VmHWM) of seed generation over 100 and 1,000 tiny images
    with a random --memory-backbone model, each count in a fresh subprocess, with the RSS just
    before generation: the peak must not grow with the number of images.

    python benchmarks/bench_bas.py                                   # CPU-sized defaults
    python benchmarks/bench_bas.py --backbone resnet50 --size 224 --batch 8 --iters 20
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from wsss.data.dataset import ImageLabelDataset
from wsss.localize.bas import BAS
from wsss.localize.seeds import generate_seeds

BENCH_CLASSES = 21


class DeepCopyBAS(BAS):
    """The reference: the background branch on a fresh ``deepcopy`` of the later stages and classifier."""

    def erased_logits(self, x_mid: torch.Tensor, fg_mask: torch.Tensor) -> torch.Tensor:
        later = copy.deepcopy(self.backbone.mid_to_last)
        classifier = copy.deepcopy(self.classifier)
        for module in (later, classifier):
            module.requires_grad_(False)
        erased = x_mid.detach() * (1.0 - fg_mask)
        return classifier(later(erased)).mean(dim=(2, 3))


def random_batch(batch: int, size: int, num_classes: int, seed: int = 0) -> tuple[torch.Tensor, list[dict]]:
    """Normalised-looking inputs and samples with 1-3 random image-level classes each."""
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(batch, 3, size, size, generator=generator)
    samples = []
    for _ in range(batch):
        label = torch.zeros(num_classes - 1)
        count = int(torch.randint(1, 4, (1,), generator=generator))
        label[torch.randperm(num_classes - 1, generator=generator)[:count]] = 1.0
        samples.append({"cls_label": label})
    return inputs, samples


def train_step(
    model: BAS, optimizer: torch.optim.Optimizer, inputs: torch.Tensor, samples: list[dict]
) -> dict:
    losses = model.loss(inputs, samples)
    total = sum(value for key, value in losses.items() if "loss" in key)
    optimizer.zero_grad(set_to_none=True)
    total.backward()
    optimizer.step()
    return {key: float(value.detach()) for key, value in losses.items() if "loss" in key}


def bench_training(args: argparse.Namespace) -> None:
    torch.manual_seed(0)
    ours = BAS(num_classes=args.classes, backbone=dict(name=args.backbone, output_stride=16)).train()
    reference = DeepCopyBAS(
        num_classes=args.classes, backbone=dict(name=args.backbone, output_stride=16)
    ).train()
    reference.load_state_dict(ours.state_dict())
    inputs, samples = random_batch(args.batch, args.size, args.classes)
    optimizers = {
        name: torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
        for name, model in (("ours", ours), ("deepcopy", reference))
    }
    models = {"ours": ours, "deepcopy": reference}
    first = {}
    for name, model in models.items():
        torch.manual_seed(1)  # the same drawn classes for both
        first[name] = train_step(model, optimizers[name], inputs, samples)
    print(
        f"(a) BAS training step, {args.backbone} {args.size} px, batch {args.batch}, {args.classes} classes"
    )
    print("    first-step losses  " + "  ".join(f"{k}: ours {first['ours'][k]:.5f} / deepcopy {first['deepcopy'][k]:.5f}"
                                             for k in first["ours"]))  # fmt: skip
    best = dict.fromkeys(models, float("inf"))
    for _ in range(args.rounds):
        for name, model in models.items():
            for _ in range(args.warmup):
                train_step(model, optimizers[name], inputs, samples)
            start = time.perf_counter()
            for _ in range(args.iters):
                train_step(model, optimizers[name], inputs, samples)
            best[name] = min(best[name], time.perf_counter() - start)
    for name in models:
        print(f"    {name:9s} {args.batch * args.iters / best[name]:8.1f} images/s  "
              f"({best[name] / args.iters * 1000:.1f} ms/step, best of {args.rounds} rounds of {args.iters})")  # fmt: skip
    print(f"    speed-up of ours over deepcopy: x{best['deepcopy'] / best['ours']:.2f}")


def write_images(root: Path, count: int, size: int, num_classes: int) -> None:
    """A VOC-layout root of ``count`` random images with random image-level labels (cls_labels.json)."""
    rng = np.random.default_rng(0)
    (root / "JPEGImages").mkdir(parents=True)
    (root / "ImageSets" / "Segmentation").mkdir(parents=True)
    ids = [f"img_{i:05d}" for i in range(count)]
    labels = {}
    for image_id in ids:
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(
            root / "JPEGImages" / f"{image_id}.png"
        )
        labels[image_id] = sorted(
            int(c) for c in rng.choice(np.arange(1, num_classes), size=2, replace=False)
        )
    (root / "ImageSets" / "Segmentation" / "train.txt").write_text("".join(f"{i}\n" for i in ids))
    (root / "cls_labels.json").write_text(json.dumps(labels))


def seed_model(args: argparse.Namespace, backbone: str) -> BAS:
    torch.manual_seed(0)
    return BAS(num_classes=args.classes, backbone=dict(name=backbone, output_stride=16)).eval()


def seed_dataset(root: Path, count: int, num_classes: int) -> ImageLabelDataset:
    return ImageLabelDataset(root, split="train", classes=[str(i) for i in range(num_classes)],
                             label_dir=None, with_mask=False, max_images=count)  # fmt: skip


def bench_seed_speed(args: argparse.Namespace, work: Path) -> None:
    root = work / "speed"
    write_images(root, args.seed_images, args.seed_size, args.classes)
    model = seed_model(args, args.backbone)
    dataset = seed_dataset(root, args.seed_images, args.classes)
    generate_seeds(model, dataset, work / "warmup", workers=0, progress=False)  # first-call overheads
    start = time.perf_counter()
    counts = generate_seeds(model, dataset, work / "seeds", workers=args.workers, progress=False)
    elapsed = time.perf_counter() - start
    print(f"(b) seed generation, {args.backbone}, {args.seed_size} px, scales 1.0/0.5/1.5/2.0 + flips, "
          f"{args.workers} loader workers: {counts.written / elapsed:.1f} images/s "
          f"({elapsed / counts.written * 1000:.1f} ms/image over {counts.written})")  # fmt: skip


def proc_status_kib(field: str) -> int:
    """A memory field of /proc/self/status in KiB: ``VmRSS`` (now) or ``VmHWM`` (peak of this program)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise OSError(f"no {field} in /proc/self/status")


def memory_child(root: Path, count: int, out: Path, args: argparse.Namespace) -> None:
    """Run in a fresh process: generate ``count`` seeds and print the RSS before and the peak (KiB) as JSON.

    The peak is VmHWM, the high-water mark of this program's memory since exec. ``ru_maxrss`` is not
    used: Linux carries the parent's RSS at fork time into the child's ``ru_maxrss`` across exec, so
    a child of a large parent would report the parent's size.
    """
    model = seed_model(args, args.memory_backbone)
    dataset = seed_dataset(root, count, args.classes)
    before = proc_status_kib("VmRSS")
    generate_seeds(model, dataset, out, workers=0, progress=False)
    print(json.dumps({"count": count, "rss_before_kib": before, "peak_kib": proc_status_kib("VmHWM")}))


def bench_seed_memory(args: argparse.Namespace, work: Path) -> None:
    root = work / "memory"
    write_images(root, max(args.memory_counts), args.memory_size, args.classes)
    print(f"(c) seed generation memory, {args.memory_backbone}, {args.memory_size} px, a fresh process per count, "
          "no loader workers")  # fmt: skip
    for count in args.memory_counts:
        command = [sys.executable, __file__, "--memory-child", str(root), str(count), str(work / f"mem_{count}"),
                   "--memory-backbone", args.memory_backbone, "--classes", str(args.classes), "--threads", str(args.threads)]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=True)
        figures = json.loads(result.stdout.strip().splitlines()[-1])
        growth = figures["peak_kib"] - figures["rss_before_kib"]
        print(f"    {count:6d} images: RSS before {figures['rss_before_kib'] / 1024:7.1f} MiB, "
              f"peak {figures['peak_kib'] / 1024:7.1f} MiB (+{growth / 1024:.1f} MiB during generation)")  # fmt: skip


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backbone", default="resnet18", help="timm backbone (default resnet18)")
    parser.add_argument("--size", type=int, default=96, help="training crop size (default 96)")
    parser.add_argument("--batch", type=int, default=16, help="training batch size (default 16)")
    parser.add_argument("--iters", type=int, default=5, help="timed training steps per round (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps before each round (default 1)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per variant (default 3)")
    parser.add_argument(
        "--classes", type=int, default=BENCH_CLASSES, help="classes with background (default 21)"
    )
    parser.add_argument("--seed-images", type=int, default=32, help="images for the seed speed (default 32)")
    parser.add_argument(
        "--seed-size", type=int, default=96, help="image size for the seed speed (default 96)"
    )
    parser.add_argument(
        "--workers", type=int, default=0, help="loader workers for the seed speed (default 0)"
    )
    parser.add_argument("--memory-counts", type=int, nargs="+", default=[100, 1000], help="default 100 1000")
    parser.add_argument(
        "--memory-backbone",
        default="test_resnet",
        help="random model of the memory runs (default timm's tiny test_resnet, so 1,000 images take a minute)",
    )
    parser.add_argument(
        "--memory-size", type=int, default=64, help="image size for the memory runs (default 64)"
    )
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)), help="torch CPU threads")
    parser.add_argument(
        "--skip", nargs="+", choices=["train", "speed", "memory"], default=[], help="parts to skip"
    )
    parser.add_argument("--memory-child", nargs=3, metavar=("ROOT", "COUNT", "OUT"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.memory_child:
        root, count, out = args.memory_child
        memory_child(Path(root), int(count), Path(out), args)
        return 0
    print(f"torch {torch.__version__}, {args.threads} CPU threads, CUDA not used")
    if "train" not in args.skip:
        bench_training(args)
    work = Path(tempfile.mkdtemp(prefix="bench_bas_"))
    try:
        if "speed" not in args.skip:
            bench_seed_speed(args, work)
        if "memory" not in args.skip:
            bench_seed_memory(args, work)
    finally:
        shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
