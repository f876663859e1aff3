"""Loading mmengine checkpoints with ``torch.load(weights_only=True)`` and a minimal allowlist.

mmengine 0.10.7 reads local checkpoints with a bare ``torch.load``. Since torch 2.6 that means
``weights_only=True``, which refuses the logging state mmengine itself saves (``HistoryBuffer``
objects holding numpy arrays and scalars), so ``--resume`` breaks. Turning ``weights_only`` off
would unpickle anything a file asks for, including code execution. Instead, the local-file
scheme of mmengine's ``CheckpointLoader`` is replaced by a loader that allows exactly the extra
types an mmengine checkpoint contains and refuses everything else.
"""

from __future__ import annotations

import os
import pickle
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader
from torch import nn

from wsss.fileio import file_digest

# HistoryBuffer pickles its statistics table as ``getattr(HistoryBuffer, name)``; these are the
# names mmengine registers by default.
DEFAULT_STATISTICS = ("min", "max", "current", "mean")


def history_buffer_statistic(owner: Any, name: str) -> Callable:
    """Stand-in for ``getattr`` while unpickling: only resolves HistoryBuffer statistic methods.

    A general ``getattr`` would let a crafted file walk from any allowed object to ``os.system``.
    """
    allowed = set(DEFAULT_STATISTICS) | set(HistoryBuffer._statistics_methods)
    if owner is not HistoryBuffer or name not in allowed:
        raise pickle.UnpicklingError(f"attribute lookup {name!r} on {owner!r} is not allowed in a checkpoint")
    return getattr(HistoryBuffer, name)


def checkpoint_safe_globals() -> list[Any]:
    """Everything beyond plain tensors and containers that mmengine checkpoints need.

    Entries are objects or ``(object, 'module.name')`` pairs as ``torch.serialization.safe_globals``
    takes them; numpy's array and scalar constructors are listed under both the numpy 2 (``_core``)
    and numpy 1 (``core``) module names so checkpoints written with either version load.
    """
    multiarray = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray
    dtype_codes = "?" + np.typecodes["AllInteger"] + np.typecodes["AllFloat"]
    dtype_classes = sorted({type(np.dtype(code)) for code in dtype_codes}, key=lambda cls: cls.__name__)
    entries: list[Any] = [HistoryBuffer, np.ndarray, np.dtype, *dtype_classes]
    entries.append((history_buffer_statistic, "builtins.getattr"))
    for module in ("numpy._core.multiarray", "numpy.core.multiarray"):
        entries.append((multiarray._reconstruct, f"{module}._reconstruct"))
        entries.append((multiarray.scalar, f"{module}.scalar"))
    return entries


def _is_torch_archive(path: str) -> bool:
    """Whether ``path`` is a whole torch zip archive (what ``torch.save`` writes since torch 1.6)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith("data.pkl") for name in archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def _unpickling_reason(err: BaseException) -> str:
    """The one line of torch's weights-only refusal that says what was refused (not its advice to unpickle anyway)."""
    paragraphs = [p.strip() for p in str(err).replace("WeightsUnpickler error:", "\n\n").split("\n\n")]
    useful = [
        p
        for p in paragraphs
        if p and not p.startswith(("Weights only load failed", "Check the documentation"))
    ]
    return useful[0].splitlines()[0] if useful else type(err).__name__


def load_from_local_safely(filename: str, map_location: Any = None) -> Any:
    """Read a local checkpoint with ``weights_only=True`` and the mmengine allowlist.

    A missing, empty, truncated or otherwise unreadable file raises ValueError saying so and naming
    it; a whole file that holds objects outside the allowlist (a pickle that could run code) raises
    ``pickle.UnpicklingError`` naming the file. Nothing outside the allowlist is ever unpickled.
    """
    filename = os.path.expanduser(str(filename))
    if not os.path.isfile(filename):
        raise FileNotFoundError(f"{filename}: checkpoint not found")
    if os.path.getsize(filename) == 0:
        raise ValueError(
            f"{filename}: the checkpoint file is empty (an interrupted save?); use another checkpoint"
        )
    whole_archive = _is_torch_archive(filename)
    try:
        with torch.serialization.safe_globals(checkpoint_safe_globals()), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. torch's note on the pickle protocol of a legacy file
            return torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        reason = _unpickling_reason(err)
        if whole_archive and any(mark in reason for mark in ("GLOBAL", "global", "not allowed")):
            raise pickle.UnpicklingError(
                f"{filename}: refused to load: the file holds objects a checkpoint should not hold ({reason}); "
                "only checkpoints of tensors and mmengine training state are read"
            ) from None
        raise ValueError(_unreadable(filename, reason)) from None
    except MemoryError:
        raise
    except Exception as err:  # the weights-only reader runs no code: any other failure means a bad file
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ValueError(_unreadable(filename, reason[:120])) from None


# The first bytes of what torch.save writes: a zip archive (torch >= 1.6), or the legacy format's
# pickled magic number (protocol 2, then 0x1950a86a20f9469cfc6c).
_ZIP_START = b"PK\x03\x04"
_LEGACY_START = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"


def _unreadable(filename: str, reason: str) -> str:
    """Why ``filename`` cannot be read: cut off or damaged when it starts like a torch file, else not one."""
    with open(filename, "rb") as handle:
        start = handle.read(len(_LEGACY_START))
    if start.startswith(_ZIP_START) or start == _LEGACY_START:
        return (
            f"{filename}: not a readable checkpoint, truncated or corrupt ({reason}); "
            "an interrupted save or copy? use another checkpoint (or train again)"
        )
    return (
        f"{filename}: not a checkpoint (neither a torch zip archive nor a legacy torch.save file); "
        "give a .pth written by tools/train.py"
    )


def install_safe_checkpoint_loader() -> None:
    """Make :func:`load_from_local_safely` mmengine's loader for local paths (the empty-prefix scheme).

    Called by the entry points that let mmengine read checkpoints (``tools/train.py``); importing
    this module changes nothing.
    """
    CheckpointLoader.register_scheme(prefixes="", loader=load_from_local_safely, force=True)


# --- which checkpoint ----------------------------------------------------------------------------

FINAL_RECORD = "final_checkpoint"
LAST_RECORD = "last_checkpoint"


def _numbered_checkpoints(work_dir: Path) -> list[Path]:
    """``epoch_N.pth`` / ``iter_N.pth`` files of a work dir, newest (highest N) first."""
    found = []
    for path in work_dir.glob("*.pth"):
        stem = path.stem
        for prefix in ("epoch_", "iter_"):
            if stem.startswith(prefix) and stem[len(prefix) :].isdigit():
                found.append((int(stem[len(prefix) :]), path))
    return [path for _, path in sorted(found, reverse=True)]


def _recorded(record: Path) -> Path | None:
    try:
        text = record.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return Path(text) if text else None


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """A checkpoint file from ``path``: the file itself, or for a training work dir its final
    checkpoint (the best by validation when training kept one, else the last)."""
    path = Path(path)
    if path.is_file():
        return path
    if path.is_dir():
        for record in (path / FINAL_RECORD, path / LAST_RECORD):
            target = _recorded(record) if record.is_file() else None
            if target is not None and target.is_file():
                return target
        raise FileNotFoundError(
            f"{path}: a work dir without a finished checkpoint ({FINAL_RECORD} / {LAST_RECORD}); "
            "train in it first, or give the .pth file"
        )
    raise FileNotFoundError(
        f"{path}: checkpoint not found; give a .pth file or the work dir of a training run"
    )


def checkpoint_settings(path: str | os.PathLike, key: str = "checkpoint") -> dict[str, str]:
    """A checkpoint's entries in an output folder's manifest: its file (resolved as
    :func:`resolve_checkpoint` does) and a digest of its bytes, so that resuming with a checkpoint
    retrained in place is refused like one at another path."""
    file = resolve_checkpoint(path).resolve()
    return {key: str(file), f"{key}_sha256": file_digest(file)}


def find_resumable_checkpoint(work_dir: str | os.PathLike) -> tuple[Path | None, str | None]:
    """The newest whole checkpoint of ``work_dir`` to resume from, and a note when it is not the recorded one.

    ``last_checkpoint`` names the newest; when that file is missing or truncated (a kill while
    saving) the newest whole ``epoch_N.pth`` / ``iter_N.pth`` takes its place.
    """
    work_dir = Path(work_dir)
    recorded = _recorded(work_dir / LAST_RECORD) if (work_dir / LAST_RECORD).is_file() else None
    if recorded is not None and recorded.is_file() and _is_torch_archive(str(recorded)):
        return recorded, None
    for candidate in _numbered_checkpoints(work_dir):
        if _is_torch_archive(str(candidate)):
            note = (
                f"{recorded} (named in {work_dir / LAST_RECORD}) is missing or unreadable; resuming from {candidate}"
                if recorded is not None
                else None
            )
            return candidate, note
    if recorded is not None:
        return (
            None,
            f"{recorded} (named in {work_dir / LAST_RECORD}) is missing or unreadable and no other checkpoint is whole",
        )
    return None, None


def check_weights_fit(model: nn.Module, checkpoint: str | os.PathLike, strict: bool) -> tuple[int, int]:
    """ValueError unless the checkpoint's weights fit ``model``; returns (tensors loaded, model tensors).

    Every tensor the two share by name must have the same shape (another class count fails here,
    with the tensor named). ``strict`` (resuming) needs every model tensor; otherwise (``--load-from``)
    at least half of them must come from the checkpoint, so an unrelated file cannot pass as a warm start.
    A model that starts from another layout too (``adapt_state_dict(state) -> state``, applied when it
    loads) is checked against the state as it will read it; resuming needs its own layout.
    """
    state = checkpoint_weights(checkpoint)
    adapt = getattr(model, "adapt_state_dict", None)
    if adapt is not None and not strict:
        state = adapt(dict(state))
    own = model.state_dict()
    for key, value in state.items():
        if key in own and tuple(own[key].shape) != tuple(value.shape):
            raise ValueError(
                f"{checkpoint}: tensor {key} has shape {tuple(value.shape)} but the config builds "
                f"{tuple(own[key].shape)}; the checkpoint was trained with another class count or model"
            )
    matched = sum(key in state for key in own)
    missing = [key for key in own if key not in state]
    if strict and missing:
        raise ValueError(
            f"{checkpoint}: lacks {len(missing)} of the model's {len(own)} tensors (e.g. {missing[0]}); "
            "it was saved by another model, so training cannot resume from it"
        )
    if not strict and matched * 2 < len(own):
        raise ValueError(
            f"{checkpoint}: only {matched} of the model's {len(own)} tensors are in it; it is a checkpoint of "
            "another model, so --load-from would train from random weights; give a checkpoint of this model"
        )
    return matched, len(own)


def checkpoint_weights(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The model weights of an mmengine checkpoint (or of a bare state-dict file), read safely."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found; pass the .pth file written by tools/train.py")
    checkpoint = load_from_local_safely(str(path), map_location="cpu")
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: not a model checkpoint (no state_dict of tensors)")
    return {k.removeprefix("module."): v for k, v in state.items()}
