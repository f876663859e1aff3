"""Find every image's nearest neighbours by a frozen backbone's global descriptor (STEGO's kNN pairs)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from wsss.cli import extract_features
from wsss.cli.common import (
    add_cfg_options,
    add_data_root,
    add_device,
    add_progress,
    check_device,
    check_output_file,
    check_positive,
    entry_point,
    make_parser,
)
from wsss.engine.config import load_config
from wsss.engine.datasets import seed_dataset
from wsss.engine.inference import build_model
from wsss.features.extract import check_feature_model
from wsss.features.knn import global_descriptors, nearest_neighbours, save_neighbours

DESCRIPTION = """\
Runs the backbone of a feature config (STEGO's `backbone`, or the model itself) on every image of
--split resized to --size x --size, averages its feature map into one descriptor per image, and
writes each image's --k most similar other images (cosine) to --out, as STEGO's configs read it
(dataset type NeighbourPairs, `neighbours=`). STEGO precomputes 30 and samples among the first 7.

  python tools/find_neighbours.py configs/features/stego_vitb8_voc.py --out work_dirs/voc_knn.json \\
      --split train_aug --data-root data/VOCdevkit/VOC2012 --k 30 --size 224
"""


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(DESCRIPTION)
    parser.add_argument("config", help="a feature config (configs/features/*)")
    parser.add_argument("--out", required=True, type=Path, help="neighbours JSON file to write")
    parser.add_argument("--split", default="train", help="split list (default train)")
    parser.add_argument("--k", type=int, default=30, help="neighbours kept per image (default 30)")
    parser.add_argument("--size", type=int, default=224, help="side the images are resized to (default 224)")
    add_data_root(parser)
    add_cfg_options(parser, what="the feature config")
    add_device(parser)
    add_progress(parser)
    return parser


def find(args: argparse.Namespace) -> int:
    check_positive(args.k, "--k")
    check_positive(args.size, "--size", 16)
    check_device(args.device)
    check_output_file(args.out, "--out")
    cfg = load_config(args.config, data_root=args.data_root, cfg_options=args.cfg_options)
    model_cfg = cfg.model.get("backbone", cfg.model) if cfg.model.get("type") == "STEGO" else cfg.model
    cfg.model = model_cfg
    model = check_feature_model(build_model(cfg), args.config).to(args.device).eval()
    dataset = seed_dataset(cfg, args.split, extract_features.DATASET_KEYS)
    descriptors = global_descriptors(model, dataset, args.size, not args.no_progress)
    neighbours = nearest_neighbours(descriptors, list(dataset.img_ids), args.k)
    save_neighbours(args.out, neighbours, args.k, args.size)
    print(f"{len(neighbours)} images of split {args.split!r}: {args.k} neighbours each in {args.out}")
    return 0


main = entry_point(find, build_parser)


if __name__ == "__main__":
    sys.exit(main())
