"""Generate synthetic training images from prompts with a one-step generator, as a VOC-layout dataset."""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch.distributed as dist

from wsss.cli.common import (
    UserError,
    add_cfg_options,
    add_model_run_flags,
    check_device,
    check_output_dir,
    check_positive,
    entry_point,
    make_parser,
)  # fmt: skip
from wsss.data.classes import read_class_names
from wsss.engine.launch import launched
from wsss.manifest import check_folder_settings
from wsss.synth.dataset import generate_images, plan_images, write_index
from wsss.synth.generator import TextToImageGenerator
from wsss.synth.prompt_file import PromptEntry, prompt_labels, read_prompts
from wsss.synth.released.families import FAMILIES
from wsss.synth.released.loader import DTYPES

DESCRIPTION = """\
Make one image per prompt with a released generator (--generator FOLDER: a local diffusers folder of
InstaFlow, SD-Turbo, SDXL-Turbo, DMD2 or an LCM-style model such as SLAM; never downloaded) or one
trained here (--config CFG --checkpoint CKPT), and write OUT in VOC layout: JPEGImages/synth_<i>.jpg,
ImageSets/Segmentation/train.txt, manifest.json (per image: prompt, seed, generator, steps, guidance)
and, with --classes, class_names.txt and cls_labels.json (the classes each prompt names), so the
data stage reads OUT like any dataset.

--prompts: one prompt per line, or JSONL ({"prompt": ..., "classes": [names], "seed": n}); image i
gets seed --seed + i unless its line gives one, so the same seed gives the same image in any batch.
Resumable: finished images are skipped (each records its prompt and seed), a folder made with
another generator, steps or guidance is refused. Under torchrun rank r makes images r, r+W, ...
A generator trained here reads only the words of its training captions: --drop-unknown-words leaves
the others out of each prompt (the image keeps the classes of the prompt as written), and
--cfg-options are the options it was trained with.

  python tools/generate_synthetic.py --generator checkpoints/sd-turbo --prompts prompts.txt \\
      --classes data/VOCdevkit/VOC2012/class_names.txt --out data/synth_voc --batch-size 8
  python -m torch.distributed.run --nproc_per_node 4 tools/generate_synthetic.py --generator \\
      checkpoints/sdxl-base --unet-weights dmd2_sdxl_1step_unet.bin --prompts p.jsonl --out data/s --launcher pytorch
"""


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(DESCRIPTION)
    parser.add_argument(
        "--generator", type=Path, metavar="FOLDER", help="local folder of a released diffusers pipeline"
    )
    parser.add_argument(
        "--family", choices=list(FAMILIES), help="its family (default: detected from model_index.json)"
    )
    parser.add_argument("--unet-weights", type=Path, metavar="FILE",
                        help="DMD2: its UNet weights file, loaded into the base pipeline of --generator")  # fmt: skip
    parser.add_argument("--dtype", choices=list(DTYPES),
                        help="released models: precision (default float16 on CUDA, float32 on CPU)")  # fmt: skip
    parser.add_argument("--config", help="config of a generator trained here (with --checkpoint)")
    parser.add_argument("--checkpoint", help="its trained weights (with --config)")
    add_cfg_options(parser, what="the --config of a generator trained here (the options it was trained with)")
    parser.add_argument("--drop-unknown-words", action="store_true",
                        help="generators trained here: leave out the words of a prompt the model does not know "
                             "(e.g. the planner's 'a photo of'); the manifest records the text it read")  # fmt: skip
    parser.add_argument(
        "--prompts", required=True, type=Path, metavar="FILE", help="prompt file (text or JSONL)"
    )
    parser.add_argument("--classes", type=Path, metavar="FILE",
                        help="class_names.txt (background first): every prompt must name one; writes cls_labels.json")  # fmt: skip
    parser.add_argument(
        "--steps", type=int, help="sampling steps (default: the generator's, 1 for one-step models)"
    )
    parser.add_argument("--guidance", type=float,
                        help="classifier-free guidance scale (default: the generator's, else 0 = none)")  # fmt: skip
    parser.add_argument("--batch-size", type=int, default=4, help="images per generator call (default 4)")
    parser.add_argument("--seed", type=int, default=0, help="base seed: image i gets seed+i (default 0)")
    parser.add_argument(
        "--out", required=True, type=Path, metavar="DIR", help="output folder (created if missing)"
    )
    add_model_run_flags(parser, loader_workers=False)
    return parser


def _quiet_diffusers() -> None:
    """No per-component loading bars or advice from diffusers/transformers: the tool shows one bar of its own."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    for library in (diffusers_logging, transformers_logging):
        library.set_verbosity_error()
        library.disable_progress_bar()


def load_generator(args: argparse.Namespace, device: Any) -> tuple[TextToImageGenerator, str]:
    """The generator the flags name, and the source the manifest records (folder or checkpoint, resolved)."""
    if args.generator is not None:
        from wsss.synth.released.loader import import_diffusers, load_released

        try:
            import_diffusers()
        except ImportError as err:
            raise UserError(f"--generator: {err}") from None
        _quiet_diffusers()
        generator = load_released(args.generator, args.family, device, args.dtype, args.unet_weights)
        source = str(args.generator.resolve())
        return generator, source if args.unet_weights is None else f"{source} + {args.unet_weights.resolve()}"
    from wsss.engine.config import load_config
    from wsss.synth.flow.generator import load_flow_generator  # only for generators trained here

    cfg = load_config(args.config, cfg_options=args.cfg_options)
    return load_flow_generator(cfg, args.checkpoint, device), str(Path(args.checkpoint).resolve())


def keep_known_words(entries: list[PromptEntry], generator: TextToImageGenerator,
                     path: Path) -> tuple[list[PromptEntry], dict[str, int]]:  # fmt: skip
    """``--drop-unknown-words``: each prompt as the generator's vocabulary reads it, and how often each word was left out."""
    vocabulary = getattr(generator, "vocabulary", None)
    if vocabulary is None:
        raise UserError(f"--drop-unknown-words: {generator.name} has no word list (released models read any "
                        "text); leave the flag out")  # fmt: skip
    kept, dropped = [], Counter()
    for entry in entries:
        text, unknown = vocabulary.keep_known(entry.prompt)
        dropped.update(unknown)
        if not vocabulary.classes_in(text):
            raise UserError(f"{path}:{entry.line}: {entry.prompt!r} names no class the generator knows once its "
                            f"unknown words {unknown} are left out; it knows {', '.join(vocabulary.classes)}")  # fmt: skip
        kept.append(replace(entry, prompt=text))
    return kept, dict(sorted(dropped.items()))


def check_flags(args: argparse.Namespace) -> None:
    released, own = args.generator is not None, args.config is not None or args.checkpoint is not None
    if released == own:
        raise UserError("give either --generator FOLDER (a released model) or --config CFG --checkpoint CKPT")
    if own and (args.config is None or args.checkpoint is None):
        raise UserError("--config and --checkpoint go together; give both")
    if released and (args.cfg_options or args.drop_unknown_words):
        raise UserError(
            "--cfg-options and --drop-unknown-words are for --config; leave them out with --generator"
        )
    if own and (args.family or args.unet_weights or args.dtype):
        raise UserError(
            "--family, --unet-weights and --dtype are for --generator; leave them out with --config"
        )
    if args.steps is not None:
        check_positive(args.steps, "--steps")
    check_positive(args.batch_size, "--batch-size")
    check_positive(args.seed, "--seed", 0)
    check_device(args.device)


def generate(args: argparse.Namespace) -> int:
    check_flags(args)
    entries = read_prompts(args.prompts)
    class_names = read_class_names(args.classes) if args.classes is not None else None
    if class_names is None and any(entry.classes is not None for entry in entries):
        line = next(entry.line for entry in entries if entry.classes is not None)
        raise UserError(
            f"{args.prompts}:{line}: gives classes but there is no --classes file to index them; pass --classes"
        )
    labels = prompt_labels(entries, class_names, args.prompts) if class_names is not None else None
    check_output_dir(args.out, "--out")
    with launched(args.device, args.launcher) as (device, rank, world_size):
        generator, source = load_generator(args, device)
        steps = generator.default_steps if args.steps is None else args.steps
        guidance = float(generator.default_guidance if args.guidance is None else args.guidance)
        settings = {"generator": generator.name, "source": source, "steps": steps, "guidance": guidance,
                    "resolution": generator.resolution}  # fmt: skip
        if args.drop_unknown_words:
            entries, dropped = keep_known_words(entries, generator, args.prompts)
            settings["unknown_words"] = "dropped"
            if rank == 0 and dropped:
                print("left out words the generator does not know: "
                      + ", ".join(f"{word} ({count})" for word, count in dropped.items()))  # fmt: skip
        plan = plan_images(entries, args.seed, labels)
        check_folder_settings(args.out, settings)
        if rank == 0:
            write_index(args.out, plan, settings, steps, guidance, class_names)
        started = time.perf_counter()
        written, existing = generate_images(generator, plan, args.out, steps, guidance, args.batch_size, rank,
                                            world_size, progress=rank == 0 and not args.no_progress)  # fmt: skip
        seconds = time.perf_counter() - started
        if dist.is_initialized():
            dist.barrier()
        if rank == 0:
            finished = write_index(args.out, plan, settings, steps, guidance, class_names)
            print(f"{finished} of {len(plan)} images in {args.out} ({generator.name}, {steps} steps, guidance {guidance:g}): "
                  f"rank 0 wrote {written} ({existing} already there) at {written / max(seconds, 1e-9):.2f} images/s")  # fmt: skip
    return 0


main = entry_point(generate, build_parser)


if __name__ == "__main__":
    sys.exit(main())
