"""Make reflow pairs: (noise, ODE sample, caption) triples of a trained flow model, for the next reflow."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from wsss.cli.common import (
    add_device,
    add_progress,
    check_device,
    check_input_dir,
    check_output_dir,
    check_positive,
    entry_point,
    make_parser,
)  # fmt: skip
from wsss.data.captioned import CaptionedImageDataset
from wsss.engine.checkpoint import resolve_checkpoint
from wsss.synth.flow.generator import load_flow_generator
from wsss.synth.flow.pairs import write_pairs

DESCRIPTION = """\
Draw --count noise images, integrate the flow ODE of a trained model (CONFIG, CHECKPOINT: a .pth or a
training work dir) from each with --steps Euler steps at --guidance, conditioned on a caption drawn
from the training captions of --data-root (split --split), and keep the (noise, image, caption)
triples as the training set of the next rectified flow (configs/synth/rf2_shapes.py) or of the
one-step distillation (configs/synth/distill_shapes.py). Pair i depends on --seed and i only.

Output: OUT/pairs.json (settings, the model's vocabulary) and OUT/pairs_NNNNN.npz shards of
--shard-size pairs (noise, x1: float32 N x 3 x H x W on the [-1, 1] scale; captions; seeds).
Resumable: whole shards are skipped, each is written under a temporary name and renamed; a folder
holding pairs of other settings is refused.

  python tools/make_reflow_pairs.py configs/synth/rf1_shapes.py work_dirs/rf1 --data-root data/shapes32 \\
      --out work_dirs/rf1_pairs --count 2000
"""


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(DESCRIPTION)
    parser.add_argument("config", help="config of the flow model, e.g. configs/synth/rf1_shapes.py")
    parser.add_argument("checkpoint", help="its weights (.pth written by tools/train.py, or its work dir)")
    parser.add_argument(
        "--data-root", required=True, type=Path, help="dataset whose captions condition the pairs"
    )
    parser.add_argument("--split", default="train", help="split whose captions are drawn (default train)")
    parser.add_argument("--out", required=True, type=Path, help="output folder for the pair shards")
    parser.add_argument("--count", type=int, default=2000, help="number of pairs (default 2000)")
    parser.add_argument("--shard-size", type=int, default=250, help="pairs per shard file (default 250)")
    parser.add_argument("--steps", type=int, default=20, help="Euler steps of the ODE (default 20)")
    parser.add_argument("--guidance", type=float, help="classifier-free guidance (default: the model's)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise and caption draws (default 0)")
    parser.add_argument("--batch-size", type=int, default=125, help="images integrated at once (default 125)")
    add_device(parser)
    add_progress(parser)
    return parser


def make(args: argparse.Namespace) -> int:
    for flag, value in (("--count", args.count), ("--shard-size", args.shard_size), ("--steps", args.steps),
                        ("--batch-size", args.batch_size)):  # fmt: skip
        check_positive(value, flag)
    check_positive(args.seed, "--seed", 0)
    check_device(args.device)
    check_input_dir(args.data_root, "--data-root", "dataset folder")
    check_output_dir(args.out, "--out")
    checkpoint = resolve_checkpoint(args.checkpoint)
    generator = load_flow_generator(args.config, checkpoint, args.device)
    generator.batch_size = args.batch_size
    captions = CaptionedImageDataset(args.data_root, split=args.split).all_captions()
    guidance = generator.default_guidance if args.guidance is None else args.guidance
    started = time.perf_counter()
    source = {"config": str(args.config), "checkpoint": str(checkpoint), "data_root": str(args.data_root),
              "split": args.split}  # fmt: skip
    counts = write_pairs(generator, captions, args.out, args.count, args.shard_size, args.steps, guidance,
                         args.seed, source=source, progress=not args.no_progress)  # fmt: skip
    seconds = time.perf_counter() - started
    print(f"wrote {counts['written']} shards ({counts['skipped']} already whole) of {args.count} pairs to {args.out} "
          f"in {seconds:.1f} s ({args.steps} steps, guidance {guidance:g})")  # fmt: skip
    return 0


main = entry_point(make, build_parser)


if __name__ == "__main__":
    sys.exit(main())
