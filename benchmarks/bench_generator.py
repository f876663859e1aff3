"""Benchmark the generators' sampling code paths; prints images/s.

Released path (``wsss.synth.released``): a tiny random SD-Turbo-shaped and InstaFlow-shaped folder
(written with ``wsss.synth.released.tiny``) loaded through ``load_released`` and sampled in batches
of --batch-size at --latent-size (images are twice that) for --repeat rounds; the best round counts.
The model is tiny, so the figure measures the toolkit's and diffusers' per-call overhead (text
encoding, scheduler, seeding, uint8 conversion), not a real checkpoint's UNet.

    python benchmarks/bench_generator.py --batch-size 8 --latent-size 16 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch


def bench_released(args: argparse.Namespace) -> None:
    from wsss.synth.released import load_released
    from wsss.synth.released.tiny import write_tiny_pipeline

    with tempfile.TemporaryDirectory() as tmp:
        folders = {
            "sd-turbo": write_tiny_pipeline(
                Path(tmp) / "turbo",
                latent_size=args.latent_size,
                scheduler_config={"timestep_spacing": "trailing"},
            ),  # fmt: skip
            "instaflow": write_tiny_pipeline(Path(tmp) / "instaflow", latent_size=args.latent_size),
        }
        for family, folder in folders.items():
            generator = load_released(folder, family, args.device)
            prompts = [f"a cat {i}" for i in range(args.batch_size)]
            best = float("inf")
            for round_index in range(args.repeat + 1):  # round 0 warms up
                started = time.perf_counter()
                generator.sample(prompts, list(range(args.batch_size)), generator.default_steps, 0.0)
                if round_index:
                    best = min(best, time.perf_counter() - started)
            figures = {"path": "released", "family": family, "device": args.device, "batch": args.batch_size,
                       "side": generator.resolution, "images_per_s": round(args.batch_size / best, 1)}  # fmt: skip
            print(json.dumps(figures))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--latent-size", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    bench_released(args)


if __name__ == "__main__":
    main()
