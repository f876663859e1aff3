"""Benchmark feature extraction: images/s of a feature model (multi-scale + flip, the tool's path) and
peak memory for a small and a large number of images (flat: each image's features are written and
dropped).

Images are random, generated in memory, so no dataset is needed; features are written to a
temporary folder exactly as tools/extract_features.py writes them. Single process, CPU unless
--device says otherwise. Peak memory is the process's ru_maxrss; run each count in a fresh
process (--counts runs them as subprocesses) so one does not inherit the other's peak.

    python benchmarks/bench_features.py --model scratch --size 96
    python benchmarks/bench_features.py --model vit_small_patch8_224 --size 224 --images 20
    python benchmarks/bench_features.py --model scratch --counts 100 1000
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from wsss.features.extract import ExtractionSettings, multiscale_features
from wsss.features.io import feature_path, save_feature_file
from wsss.features.scratch import IICFeatureNet
from wsss.features.vit import DinoViT
from wsss.nn.preprocessor import normalized_image


def build(model: str) -> torch.nn.Module:
    """The from-scratch recipe's network, or a timm DINO ViT of that name, with random weights."""
    return (IICFeatureNet(feature_dim=64, width=16) if model == "scratch" else DinoViT(model)).eval()


def run(args: argparse.Namespace) -> None:
    torch.manual_seed(0)
    model = build(args.model).to(args.device)
    settings = ExtractionSettings(tuple(args.scales), args.flip)
    generator = torch.Generator().manual_seed(0)
    with tempfile.TemporaryDirectory() as folder, torch.inference_mode():
        start = None
        for index in range(args.images + args.warmup):
            if index == args.warmup:
                start = time.perf_counter()
            image = torch.randint(0, 256, (3, args.size, args.size), dtype=torch.uint8, generator=generator)
            features = multiscale_features(model, normalized_image(model, image.to(args.device)), settings)
            save_feature_file(feature_path(folder, f"{index:06d}"), features.cpu().numpy(), model.stride,
                              (args.size, args.size))  # fmt: skip
        seconds = time.perf_counter() - start
        written = sum(p.stat().st_size for p in Path(folder).glob("*.npz"))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{args.model} at {args.size} px, scales {args.scales}, flip {args.flip}, {torch.get_num_threads()} threads: "
          f"{args.images / seconds:.1f} images/s, D={model.feature_dim}, stride {model.stride}, "
          f"{written / (args.images + args.warmup) / 1024:.0f} KiB per file, peak memory {peak:.0f} MiB "
          f"({args.images} images)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="scratch", help="'scratch' or a timm ViT name (default scratch)")
    parser.add_argument("--size", type=int, default=96, help="image side in pixels (default 96)")
    parser.add_argument("--images", type=int, default=100, help="timed images (default 100)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed images first (default 3)")
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 0.5, 1.5])
    parser.add_argument("--flip", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--counts", type=int, nargs="+", help="run once per count in a fresh process (memory)"
    )
    args = parser.parse_args()
    if args.counts:
        for count in args.counts:
            command = [sys.executable, __file__, "--model", args.model, "--size", str(args.size), "--images",
                       str(count), "--device", args.device, "--scales", *map(str, args.scales)]  # fmt: skip
            subprocess.run([*command, "--flip" if args.flip else "--no-flip"], check=True)
    else:
        run(args)


if __name__ == "__main__":
    main()
