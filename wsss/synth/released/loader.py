"""Load a released checkpoint from a local folder as a :class:`~wsss.synth.released.generator.ReleasedGenerator`."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from types import ModuleType

import torch

from wsss.synth.released.families import (
    check_components,
    check_family,
    detect_family,
    pipeline_shape,
    read_model_index,
)
from wsss.synth.released.generator import ReleasedGenerator
from wsss.synth.released.unet_weights import load_unet_weights

DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}
INSTALL_HINT = "pip install 'wsss[synth]' (diffusers and transformers)"


def import_diffusers() -> ModuleType:
    """``diffusers``, or ImportError saying how to install the optional extra (``transformers`` is checked too)."""
    try:
        import diffusers
        import transformers  # noqa: F401  (the text encoders and tokenizers)
    except ImportError as err:
        raise ImportError(f"released generators need {err.name}: {INSTALL_HINT}") from err
    return diffusers


def resolve_dtype(dtype: torch.dtype | str | None, device: torch.device) -> torch.dtype:
    """``dtype`` as a torch dtype; by default float16 on CUDA (what the checkpoints are released in), else float32."""
    if dtype is None:
        return torch.float16 if device.type == "cuda" else torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; use one of {', '.join(DTYPES)}")
    return DTYPES[dtype]


def load_released(
    folder: str | os.PathLike,
    family: str | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | str | None = None,
    unet_weights: str | os.PathLike | None = None,
) -> ReleasedGenerator:
    """The released generator saved in ``folder`` (a diffusers pipeline folder), on ``device``; never downloads.

    ``family``: one of :data:`~wsss.synth.released.families.FAMILIES`, or None to detect it from
    model_index.json (see :func:`~wsss.synth.released.families.detect_family`). ``unet_weights``:
    DMD2's UNet file, loaded into the base pipeline of ``folder``. The safety checker of SD 1.5
    folders is not loaded. A folder missing a component is refused naming it, before any loading.
    """
    folder = Path(folder)
    index = read_model_index(folder)
    check_components(folder, index)
    if family is None:
        family = detect_family(folder, index, unet_weights is not None)
    spec = check_family(folder, family, index)
    if spec.needs_unet_weights and unet_weights is None:
        raise ValueError(
            f"{folder}: family {family} loads its distilled UNet from a separate file; pass it (--unet-weights FILE)"
        )
    if unet_weights is not None and not spec.needs_unet_weights:
        raise ValueError(
            f"{unet_weights}: family {family} takes no separate UNet weights; leave --unet-weights out"
        )
    device = torch.device(device)
    dtype = resolve_dtype(dtype, device)
    diffusers = import_diffusers()
    shape = pipeline_shape(index)
    if shape == "sdxl":
        pipeline_class, extra = diffusers.StableDiffusionXLPipeline, {}
    else:
        pipeline_class = diffusers.StableDiffusionPipeline
        extra = {"safety_checker": None, "feature_extractor": None, "requires_safety_checker": False}
    try:
        with warnings.catch_warnings():
            # Newer diffusers call it `dtype` and warn; `torch_dtype` is what every supported version reads.
            warnings.filterwarnings("ignore", message=".*torch_dtype.* is deprecated", category=FutureWarning)
            pipe = pipeline_class.from_pretrained(folder, local_files_only=True, torch_dtype=dtype, **extra)
    except OSError as err:
        reason = " ".join(str(err).split())[:300]
        raise ValueError(
            f"{folder}: the pipeline cannot be loaded ({reason}); copy the complete checkpoint folder"
        ) from None
    if unet_weights is not None:
        load_unet_weights(pipe.unet, unet_weights, folder)
    if spec.sampler in ("lcm", "lcm-timesteps") and not isinstance(pipe.scheduler, diffusers.LCMScheduler):
        pipe.scheduler = diffusers.LCMScheduler.from_config(pipe.scheduler.config)
    pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return ReleasedGenerator(pipe, spec, shape, folder)
