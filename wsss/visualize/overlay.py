"""Drawing label maps and score maps over images: the one overlay every figure of the toolkit uses."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from wsss.data.label_io import VOC_PALETTE

LABEL_ALPHA = 0.7
HEAT_ALPHA = 0.5
BACKGROUND_DIM = 0.45
PANEL_GAP = 4


def jet(heat: np.ndarray) -> np.ndarray:
    """RGB jet colours ``(H, W, 3)`` of values in [0, 1]: blue 0 .. red 1."""
    levels = (np.clip(heat, 0, 1) * 255).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(levels, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)


def heat_overlay(image: np.ndarray, heat: np.ndarray, alpha: float = HEAT_ALPHA) -> np.ndarray:
    """The image blended with a jet rendering of ``heat`` (values in [0, 1])."""
    return (image * (1 - alpha) + jet(heat) * alpha).astype(np.uint8)


def label_overlay(
    image: np.ndarray,
    label: np.ndarray,
    alpha: float = LABEL_ALPHA,
    background_dim: float = BACKGROUND_DIM,
    palette: np.ndarray = VOC_PALETTE,
) -> np.ndarray:
    """VOC colours over ``image`` wherever ``label`` is not background (0); background pixels dimmed.

    Every non-zero value is drawn in its palette colour, the ignore value 255 and MARS's biased
    value 254 included, so a figure shows them apart from the classes.
    """
    label = np.asarray(label, dtype=np.uint8)
    colours = palette[label].astype(np.float32)
    foreground = (label != 0)[..., None]
    blended = image * (1 - alpha) + colours * alpha
    return np.where(foreground, blended, image * background_dim).round().astype(np.uint8)


def side_by_side(panels: Sequence[np.ndarray], gap: int = PANEL_GAP) -> np.ndarray:
    """Images of one height next to each other, separated by white gaps."""
    spacer = np.full((panels[0].shape[0], gap, 3), 255, dtype=np.uint8)
    pieces: list[np.ndarray] = []
    for panel in panels:
        pieces += [spacer, panel] if pieces else [panel]
    return np.concatenate(pieces, axis=1)


def comparison_panel(image: np.ndarray, pred: np.ndarray, gt: np.ndarray | None = None) -> np.ndarray:
    """The prediction over the image, then (when there is one) the ground truth, side by side."""
    return side_by_side([label_overlay(image, pred)] + ([label_overlay(image, gt)] if gt is not None else []))
