"""Draw images with their seeds, pseudo labels, predictions and ground truth as one PNG grid."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from wsss.cli.common import UserError, check_input_dir, check_output_file, entry_point, make_parser
from wsss.data.classes import CLASS_NAMES_FILE, class_names_from_spec, resolve_class_names
from wsss.data.dataset import read_split
from wsss.fileio import save_png_atomic
from wsss.visualize.grid import build_grid, render_grid

DESCRIPTION = """\
One row per image (the first --n ids of --list), one column per source:
  image          the original image;
  seeds          each --seeds folder of seed maps (<id>.npz) as a heat overlay (blue 0 .. red 1): the
                 maximum over its classes, or with --per-class (one folder) one column per class;
  labels         each --labels folder of label PNGs (pseudo labels, debiased labels, predictions) in
                 VOC colours over the image (background dimmed, 255 ignore and 254 biased in their own);
  ground truth   --gt label PNGs, drawn the same way.
Each row is captioned with the image id and its classes; a legend names the colours. The PNG is
written atomically.

  python tools/visualize.py --images VOC2012/JPEGImages --list VOC2012/ImageSets/Segmentation/train.txt \\
      --seeds work_dirs/bas/seeds --labels work_dirs/bas/pseudo --gt VOC2012/SegmentationClass --out grid.png
"""


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(DESCRIPTION)
    parser.add_argument("--images", required=True, type=Path, help="folder of the original images <id>.jpg")
    parser.add_argument("--list", required=True, type=Path, help="split file; the first --n ids are drawn")
    parser.add_argument(
        "--seeds", type=Path, nargs="+", default=[], metavar="DIR", help="folders of seed files <id>.npz"
    )
    parser.add_argument("--labels", type=Path, nargs="+", action="extend", default=[], metavar="DIR",
                        help="folders of label PNGs <id>.png (pseudo labels, predictions): a column each")  # fmt: skip
    parser.add_argument("--heat", type=Path, nargs="+", default=[], metavar="DIR",
                        help="folders of greyscale score PNGs <id>.png (0..255; e.g. MARS's scores/): a heat column each")  # fmt: skip
    parser.add_argument("--gt", type=Path, help="folder of ground-truth label PNGs <id>.png")
    parser.add_argument("--n", type=int, default=16, help="number of images (rows), default 16")
    parser.add_argument(
        "--per-class", action="store_true", help="one seed column per class instead of the maximum"
    )
    parser.add_argument("--cell", type=int, default=160, help="size of a cell in pixels (default 160)")
    parser.add_argument(
        "--classes", help=f"'voc', 'coco' or a class-names file (default: {CLASS_NAMES_FILE} beside --images)"
    )
    parser.add_argument("--out", type=Path, default=Path("grid.png"), help="output PNG (default grid.png)")
    return parser


def draw(args: argparse.Namespace) -> int:
    if not args.seeds and not args.labels and not args.heat and args.gt is None:
        raise UserError("give at least one of --seeds, --heat, --labels, --gt")
    if args.n < 1 or args.cell < 16:
        raise UserError(f"--n must be at least 1 and --cell at least 16, got {args.n} and {args.cell}")
    check_output_file(args.out, "--out")
    check_input_dir(args.images, "--images", "folder of the original images")
    for flag, folders in (
        ("--seeds", args.seeds),
        ("--labels", args.labels),
        ("--gt", [args.gt] if args.gt else []),
    ):
        for folder in folders:
            check_input_dir(folder, flag)
    root = args.images.parent
    class_names = (
        class_names_from_spec(args.classes, root) if args.classes else resolve_class_names(None, root)
    )
    ids = read_split(args.list)[: args.n]
    grid = build_grid(
        args.images, ids, class_names, args.seeds, args.labels, args.gt, args.per_class, args.heat
    )
    image = render_grid(grid, class_names, args.cell)
    save_png_atomic(args.out, image)
    print(
        f"wrote {args.out}: {len(grid.rows)} rows x {len(grid.titles)} columns ({image.width}x{image.height} px)"
    )
    return 0


main = entry_point(draw, build_parser)


if __name__ == "__main__":
    sys.exit(main())
