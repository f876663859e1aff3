"""The toolkit's mmengine Runner: checkpoints written atomically, and the hooks every run needs."""

from __future__ import annotations

import os
from typing import Any

from mmengine.dist import master_only
from mmengine.runner import Runner

from wsss.engine.hooks import MapCollapseHook, ThreadShareHook, TrainingSummaryHook
from wsss.registry import RUNNERS


@RUNNERS.register_module()
class WSSSRunner(Runner):
    """mmengine's Runner, plus:

    * every checkpoint is written to a temporary name and renamed, so a run killed while saving never
      leaves a half-written ``epoch_N.pth`` (a resumed run then takes the newest whole one);
    * :class:`~wsss.engine.hooks.TrainingSummaryHook` (``training_summary.json``, ``final_checkpoint``),
      :class:`~wsss.engine.hooks.MapCollapseHook` (BAS maps collapsing to 0) and
      :class:`~wsss.engine.hooks.ThreadShareHook` (the pipeline's share of the cores) are always registered.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.register_hook(TrainingSummaryHook())
        self.register_hook(MapCollapseHook())
        self.register_hook(ThreadShareHook())

    @master_only
    def save_checkpoint(self, out_dir: str, filename: str, *args: Any, **kwargs: Any) -> None:
        temporary = f".{filename}.{os.getpid()}.tmp"
        try:
            super().save_checkpoint(out_dir, temporary, *args, **kwargs)
            os.replace(os.path.join(out_dir, temporary), os.path.join(out_dir, filename))
        finally:
            if os.path.exists(os.path.join(out_dir, temporary)):
                os.unlink(os.path.join(out_dir, temporary))
