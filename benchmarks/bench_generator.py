"""Benchmark the generators' sampling code paths; prints images/s.

Flow path (``wsss.synth.flow``): the model of --flow-config (random weights, a one-sentence
vocabulary) sampled in batches of --batch-size with 1 and --steps Euler steps at guidance 1 (one
network call per step; guidance other than 1 doubles the batch), and trained: images/s of loss,
backward and AdamW step on batches of --train-batch images (the config's own 32 by default).

Released path (``wsss.synth.released``): a tiny random SD-Turbo-shaped and InstaFlow-shaped folder
(written with ``wsss.synth.released.tiny``) loaded through ``load_released`` and sampled in batches
of --batch-size at --latent-size (images are twice that) for --repeat rounds; the best round counts.
The model is tiny, so the figure measures the toolkit's and diffusers' per-call overhead (text
encoding, scheduler, seeding, uint8 conversion), not a real checkpoint's UNet.

    python benchmarks/bench_generator.py --batch-size 8 --latent-size 16 --repeat 3
    python benchmarks/bench_generator.py --only flow --batch-size 64 --steps 25
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


def best_seconds(run, repeat: int) -> float:
    """The fastest of ``repeat`` timed calls of ``run`` after one untimed warm-up call."""
    run()
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        if torch.cuda.is_available():
            torch.cuda.synchronize()  # GPU work is asynchronous: wait for it before reading the clock
        best = min(best, time.perf_counter() - started)
    return best


def bench_flow(args: argparse.Namespace) -> None:
    from wsss.engine.config import load_config
    from wsss.engine.inference import build_model
    from wsss.synth.flow.generator import FlowGenerator
    from wsss.synth.flow.vocabulary import Vocabulary

    torch.manual_seed(0)
    model = build_model(load_config(args.flow_config)).to(args.device)
    model.text_encoder.set_vocabulary(Vocabulary.from_captions(["a small red boat on the water"], ["boat"]))
    generator = FlowGenerator(model, batch_size=args.batch_size)
    prompts, seeds = ["a small red boat on the water"] * args.batch_size, list(range(args.batch_size))
    rates = {}
    for steps in (1, args.steps):
        seconds = best_seconds(lambda n=steps: generator.sample(prompts, seeds, n, 1.0), args.repeat)
        rates[steps] = args.batch_size / seconds
    size = model.image_size
    print(json.dumps({"path": "flow", "config": args.flow_config, "device": args.device, "side": size,
                      "batch": args.batch_size, "images_per_s_1_step": round(rates[1], 1),
                      f"images_per_s_{args.steps}_steps": round(rates[args.steps], 2),
                      "one_step_speed_up": round(rates[1] / rates[args.steps], 1)}))  # fmt: skip
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    images = torch.rand(args.train_batch, 3, size, size, device=args.device) * 2 - 1
    samples = [{"caption": prompts[0]} for _ in range(args.train_batch)]

    def train_step() -> None:
        optimizer.zero_grad()
        sum(model.loss(images, samples).values()).backward()
        optimizer.step()

    seconds = best_seconds(train_step, args.repeat)
    print(json.dumps({"path": "flow-train", "config": args.flow_config, "device": args.device,
                      "batch": args.train_batch, "images_per_s": round(args.train_batch / seconds, 1)}))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--latent-size", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--only", choices=("released", "flow"), help="run one section (default both)")
    parser.add_argument("--flow-config", default="configs/synth/rf1_shapes.py")
    parser.add_argument("--steps", type=int, default=25, help="Euler steps of the multi-step flow figure")
    parser.add_argument("--train-batch", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.only != "flow":
        bench_released(args)
    if args.only != "released":
        bench_flow(args)


if __name__ == "__main__":
    main()
