"""Evaluate a flow generator offline: trajectory straightness, the one-step gap, and image grids."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from wsss.cli.common import (
    add_device,
    check_device,
    check_input_dir,
    check_output_dir,
    check_positive,
    make_parser,
    run,
)  # fmt: skip
from wsss.data.captioned import CaptionedImageDataset
from wsss.fileio import save_png_atomic, write_json_atomic
from wsss.synth.flow.evaluation import measure, sample_grid
from wsss.synth.flow.generator import load_flow_generator

DESCRIPTION = """\
Measures a trained flow model (CONFIG, CHECKPOINT: a .pth or a training work dir) on two prompt sets:
'classes' (one prompt per class, "a boat", ...) and 'captions' (the first caption of each of the first
--count images of --split of --data-root). Each prompt gets its own noise seed (--seed + its index).

* straightness: E over the --steps Euler steps of || (x1 - x0) - v(x_t, t) ||^2 along the model's own
  path (0 = straight; mean over images and pixels on the [-1, 1] scale);
* one-step gap: mean squared difference of the one-step and the --steps-step images of the same noise.

Writes OUT/metrics.json (both sets, timings) and OUT/grid_<set>.png: one row per prompt, columns
1 step and --steps steps for --grid-seeds seeds. Label fidelity under the project's classifier and a
kernel distance (KID) in its features are not measured yet.

  python tools/eval_generator.py configs/synth/rf2_shapes.py work_dirs/rf2 --data-root data/shapes32 \\
      --out work_dirs/rf2/eval --steps 20
"""


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(DESCRIPTION)
    parser.add_argument("config", help="config of the flow model, e.g. configs/synth/rf1_shapes.py")
    parser.add_argument("checkpoint", help="its weights (.pth written by tools/train.py, or its work dir)")
    parser.add_argument(
        "--data-root", required=True, type=Path, help="dataset whose captions are the prompts"
    )
    parser.add_argument("--split", default="val", help="split whose captions are the prompts (default val)")
    parser.add_argument("--out", required=True, type=Path, help="folder for metrics.json and the grids")
    parser.add_argument("--count", type=int, default=100, help="caption prompts measured (default 100)")
    parser.add_argument(
        "--steps", type=int, default=20, help="Euler steps of the reference path (default 20)"
    )
    parser.add_argument("--guidance", type=float, help="classifier-free guidance (default: the model's)")
    parser.add_argument(
        "--seed", type=int, default=1000, help="noise seed of the first prompt (default 1000)"
    )
    parser.add_argument("--grid-seeds", type=int, default=4, help="seeds per grid row (default 4)")
    add_device(parser)
    return parser


def evaluate(args: argparse.Namespace) -> int:
    for flag, value in (("--count", args.count), ("--steps", args.steps), ("--grid-seeds", args.grid_seeds)):
        check_positive(value, flag)
    check_positive(args.seed, "--seed", 0)
    check_device(args.device)
    check_input_dir(args.data_root, "--data-root", "dataset folder")
    check_output_dir(args.out, "--out")
    generator = load_flow_generator(args.config, args.checkpoint, args.device)
    guidance = generator.default_guidance if args.guidance is None else args.guidance
    dataset = CaptionedImageDataset(args.data_root, split=args.split, random_caption=False)
    prompt_sets = {
        "classes": [f"a {name}" for name in generator.model.vocabulary.classes],
        "captions": [texts[0] for texts in dataset.captions[: args.count]],
    }
    report = {"model": generator.name, "config": str(args.config), "checkpoint": str(args.checkpoint),
              "default_steps": generator.default_steps, "sets": {}}  # fmt: skip
    for name, prompts in prompt_sets.items():
        started = time.perf_counter()
        seeds = list(range(args.seed, args.seed + len(prompts)))
        report["sets"][name] = {**measure(generator, prompts, seeds, args.steps, guidance),
                                "seconds": round(time.perf_counter() - started, 2)}  # fmt: skip
        rows = prompts if name == "classes" else prompts[: len(prompt_sets["classes"])]
        grid = sample_grid(
            generator, rows, list(range(args.seed, args.seed + args.grid_seeds)), [1, args.steps], guidance
        )
        save_png_atomic(args.out / f"grid_{name}.png", grid)
        result = report["sets"][name]
        print(f"{name}: {result['images']} prompts, straightness {result['straightness']:.5f}, "
              f"one-step gap {result['one_step_gap']:.5f} ({args.steps} steps, guidance {guidance:g})")  # fmt: skip
    write_json_atomic(args.out / "metrics.json", report)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run(evaluate, build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
