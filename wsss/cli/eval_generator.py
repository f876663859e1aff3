"""Evaluate a flow generator offline: trajectory straightness, the one-step gap, and image grids."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from wsss.cli.common import (
    UserError,
    add_cfg_options,
    add_device,
    check_device,
    check_input_dir,
    check_output_dir,
    check_positive,
    entry_point,
    make_parser,
)  # fmt: skip
from wsss.data.captioned import CaptionedImageDataset
from wsss.data.image_io import read_image
from wsss.data.shapes import CONTEXT_DIR
from wsss.engine.config import load_config
from wsss.engine.inference import classifier_from_checkpoint
from wsss.evaluation.context import read_contexts
from wsss.fileio import save_png_atomic, write_json_atomic
from wsss.synth.flow.evaluation import measure, sample_grid
from wsss.synth.flow.generator import load_flow_generator
from wsss.synth.following import balanced_accuracy, context_following, context_presence, fit_presence_probe
from wsss.synth.quality import classify_images, generated_quality, multi_hot

DESCRIPTION = """\
Measures a trained flow model (CONFIG, CHECKPOINT: a .pth or a training work dir) on two prompt sets:
'classes' (one prompt per class, "a boat", ...) and 'captions' (the first caption of each of the first
--count images of --split of --data-root). Each prompt gets its own noise seed (--seed + its index).

* straightness: E over the --steps Euler steps of || (x1 - x0) - v(x_t, t) ||^2 along the model's own
  path (0 = straight; mean over images and pixels on the [-1, 1] scale);
* one-step gap: mean squared difference of the one-step and the --steps-step images of the same noise.

With --classifier CONFIG CHECKPOINT (a CAM or BAS model trained on the real images of --data-root),
--count images per set are also generated at 1 and --steps steps ('classes': the class prompts in
turn; 'captions': as above, each image prompted with its real image's classes) and judged by it
(wsss.synth.quality): label fidelity (mAP and exact-match rate of the classes prompted, scores at
least --threshold), KID (mean, std over subsets) and precision/recall (k = 3) in its pooled
features against the --count real images of --split.

With --contexts (and --classifier; --data-root needs ContextMasks/, as tools/make_shapes.py writes),
prompt following for contexts (wsss.synth.following): a context probe (logistic regression on the
classifier's pooled features) is fitted on the train split's real images and checked on the --count
of --split (balanced accuracy); then "a <class> on <context>" and "a <class>" for every class and
context, --context-seeds images each at 1 and --steps steps, count as followed when the probe sees
the context exactly where it was asked for.

Writes OUT/metrics.json (both sets, timings) and OUT/grid_<set>.png: one row per prompt, columns
1 step and --steps steps for --grid-seeds seeds.

  python tools/eval_generator.py configs/synth/rf2_shapes.py work_dirs/rf2 --data-root data/shapes32 \\
      --out work_dirs/rf2/eval --steps 20 --classifier configs/bas/cam_shapes.py work_dirs/cam
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
    parser.add_argument("--classifier", nargs=2, metavar=("CONFIG", "CHECKPOINT"),
                        help="judge the images with this classifier of the real data (fidelity, KID, precision/recall)")  # fmt: skip
    parser.add_argument("--threshold", type=float, default=0.5, help="score a class must reach (default 0.5)")
    parser.add_argument("--contexts", action="store_true",
                        help="also measure prompt following for the contexts of --data-root's ContextMasks/")  # fmt: skip
    parser.add_argument(
        "--context-seeds", type=int, default=10, help="images per context prompt (default 10)"
    )
    add_cfg_options(parser, "--classifier-cfg-options", "the --classifier config")
    add_device(parser)
    return parser


def evaluate(args: argparse.Namespace) -> int:
    for flag, value in (("--count", args.count), ("--steps", args.steps), ("--grid-seeds", args.grid_seeds),
                        ("--context-seeds", args.context_seeds)):  # fmt: skip
        check_positive(value, flag)
    check_positive(args.seed, "--seed", 0)
    if not 0.0 < args.threshold < 1.0:
        raise UserError(f"--threshold is a sigmoid score in (0, 1), got {args.threshold}")
    check_device(args.device)
    check_input_dir(args.data_root, "--data-root", "dataset folder")
    if args.contexts:
        if not args.classifier:
            raise UserError(
                "--contexts judges images in the classifier's features; give --classifier CONFIG CHECKPOINT"
            )
        check_input_dir(
            args.data_root / CONTEXT_DIR,
            "--contexts",
            "context-mask folder (tools/make_shapes.py writes one)",
        )
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
    if args.classifier:
        report["quality"] = judge(args, generator, dataset, guidance)
    write_json_atomic(args.out / "metrics.json", report)
    return 0


def judge(args: argparse.Namespace, generator, dataset: CaptionedImageDataset, guidance: float) -> dict:
    """Fidelity, KID and precision/recall of both quality sets at 1 and --steps steps, printed and returned."""
    cfg = load_config(args.classifier[0], data_root=args.data_root, cfg_options=args.classifier_cfg_options)
    model, pipeline = classifier_from_checkpoint(cfg, args.classifier[1], args.device, dataset.num_classes,
                                                 needs="embedding")  # fmt: skip

    def classify(images):
        return classify_images(model, list(images), pipeline, embed=True)

    count = min(args.count, len(dataset))
    real = classify([read_image(path) for path in dataset.img_paths[:count]])[1]
    classes = list(generator.model.vocabulary.classes)
    unknown = [c for c in classes if c not in dataset.class_names[1:]]
    if unknown:
        raise UserError(f"{args.data_root}: the generator knows classes {unknown} that the dataset has not; "
                        "give the --data-root the generator was trained on")  # fmt: skip
    class_prompts = [classes[i % len(classes)] for i in range(count)]
    sets = {
        "classes": (
            [f"a {c}" for c in class_prompts],
            [[dataset.class_names.index(c)] for c in class_prompts],
        ),
        "captions": ([texts[0] for texts in dataset.captions[:count]], dataset.cls_labels[:count]),
    }
    report = {"real_images": count, "split": args.split}
    for name, (prompts, labels) in sets.items():
        seeds = list(range(args.seed, args.seed + len(prompts)))
        prompted = multi_hot(labels, dataset.num_classes - 1)
        report[name] = generated_quality(generator, classify, real, prompts, seeds, prompted, [1, args.steps],
                                         guidance, args.threshold)  # fmt: skip
        for steps, row in report[name].items():
            shown_map = "n/a" if row["mAP"] is None else f"{row['mAP']:.1f}"
            print(f"{name}, {steps} step{'s' * (steps != '1')}: mAP {shown_map}, exact match "
                  f"{row['exact_match']:.1f}%, KID {row['kid']:.4f} +- {row['kid_std']:.4f}, "
                  f"precision {row['precision']:.1f}%, recall {row['recall']:.1f}%")  # fmt: skip
    if args.contexts:
        report["contexts"] = judge_contexts(args, generator, dataset, classify, real, classes, guidance)
    return report


def judge_contexts(args: argparse.Namespace, generator, dataset: CaptionedImageDataset, classify, real,
                   classes: list[str], guidance: float) -> dict:  # fmt: skip
    """The context probe's accuracy on real images, and prompt following at 1 and --steps steps."""
    context_dir = args.data_root / CONTEXT_DIR
    contexts = read_contexts(context_dir, dataset.class_names)
    values = sorted(contexts)
    names = [contexts[value][0] for value in values]
    train = CaptionedImageDataset(args.data_root, split="train", random_caption=False)
    fitting = classify([read_image(path) for path in train.img_paths])[1]
    probe = fit_presence_probe(fitting, context_presence(context_dir, train.img_ids, values))
    held_out = context_presence(context_dir, dataset.img_ids[: len(real)], values)
    accuracy = balanced_accuracy(probe.probabilities(real), held_out)
    report = {"probe": {"fitted_on": len(train), "checked_on": args.split, "held_out": args.split != "train",
                        "balanced_accuracy": dict(zip(names, accuracy))}}  # fmt: skip
    print("context probe (balanced accuracy on real images): "
          + ", ".join(f"{n} {a:.1f}%" for n, a in zip(names, accuracy)))  # fmt: skip
    seeds = list(range(args.seed, args.seed + args.context_seeds))
    for steps in dict.fromkeys((1, args.steps)):
        result = context_following(generator, lambda images: classify(images)[1], probe, classes, names, seeds,
                                   steps, guidance)  # fmt: skip
        report[str(steps)] = result
        print(f"prompt following, {steps} step{'s' * (steps != 1)}: " + ", ".join(
            f"{n} {r['both']:.1f}% (asked {r['asked']:.1f}%, left out {r['left_out']:.1f}%)" for n, r in result.items()))  # fmt: skip
    return report


main = entry_point(evaluate, build_parser)


if __name__ == "__main__":
    sys.exit(main())
