"""What every tool shares: the one-line error path, common flags, output checks, optional-package guards.

A user's mistake (a missing file, a wrong format, a bad flag value) ends a tool with one line
``error: <file>: <what is wrong>; <what to do>`` on stderr and exit code 2, never a traceback;
``--debug`` shows the traceback instead. Tools raise :class:`UserError` (or the library's
``FileNotFoundError`` / ``ValueError`` with such a message) and :func:`run` does the rest.
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from mmengine.config import DictAction

from wsss.parallel import usable_cores, watch_parent_if_asked

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a tool cut off by `head`


class UserError(Exception):
    """A mistake in what the user gave; its message is printed as one line and the tool exits with 2."""


# Errors that mean "bad input", whichever layer raised them.
INPUT_ERRORS: tuple[type[BaseException], ...] = (
    UserError,
    FileNotFoundError,
    NotADirectoryError,
    IsADirectoryError,
    PermissionError,
    ValueError,
    pickle.UnpicklingError,
)


def one_line(err: BaseException) -> str:
    """The innermost message of an input error, on one line.

    mmengine and DataLoader workers re-raise a builder's or worker's error with their own prefix or
    a whole traceback; the innermost error of the same kinds holds the user's problem.
    """
    # Only implicit chains: a message raised ``from`` another (or ``from None``) already says what matters.
    while (
        isinstance(err.__context__, INPUT_ERRORS)
        and str(err.__context__)
        and err.__cause__ is None
        and not err.__suppress_context__
    ):
        err = err.__context__
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    if not lines:
        return type(err).__name__
    if len(lines) == 1:
        return lines[0]
    # A worker's re-raised traceback ends with "SomeError: message".
    return lines[-1].split(": ", 1)[-1] if lines[0].startswith("Caught") else " ".join(lines)


def make_parser(description: str, epilog: str | None = None) -> argparse.ArgumentParser:
    """An argument parser that keeps the description's layout and knows ``--debug``."""
    parser = argparse.ArgumentParser(
        description=description, epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    return parser


def run(main: Callable[[argparse.Namespace], int | None], parser: argparse.ArgumentParser,
        argv: Sequence[str] | None = None) -> int:  # fmt: skip
    """Parse ``argv``, call ``main(args)`` and turn input errors into one line and exit code 2."""
    args = parser.parse_args(argv)
    watch_parent_if_asked()  # a pipeline stage ends with the pipeline, even one killed with SIGKILL
    try:
        return int(main(args) or 0)
    except INPUT_ERRORS as err:
        if getattr(args, "debug", False):
            raise
        print(f"error: {one_line(err)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted; run the same command again to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader of stdout went away (`--dry-run | head`): stop quietly, as Unix tools do, and
        # point stdout at devnull so that flushing it at exit raises nothing more.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


def entry_point(command: Callable[[argparse.Namespace], int | None],
                build_parser: Callable[[], argparse.ArgumentParser]) -> Callable[..., int]:  # fmt: skip
    """A tool's ``main(argv=None) -> exit code``: a fresh parser per call and ``command`` under :func:`run`."""

    def main(argv: Sequence[str] | None = None) -> int:
        return run(command, build_parser(), argv)

    return main


# --- common flags ----------------------------------------------------------------------------------


class CfgOptionsAction(DictAction):
    """mmengine's ``KEY=VALUE`` parser, with a usage error (not a traceback) for an item without ``=``."""

    def __call__(self, parser, namespace, values, option_string=None):
        bad = [value for value in values if "=" not in value]
        if bad:
            raise argparse.ArgumentError(self, f"expected KEY=VALUE items, got {bad[0]!r}")
        super().__call__(parser, namespace, values, option_string)


def add_cfg_options(
    parser: argparse.ArgumentParser,
    flag: str = "--cfg-options",
    what: str = "the config",
    example: str = "model.backbone.name=resnet18 train_cfg.max_epochs=2",
) -> None:
    parser.add_argument(
        flag,
        nargs="+",
        action=CfgOptionsAction,
        metavar="KEY=VALUE",
        help=f"override keys of {what}, e.g. {example}",
    )


def add_data_root(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-root",
        help="dataset folder for the config's primary dataset(s); its class_names.txt sizes every head",
    )


def add_ground_truth(parser: argparse.ArgumentParser, gt_help: str) -> None:
    """``--gt``, ``--list`` and ``--classes``: the label PNGs, ids and class list a tool scores against."""
    parser.add_argument("--gt", required=True, type=Path, help=gt_help)
    parser.add_argument("--list", required=True, type=Path, help="split file with one image id per line")
    parser.add_argument(
        "--classes", required=True, help="'voc', 'coco', a class_names.txt or an mmengine config .py"
    )


def add_launcher(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--launcher",
        choices=["none", "pytorch"],
        default="none",
        help="'pytorch' when started by torch.distributed.run (nccl on CUDA, gloo on CPU)",
    )
    # passed by the deprecated torch.distributed.launch
    parser.add_argument("--local-rank", "--local_rank", type=int, default=0, help=argparse.SUPPRESS)


def add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device",
        choices=["cpu", "cuda"],
        default="cuda" if torch.cuda.is_available() else "cpu",
        help="where the model runs (default: cuda when available); under torchrun each rank uses cuda:LOCAL_RANK",
    )


def add_workers(parser: argparse.ArgumentParser, what: str = "processes reading files in parallel",
                default: int | None = None) -> None:  # fmt: skip
    default = usable_cores() if default is None else default
    parser.add_argument("--workers", type=int, default=default, help=f"{what} (default {default})")


def add_test_scales(parser: argparse.ArgumentParser, defaults: Sequence[float]) -> None:
    """``--scales S [S ...]``: the factors a model runs at on each image (``defaults`` when not given)."""
    parser.add_argument(
        "--scales",
        nargs="+",
        type=float,
        default=list(defaults),
        metavar="S",
        help=f"test scales (default {' '.join(map(str, defaults))})",
    )


def add_base_size(parser: argparse.ArgumentParser) -> None:
    """``--base-size``: the shorter side each image is brought to before the test scales apply."""
    parser.add_argument(
        "--base-size",
        type=int,
        help="apply the scales to each image brought to this shorter side (its training size)",
    )


def add_progress(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def add_model_run_flags(parser: argparse.ArgumentParser, loader_workers: bool = True) -> None:
    """How a tool runs a model over a split: ``--launcher``, ``--device``, ``--workers`` (the DataLoader's,
    unless ``loader_workers`` is False) and ``--no-progress``."""
    add_launcher(parser)
    add_device(parser)
    if loader_workers:
        add_workers(parser, "DataLoader processes reading images", default=2)
    add_progress(parser)


# --- checks ----------------------------------------------------------------------------------------


def check_positive(value: int | float, flag: str, minimum: int | float = 1) -> None:
    """UserError unless ``value >= minimum``."""
    if value < minimum:
        raise UserError(f"{flag} must be at least {minimum}, got {value}")


def check_device(device: str) -> None:
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda but this machine has no usable CUDA device; use --device cpu")


def check_input_dir(path: Path | None, flag: str, what: str = "folder") -> None:
    """UserError unless ``path`` (when given) is an existing folder."""
    if path is not None and not Path(path).is_dir():
        raise UserError(f"{flag} {path}: not an existing folder; give the {what}")


def _nearest_existing(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _check_writable(path: Path, flag: str, given: Path) -> None:
    existing = _nearest_existing(path)
    if not existing.is_dir():
        raise UserError(f"{flag} {given}: {existing} is a file, not a folder; choose another path")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{flag} {given}: {existing} is not writable; choose another path")


def check_output_dir(path: Path, flag: str) -> None:
    """Before any work: ``path`` must be a writable folder, or one that can be made (nothing is created)."""
    path = Path(path)
    if path.is_symlink() and not path.exists():
        raise UserError(
            f"{flag} {path}: is a link to {os.readlink(path)}, which is not there (or links back); "
            "remove the link or give another folder"
        )
    if path.exists() and not path.is_dir():
        raise UserError(f"{flag} {path}: is a file; give a folder (or a new name)")
    _check_writable(path, flag, path)


def check_output_file(path: Path | None, flag: str) -> None:
    """Before any work: ``path`` (when given) must not be a folder, and must be writable or creatable."""
    if path is None:
        return
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{flag} {path}: is a folder; give a file name")
    if path.exists() and not os.access(path, os.W_OK):
        raise UserError(f"{flag} {path}: the file is not writable; choose another path")
    _check_writable(path.parent, flag, path)


def require_crf() -> None:
    """UserError saying how to install pydensecrf when the optional CRF package is missing."""
    from wsss.pseudo.crf import import_pydensecrf

    try:
        import_pydensecrf()
    except ImportError as err:
        raise UserError(f"--crf: {err}") from None
