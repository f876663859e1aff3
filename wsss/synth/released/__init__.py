"""Released one-step and few-step text-to-image checkpoints, sampled through ``diffusers`` from local folders.

InstaFlow, SD-Turbo, SDXL-Turbo, DMD2 and LCM-style (SLAM) checkpoints behind the toolkit's
:class:`~wsss.synth.generator.TextToImageGenerator`. Nothing is ever downloaded: a checkpoint is
a folder saved by ``save_pretrained`` or copied from a hub snapshot. ``diffusers`` and
``transformers`` come with the optional extra ``synth``; only :mod:`.loader` and
:mod:`.generator` need them, and only when called.
"""

from wsss.synth.released.families import FAMILIES, detect_family
from wsss.synth.released.loader import load_released

__all__ = ["FAMILIES", "detect_family", "load_released"]
