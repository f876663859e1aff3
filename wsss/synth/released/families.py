"""The released families, what distinguishes their folders, and the check that a folder is complete.

Pure JSON reading (no ``diffusers``), so a tool can name the family and the missing part of a
folder before it imports anything heavy.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MODEL_INDEX = "model_index.json"
# What every Stable-Diffusion-shaped pipeline needs; SDXL-shaped ones also need the second encoder.
SD_COMPONENTS = ("text_encoder", "tokenizer", "vae", "scheduler", "unet")
SDXL_COMPONENTS = SD_COMPONENTS + ("text_encoder_2", "tokenizer_2")


@dataclass(frozen=True)
class Family:
    """How one family of released checkpoints is sampled.

    ``sampler``: ``'rectified-flow'`` (Euler steps of a velocity UNet, InstaFlow), ``'pipeline'``
    (the folder's own scheduler), ``'lcm'`` (diffusers' LCMScheduler) or ``'lcm-timesteps'``
    (LCMScheduler at fixed timesteps, DMD2). ``shapes``: ``'sd'`` (SD 1.5/2.x, one text encoder)
    and/or ``'sdxl'`` (two text encoders).
    """

    name: str
    sampler: str
    default_steps: int
    default_guidance: float
    shapes: tuple[str, ...]
    needs_unet_weights: bool = False


FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        Family("instaflow", "rectified-flow", 1, 0.0, ("sd",)),
        Family("sd-turbo", "pipeline", 1, 0.0, ("sd",)),
        Family("sdxl-turbo", "pipeline", 1, 0.0, ("sdxl",)),
        Family("dmd2", "lcm-timesteps", 1, 0.0, ("sd", "sdxl"), needs_unet_weights=True),
        # SLAM's slam-sd1.5 runs with guidance 1 and 2-4 steps; LCM-distilled UNets alike.
        Family("lcm", "lcm", 4, 1.0, ("sd", "sdxl")),
    )
}

# DMD2's one-step timestep: [999] for its SD 1.5 model, [399] for SDXL.
DMD2_ONE_STEP_TIMESTEP = {"sd": 999, "sdxl": 399}
TRAIN_TIMESTEPS = 1000


def dmd2_timesteps(steps: int, shape: str) -> list[int]:
    """DMD2's timesteps: its one-step timestep for one step, else evenly spaced from 999 (4 steps: 999, 749, 499, 249)."""
    if steps == 1:
        return [DMD2_ONE_STEP_TIMESTEP[shape]]
    return [TRAIN_TIMESTEPS - 1 - i * TRAIN_TIMESTEPS // steps for i in range(steps)]


def read_model_index(folder: str | os.PathLike) -> dict[str, Any]:
    """The pipeline description ``folder/model_index.json``; an error naming the folder when absent or unreadable."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"{folder}: generator folder not found; give a local diffusers pipeline folder"
        )
    path = folder / MODEL_INDEX
    if not path.is_file():
        raise FileNotFoundError(
            f"{folder}: no {MODEL_INDEX}; give a diffusers pipeline folder (save_pretrained or a full hub snapshot)"
        )
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(
            f"{path}: unreadable ({err}); copy the checkpoint's model_index.json again"
        ) from None
    if not isinstance(index, dict):
        raise ValueError(f"{path}: not a pipeline description (expected a JSON object)")
    return index


def pipeline_shape(index: dict[str, Any]) -> str:
    """``'sdxl'`` for a pipeline with a second text encoder, else ``'sd'``."""
    return "sdxl" if _listed(index, "text_encoder_2") else "sd"


def _listed(index: dict[str, Any], component: str) -> bool:
    entry = index.get(component)
    return isinstance(entry, list) and len(entry) == 2 and entry[1] is not None


def check_components(folder: str | os.PathLike, index: dict[str, Any]) -> None:
    """FileNotFoundError naming the first component the pipeline in ``folder`` lacks (in model_index.json or on disk)."""
    folder = Path(folder)
    required = SDXL_COMPONENTS if pipeline_shape(index) == "sdxl" else SD_COMPONENTS
    for component in required:
        sub = folder / component
        if not _listed(index, component) or not sub.is_dir() or not any(sub.iterdir()):
            raise FileNotFoundError(
                f"{folder}: the pipeline has no {component} ({sub}/ missing or empty, or not in {MODEL_INDEX}); "
                f"copy the complete checkpoint folder ({', '.join(required)})"
            )


def _scheduler_config(folder: Path) -> dict[str, Any]:
    path = folder / "scheduler" / "scheduler_config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return config if isinstance(config, dict) else {}


def detect_family(folder: str | os.PathLike, index: dict[str, Any], unet_weights: bool = False) -> str:
    """The family of the pipeline in ``folder``, from its model_index.json and scheduler config.

    Rules: separate UNet weights -> dmd2; a RectifiedFlow pipeline class -> instaflow; an
    LCMScheduler -> lcm; a scheduler with ``timestep_spacing='trailing'`` (what SD-Turbo and
    SDXL-Turbo ship, so that one step starts at t=999) -> sd-turbo or sdxl-turbo by shape.
    Anything else (a plain base model, an InstaFlow folder saved as a StableDiffusionPipeline)
    is ambiguous: ValueError asking for the family.
    """
    folder = Path(folder)
    if unet_weights:
        return "dmd2"
    class_name = str(index.get("_class_name", ""))
    if "RectifiedFlow" in class_name:
        return "instaflow"
    scheduler = index.get("scheduler")
    if isinstance(scheduler, list) and len(scheduler) == 2 and scheduler[1] == "LCMScheduler":
        return "lcm"
    if _scheduler_config(folder).get("timestep_spacing") == "trailing":
        return "sdxl-turbo" if pipeline_shape(index) == "sdxl" else "sd-turbo"
    raise ValueError(
        f"{folder}: cannot tell the family from {MODEL_INDEX} ({class_name or 'no _class_name'}, "
        f"scheduler {scheduler[1] if isinstance(scheduler, list) and len(scheduler) == 2 else None}); "
        f"pass it (--family), one of {', '.join(FAMILIES)}"
    )


def check_family(folder: str | os.PathLike, family: str, index: dict[str, Any]) -> Family:
    """The :class:`Family` named ``family``, refused when unknown or when the folder has the wrong shape."""
    if family not in FAMILIES:
        raise ValueError(f"unknown generator family {family!r}; use one of {', '.join(FAMILIES)}")
    spec = FAMILIES[family]
    shape = pipeline_shape(index)
    if shape not in spec.shapes:
        kind = "SDXL-shaped (two text encoders)" if shape == "sdxl" else "SD-shaped (one text encoder)"
        raise ValueError(f"{folder}: the pipeline is {kind}, which family {family} is not; check --family")
    return spec
