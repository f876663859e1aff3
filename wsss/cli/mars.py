"""MARS: mark the biased objects (rails labelled train, water labelled boat) in base pseudo labels."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from wsss.cli import common
from wsss.data.classes import class_names_from_spec, resolve_class_names
from wsss.data.dataset import read_split
from wsss.debias.run import load_settings, run_mars
from wsss.engine.config import read_config

DESCRIPTION = """\
Per image and class of the base pseudo labels (--pseudo, any WSSS method's label PNGs), k-means on that
class's unsupervised features (--features, from tools/extract_features.py); each foreground centroid is
scored by its mean cosine distance to every background centroid of the dataset, and the farthest
alpha share of each class is averaged into its debiased centroid. Pixels of a class whose features are
not like any of the image's debiased centroids (after the mask's CRF or threshold) become biased.

Output: OUT/<id>.png, the base labels with biased pixels set to 254 (0 background, 1..C classes, 254
biased, 255 ignore; VOC palette), OUT/scores/<id>.png (the debiased mask's score x 255), OUT/centroids.npz
(every centroid with its image, class, score and selection; the debiased centroids) and
OUT/manifest.json (settings, counts, and per class the share of its pixels marked biased). Resumable;
a folder made with other settings is refused. Train a segmenter on OUT with configs/seg/deeplabv3plus_mars_*.py.

  python tools/mars.py configs/debias/mars_voc.py --pseudo work_dirs/pseudo --features work_dirs/features \\
      --images data/VOCdevkit/VOC2012/JPEGImages --out work_dirs/debiased --workers 8
"""


def build_parser() -> argparse.ArgumentParser:
    parser = common.make_parser(DESCRIPTION)
    parser.add_argument(
        "config", help="MARS config with a `mars = dict(...)`, e.g. configs/debias/mars_voc.py"
    )
    parser.add_argument(
        "--pseudo", required=True, type=Path, help="folder of base pseudo-label PNGs <id>.png"
    )
    parser.add_argument("--features", required=True, type=Path, help="folder of feature files <id>.npz")
    parser.add_argument("--images", type=Path, help="folder of the images (needed by the mask's CRF)")
    parser.add_argument("--out", required=True, type=Path, help="output folder for the debiased labels")
    parser.add_argument("--list", type=Path, help="split file of the ids (default: every PNG in --pseudo)")
    parser.add_argument(
        "--classes", help="'voc', 'coco' or a class_names.txt (default: beside --images, else VOC)"
    )
    common.add_cfg_options(parser, what="the MARS config (e.g. mars.alpha=0.3)")
    common.add_workers(parser, "worker processes")
    common.add_progress(parser)
    return parser


def debias(args: argparse.Namespace) -> int:
    common.check_positive(args.workers, "--workers")
    common.check_input_dir(args.pseudo, "--pseudo", "folder of base pseudo labels")
    common.check_output_dir(args.out, "--out")
    if not Path(args.config).is_file():
        raise common.UserError(f"{args.config}: config not found; see configs/debias/")
    cfg = read_config(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    settings = load_settings(dict(cfg.get("mars", {})))
    if settings.binarize == "crf":
        common.require_crf()
    root = args.images.parent if args.images is not None else args.pseudo.parent
    names = class_names_from_spec(args.classes, root) if args.classes else resolve_class_names(None, root)
    ids = read_split(args.list) if args.list else sorted(p.stem for p in args.pseudo.glob("*.png"))
    manifest = run_mars(args.pseudo, args.features, args.out, ids, names, settings, args.images, args.workers,
                        not args.no_progress)  # fmt: skip
    print(f"{len(ids)} images debiased into {args.out}")
    for name, row in manifest["per_class"].items():
        if row["pixels"]:
            print(f"  {name}: {100 * row['biased_share']:.1f}% of its pixels marked biased")
    return 0


main = common.entry_point(debias, build_parser)


if __name__ == "__main__":
    sys.exit(main())
