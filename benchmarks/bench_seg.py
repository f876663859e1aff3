"""Benchmark the Segmenter: training images/s, test images/s (one scale, and multi-scale + flip), peak memory.

Builds the model of a segmentation config (default the shapes config: DeepLabV3+ on ResNet-10-T,
7 classes) with random weights and feeds it random images of --size px with block labels, so no
dataset is needed. Training runs mmengine's ``train_step`` (forward, loss, backward, optimizer step with
the config's optimizer); testing runs ``predict_label``, the per-image path of tools/test.py, at
one scale and with the six TTA scales plus flip. The first --warmup iterations are not timed.
Peak memory is the process's ru_maxrss (plus the CUDA allocator's peak on a GPU).

    python benchmarks/bench_seg.py
    python benchmarks/bench_seg.py --encoder tu-resnet101 --size 320 --batch 8 --train-iters 5
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from collections.abc import Callable, Sequence

import torch
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

from wsss.engine.config import load_config
from wsss.registry import MODELS
from wsss.segment.inference import predict_label
from wsss.segment.model import TTA_SCALES, Segmenter


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", default="configs/seg/deeplabv3plus_shapes.py", help="segmentation config")
    parser.add_argument(
        "--encoder", help="replace the config's encoder_name (e.g. tu-resnet101, tu-test_resnet)"
    )
    parser.add_argument("--size", type=int, default=96, help="square image side in pixels (default 96)")
    parser.add_argument("--batch", type=int, default=16, help="training batch size (default 16)")
    parser.add_argument("--train-iters", type=int, default=10, help="timed training iterations (default 10)")
    parser.add_argument("--test-images", type=int, default=32, help="timed test images per mode (default 32)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed iterations / images first (default 2)")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument(
        "--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu"
    )
    return parser.parse_args(argv)


def peak_memory_mib() -> float:
    """The process's peak resident memory so far (ru_maxrss is KiB on Linux), in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def block_batch(batch: int, size: int, num_classes: int, generator: torch.Generator) -> dict:
    """Random uint8 images and labels made of four class blocks each."""
    images = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, generator=generator)
    half = size // 2
    blocks = torch.randint(0, num_classes, (batch, 2, 2), generator=generator)
    labels = blocks.repeat_interleave(half, 1).repeat_interleave(half, 2)
    labels = torch.nn.functional.pad(labels, (0, size - 2 * half, 0, size - 2 * half), value=255)
    return {"inputs": images, "data_samples": [{"gt_seg": label} for label in labels]}


def timed(step: Callable[[int], None], count: int, warmup: int, device: torch.device) -> float:
    """Seconds for ``count`` calls of ``step`` after ``warmup`` untimed ones."""
    for index in range(warmup):
        step(index)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for index in range(count):
        step(index)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if min(args.size, args.batch, args.train_iters, args.test_images) < 1 or args.warmup < 0:
        raise SystemExit("error: --size, --batch, --train-iters and --test-images must be positive")
    if args.batch < 2:
        raise SystemExit("error: --batch must be at least 2 (BatchNorm in ASPP's pooling branch)")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    options = {"model.backbone_checkpoint": None}
    if args.encoder:
        options["model.encoder_name"] = args.encoder
    try:
        cfg = load_config(args.config, cfg_options=options)
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f"error: {err}") from None
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope("wsss"):
        model = MODELS.build(cfg.model).to(device)
    if not isinstance(model, Segmenter):
        raise SystemExit(f"error: {args.config} builds a {type(model).__name__}, not a Segmenter")
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    generator = torch.Generator().manual_seed(0)
    batches = [block_batch(args.batch, args.size, model.num_classes, generator) for _ in range(4)]
    images = [batch["inputs"][0] for batch in batches]
    print(
        f"{args.config}: {cfg.model.encoder_name}, {model.num_classes} classes, {args.size}x{args.size} px, "
        f"device {device}, {torch.get_num_threads()} threads"
    )

    model.train()
    seconds = timed(
        lambda i: model.train_step(batches[i % len(batches)], optim_wrapper),
        args.train_iters,
        args.warmup,
        device,
    )
    rate = args.train_iters * args.batch / seconds
    print(
        f"train (batch {args.batch}):        {rate:8.1f} images/s  ({1000 * seconds / args.train_iters:.0f} ms/iter)"
    )

    model.eval()
    for name, scales, flip in (
        ("test, one scale", (1.0,), False),
        ("test, 6 scales + flip", TTA_SCALES, True),
    ):
        seconds = timed(
            lambda i, s=scales, f=flip: predict_label(
                model, images[i % len(images)], (args.size, args.size), s, f
            ),
            args.test_images,
            args.warmup,
            device,
        )
        print(f"{name + ':':26s}{args.test_images / seconds:8.1f} images/s")
    print(f"peak memory (ru_maxrss):   {peak_memory_mib():8.0f} MiB")
    if device.type == "cuda":
        print(f"peak CUDA memory:          {torch.cuda.max_memory_allocated() / 2**20:8.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
