"""Segmenter inference on one image at its original size: single scale, multi-scale + flip, optional CRF."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from wsss.pseudo.crf import ProbCRFSettings, crf_on_probs


@torch.no_grad()
def predict_label(
    model: nn.Module,
    image: torch.Tensor,
    ori_shape: Sequence[int],
    scales: Sequence[float] = (1.0,),
    flip: bool = False,
    crf_image: np.ndarray | None = None,
    crf_settings: ProbCRFSettings = ProbCRFSettings(),
) -> np.ndarray:
    """The ``(H, W)`` uint8 class map of one uint8 ``(3, h, w)`` image, at ``ori_shape`` ``(H, W)``.

    One scale without flip takes the argmax of the logits resized to ``ori_shape``; otherwise the
    argmax of :meth:`~wsss.segment.model.Segmenter.tta_probs`. With ``crf_image`` (the original
    ``(H, W, 3)`` RGB image) the softmax is refined by the dense CRF on probabilities first.
    """
    out_size = tuple(int(s) for s in ori_shape[:2])
    inputs = model.data_preprocessor({"inputs": [image], "data_samples": [{}]}, False)["inputs"][0]
    if tuple(scales) == (1.0,) and not flip:
        scores = model.predict_logits(inputs[None], out_size=out_size)[0]
        if crf_image is not None:
            scores = scores.softmax(dim=0)
    else:
        scores = model.tta_probs(inputs, scales=scales, flip=flip, out_size=out_size)
    if crf_image is not None:
        return (
            crf_on_probs(crf_image, scores.float().cpu().numpy(), crf_settings)
            .argmax(axis=0)
            .astype(np.uint8)
        )
    return scores.argmax(dim=0).to(torch.uint8).cpu().numpy()
