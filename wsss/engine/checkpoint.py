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
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

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


def load_from_local_safely(filename: str, map_location: Any = None) -> Any:
    """Read a local checkpoint with ``weights_only=True`` and the mmengine allowlist.

    Raises ``pickle.UnpicklingError`` naming the file when it holds any other object.
    """
    filename = os.path.expanduser(filename)
    if not os.path.isfile(filename):
        raise FileNotFoundError(f"{filename}: checkpoint not found")
    try:
        with torch.serialization.safe_globals(checkpoint_safe_globals()):
            return torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        detail = str(err).split("WeightsUnpickler error:")[-1].strip().splitlines()
        reason = detail[0] if detail else type(err).__name__
        raise pickle.UnpicklingError(
            f"{filename}: refused to load, the file holds objects a checkpoint should not hold ({reason}); "
            "only checkpoints of tensors and mmengine training state are read"
        ) from None


def install_safe_checkpoint_loader() -> None:
    """Make :func:`load_from_local_safely` mmengine's loader for local paths (the empty-prefix scheme)."""
    CheckpointLoader.register_scheme(prefixes="", loader=load_from_local_safely, force=True)
