"""Load a separate UNet weights file (DMD2 ships its distilled UNet alone) into a base pipeline's UNet."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import torch

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
SHOWN_KEYS = 3


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of a ``.safetensors`` file or of a ``.bin``/``.pt``/``.pth`` state dict (weights only, no code)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: UNet weights file not found; give the checkpoint's UNet file")
    if path.suffix not in WEIGHT_SUFFIXES:
        raise ValueError(f"{path}: not a weights file; give a {', '.join(WEIGHT_SUFFIXES)} file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(path)
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, pickle.UnpicklingError, EOFError) as err:
        reason = " ".join(str(err).split())[:200]
        raise ValueError(f"{path}: unreadable weights file ({reason}); copy it again") from None
    if not isinstance(state, dict) or not all(isinstance(value, torch.Tensor) for value in state.values()):
        raise ValueError(f"{path}: not a state dict of tensors; give the UNet weights file itself")
    return state


def load_unet_weights(unet: torch.nn.Module, path: str | os.PathLike, folder: str | os.PathLike) -> None:
    """Replace every weight of ``unet`` (from the base pipeline in ``folder``) with those of ``path``.

    Refused, naming both, unless the file holds exactly the UNet's weights with the same shapes.
    """
    state = read_state_dict(path)
    own = unet.state_dict()
    missing = [key for key in own if key not in state]
    unexpected = [key for key in state if key not in own]
    resized = [key for key in own if key in state and state[key].shape != own[key].shape]
    if missing or unexpected or resized:
        problems = [f"{len(keys)} {what} (first: {', '.join(keys[:SHOWN_KEYS])})"
                    for keys, what in ((missing, "weights missing"), (unexpected, "unexpected"), (resized, "of another shape")) if keys]  # fmt: skip
        raise ValueError(
            f"{path}: does not fit the UNet of {folder}: {'; '.join(problems)}; "
            "give the UNet file made for this base model"
        )
    unet.load_state_dict(state)
