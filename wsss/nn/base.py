"""The base of every trainable model here: the shared data preprocessor and mmengine's forward modes."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from typing import Any

from mmengine.model import BaseModel
from torch import Tensor, nn

from wsss.nn.preprocessor import SegDataPreprocessor
from wsss.registry import MODELS

FORWARD_MODES = ("loss", "predict", "tensor")


def build_preprocessor(cfg: dict | nn.Module | None) -> nn.Module:
    """The data preprocessor from a config dict (built in the ``wsss`` registry), a module, or the default."""
    if cfg is None:
        return SegDataPreprocessor()
    if isinstance(cfg, nn.Module):
        return cfg
    return MODELS.build(cfg)


class WSSSModel(BaseModel):
    """An mmengine model whose ``forward`` dispatches the Runner's three modes to ``loss``, ``predict``, ``tensor``.

    Subclasses implement ``loss(inputs, data_samples) -> dict`` (keys containing ``loss`` are summed),
    ``predict(inputs, data_samples) -> list[dict]`` (the samples with predictions added) and
    ``tensor(inputs)`` (the raw outputs). ``data_preprocessor`` is a config dict, a module or ``None``
    for :class:`~wsss.nn.preprocessor.SegDataPreprocessor` (ImageNet normalisation on the device).
    """

    def __init__(self, data_preprocessor: dict | nn.Module | None = None, init_cfg: dict | None = None):
        super().__init__(data_preprocessor=build_preprocessor(data_preprocessor), init_cfg=init_cfg)

    def forward(
        self,
        inputs: Tensor | Sequence[Tensor],
        data_samples: Sequence[dict] | None = None,
        mode: str = "tensor",
    ) -> Any:
        if mode == "loss":
            return self.loss(inputs, data_samples)
        if mode == "predict":
            return self.predict(inputs, data_samples)
        if mode == "tensor":
            return self.tensor(inputs)
        raise ValueError(f"mode must be one of {FORWARD_MODES}, got {mode!r}")

    @abstractmethod
    def loss(self, inputs: Tensor, data_samples: Sequence[dict]) -> dict[str, Tensor]:
        """The loss dict of a training batch."""

    @abstractmethod
    def predict(self, inputs: Tensor | Sequence[Tensor], data_samples: Sequence[dict] | None) -> list[dict]:
        """The samples with the model's predictions added."""

    @abstractmethod
    def tensor(self, inputs: Tensor | Sequence[Tensor]) -> Any:
        """The raw network outputs."""


def require_batch(inputs: Tensor | Sequence[Tensor]) -> Tensor:
    """``inputs`` as one stacked batch; training needs images of one size."""
    if not isinstance(inputs, Tensor):
        raise ValueError("training needs equal-size images; add a crop (PadCrop) to the train pipeline")
    return inputs
