"""The interface of every feature model: ``(B, D, h, w)`` features at a known stride.

MARS, the probes and the extraction tool only need :meth:`FeatureModel.features` and the two
attributes ``feature_dim`` (D) and ``stride`` (input pixels per feature cell). A model that learns
(the from-scratch network, STEGO's head) implements ``loss`` from images alone: data samples may
carry image-level labels, and feature models never read them.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence

from torch import Tensor

from wsss.nn.base import WSSSModel, require_batch


class FeatureModel(WSSSModel):
    """A dense feature extractor. ``tensor`` mode returns :meth:`features`; ``predict`` adds them to samples."""

    feature_dim: int
    stride: int
    # False for a frozen backbone that loads its own weights (named in its config): extraction then
    # needs no checkpoint of a training run.
    needs_checkpoint: bool = True

    @abstractmethod
    def features(self, inputs: Tensor) -> Tensor:
        """``(B, D, ceil(H / stride), ceil(W / stride))`` features of a normalised batch."""

    def tensor(self, inputs: Tensor | Sequence[Tensor]) -> Tensor:
        return self.features(require_batch(inputs))

    def predict(self, inputs: Tensor | Sequence[Tensor], data_samples: Sequence[dict] | None) -> list[dict]:
        features = self.features(require_batch(inputs))
        samples = list(data_samples) if data_samples is not None else [{} for _ in range(len(features))]
        return [{**sample, "features": f} for sample, f in zip(samples, features)]

    def loss(self, inputs: Tensor, data_samples: Sequence[dict]) -> dict[str, Tensor]:
        raise ValueError(f"{type(self).__name__} is not trained; use it for extraction only")
