"""Procedural "shapes" dataset in VOC layout: the toolkit's embedded default data.

Six object classes, each drawn from its own shape family with its own texture. Object colours
overlap between classes, so shape and texture (not colour) identify a class. Two classes come
with a background *context*: water under boats and rails under trains. The context appears in most
images of its class and in a few other images. This is the co-occurrence bias that MARS-style
debiasing removes. Context pixels are labelled background (0), never the class.

Label maps follow VOC: 0 background, 1..6 classes, 255 on a 1-pixel ring around every object's
outline (8-connected). Where objects overlap, the ring lies on the hidden object's side; thin parts
such as masts and legs keep their class. Each sample is drawn from
its own numpy Generator seeded by (seed, split, index). Any number of worker processes therefore
writes byte-identical labels and identical images.
"""

from __future__ import annotations

import colorsys
import json
import multiprocessing
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image
from tqdm import tqdm

from wsss.data.captions import compose_captions, write_captions
from wsss.data.classes import write_class_names
from wsss.data.label_io import IGNORE_INDEX, write_label_png
from wsss.fileio import atomic_write, save_jpeg_atomic, write_text_atomic
from wsss.parallel import worker_init

SHAPES_CLASSES: tuple[str, ...] = ("background", "boat", "train", "aeroplane", "bird", "bottle", "person")
SPLITS: tuple[str, ...] = ("train", "val")
MIN_IMAGE_SIZE = 32
GENERATOR_VERSION = 1
JPEG_QUALITY = 95
MARKER_FILE = ".shapes_generator.json"
BIAS_FILE = "bias.json"
CAPTIONS_FILE = "captions.json"
CONTEXT_DIR = "ContextMasks"
CLS_LABELS_FILE = "cls_labels.json"


@dataclass(frozen=True)
class ContextSpec:
    """A background region that co-occurs with one class: its name, the class, and how often it appears."""

    name: str
    class_name: str
    p_with_class: float
    p_without_class: float


SHAPES_CONTEXTS: tuple[ContextSpec, ...] = (
    ContextSpec("water", "boat", p_with_class=0.85, p_without_class=0.06),
    ContextSpec("rails", "train", p_with_class=0.85, p_without_class=0.06),
)

# How many objects an image gets (1, 2 or 3) and with what probability.
_OBJECT_COUNT_PROBS = (0.5, 0.35, 0.15)
# Attempts to place one object before it is dropped (placement fails when the object leaves the
# image or hides too much of an earlier one).
_PLACEMENT_ATTEMPTS = 30
# Every object keeps at least this many labelled pixels (off the boundary ring), and an occluded
# object keeps at least this fraction of the labelled pixels it had when it was painted.
_MIN_LABELLED_PIXELS = 20
_MIN_VISIBLE_FRACTION = 0.5
# Smallest object, in pixels along its longest side, whatever the image size.
_MIN_OBJECT_PIXELS = 18.0
_SUBPIXEL_BITS = 4
_ROLE_BODY, _ROLE_DETAIL, _ROLE_DARK = 1, 2, 3
_KERNEL3 = np.ones((3, 3), np.uint8)

Part = tuple[int, np.ndarray]  # (role, polygon (N, 2) in the object's unit frame, y pointing down)


@dataclass(frozen=True)
class Difficulty:
    """The knobs that make the shapes harder to learn, so recipes can be tried on data they were not tuned on.

    * ``scale``: multiplies every class's range of object sizes (below 1: smaller objects);
    * ``contrast``: 1 keeps object colours as drawn; below 1 pulls them toward the background under them;
    * ``texture``: amplitude (0..1) of a high-frequency pattern laid over the background;
    * ``distractors``: up to this many textured blobs of no class in the background (labelled background);
    * ``noise``: range of the pixel noise's standard deviation;
    * ``min_visible``: an object hidden by a later one keeps at least this share of its labelled pixels;
    * ``object_counts``: probabilities of 1, 2 and 3 objects per image.

    ``default`` draws exactly the dataset this generator has always drawn.
    """

    scale: float = 1.0
    contrast: float = 1.0
    texture: float = 0.0
    distractors: int = 0
    noise: tuple[float, float] = (1.5, 4.0)
    min_visible: float = _MIN_VISIBLE_FRACTION
    object_counts: tuple[float, ...] = _OBJECT_COUNT_PROBS


DIFFICULTIES: dict[str, Difficulty] = {
    "easy": Difficulty(scale=1.15, noise=(0.5, 2.0), min_visible=0.7, object_counts=(0.7, 0.25, 0.05)),
    "default": Difficulty(),
    "hard": Difficulty(
        scale=0.65, contrast=0.45, texture=0.5, distractors=3, noise=(5.0, 10.0), min_visible=0.35,
        object_counts=(0.35, 0.4, 0.25),
    ),
}  # fmt: skip


# --- polygons in an object's unit frame (longest side about 1, centred on the origin) ---------------


def _ellipse(cx: float, cy: float, ax: float, ay: float, angle: float = 0.0, n: int = 28) -> np.ndarray:
    t = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    a = np.deg2rad(angle)
    x, y = ax * np.cos(t), ay * np.sin(t)
    return np.stack([cx + x * np.cos(a) - y * np.sin(a), cy + x * np.sin(a) + y * np.cos(a)], axis=1)


def _rect(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)


def _capsule(p: tuple[float, float], q: tuple[float, float], width: float) -> list[np.ndarray]:
    """A thick segment with round ends, as three polygons."""
    p_arr, q_arr = np.asarray(p, np.float64), np.asarray(q, np.float64)
    direction = q_arr - p_arr
    normal = np.array([-direction[1], direction[0]]) / max(np.hypot(*direction), 1e-9) * (width / 2)
    body = np.stack([p_arr + normal, q_arr + normal, q_arr - normal, p_arr - normal])
    r = width / 2
    return [body, _ellipse(p[0], p[1], r, r, n=16), _ellipse(q[0], q[1], r, r, n=16)]


def _boat_parts(rng: np.random.Generator) -> list[Part]:
    """Side view: hull (textured), mast and one or two triangular sails."""
    depth = rng.uniform(0.16, 0.24)
    mast = rng.uniform(0.5, 0.68)
    sail = rng.uniform(0.25, 0.4)
    hull = np.array([[-0.5, 0.0], [0.5, -0.07], [0.36, depth], [-0.36, depth]])
    parts: list[Part] = [(_ROLE_BODY, hull)]
    parts += [(_ROLE_DARK, poly) for poly in _capsule((0.0, 0.0), (0.0, -mast), 0.035)]
    parts.append((_ROLE_DETAIL, np.array([[0.03, -mast + 0.03], [0.03, -0.05], [0.03 + sail, -0.05]])))
    if rng.random() < 0.6:
        jib = rng.uniform(0.18, 0.3)
        parts.append((_ROLE_DETAIL, np.array([[-0.03, -mast * 0.8], [-0.03, -0.05], [-0.03 - jib, -0.05]])))
    return parts


def _train_parts(rng: np.random.Generator) -> list[Part]:
    """Side view: a long body with a slanted nose, a row of windows and wheels."""
    height = rng.uniform(0.18, 0.24)
    body = np.array([[-0.5, -height], [0.38, -height], [0.5, -height * 0.35], [0.5, 0.0], [-0.5, 0.0]])
    parts: list[Part] = [(_ROLE_BODY, body)]
    n_windows = int(rng.integers(4, 7))
    for x in np.linspace(-0.42, 0.26, n_windows):
        parts.append((_ROLE_DARK, _rect(x, -height * 0.8, x + 0.07, -height * 0.42)))
    for x in np.linspace(-0.4, 0.4, int(rng.integers(4, 7))):
        parts.append((_ROLE_DARK, _ellipse(x, 0.015, 0.045, 0.045, n=16)))
    return parts


def _aeroplane_parts(rng: np.random.Generator) -> list[Part]:
    """Top view: a cross of fuselage, swept wings and tail fins."""
    sweep = rng.uniform(0.05, 0.2)
    span = rng.uniform(0.36, 0.48)
    chord = rng.uniform(0.12, 0.18)
    parts: list[Part] = [(_ROLE_BODY, _ellipse(0.0, 0.0, 0.5, rng.uniform(0.055, 0.075)))]
    for side in (-1.0, 1.0):
        wing = np.array(
            [[0.14, 0.0], [0.14 - sweep, side * span], [0.14 - sweep - chord, side * span], [-0.08, 0.0]]
        )
        fin = np.array([[-0.36, 0.0], [-0.44, side * 0.16], [-0.5, side * 0.16], [-0.48, 0.0]])
        parts += [(_ROLE_BODY, wing), (_ROLE_BODY, fin)]
    parts.append((_ROLE_DETAIL, _ellipse(0.34, 0.0, 0.07, 0.03)))
    return parts


def _bird_parts(rng: np.random.Generator) -> list[Part]:
    """Side view: oval body, round head, beak, tail, folded wing, legs and an eye."""
    tilt = rng.uniform(-12.0, 12.0)
    parts: list[Part] = [
        (_ROLE_BODY, np.array([[-0.2, -0.04], [-0.5, -0.16], [-0.5, 0.06], [-0.2, 0.08]])),
        (_ROLE_BODY, _ellipse(0.0, 0.02, 0.3, rng.uniform(0.15, 0.19), tilt)),
        (_ROLE_BODY, _ellipse(0.27, -0.14, 0.12, 0.12)),
        (_ROLE_DETAIL, np.array([[0.36, -0.19], [0.36, -0.1], [0.52, -0.15]])),
        (_ROLE_DETAIL, _ellipse(-0.04, -0.01, 0.2, 0.08, tilt - 12.0)),
        (_ROLE_DARK, _ellipse(0.3, -0.17, 0.025, 0.025, n=12)),
    ]
    for x in (-0.02, 0.08):
        parts += [(_ROLE_DARK, poly) for poly in _capsule((x, 0.16), (x + 0.02, 0.32), 0.035)]
    return parts


def _bottle_parts(rng: np.random.Generator) -> list[Part]:
    """Front view: tall narrow body with shoulders, neck, cap and maybe a paper label."""
    half = rng.uniform(0.12, 0.17)
    neck = half * rng.uniform(0.32, 0.45)
    shoulder = rng.uniform(-0.12, 0.0)
    body = np.array(
        [[-half, 0.5], [half, 0.5], [half, shoulder], [neck, shoulder - 0.18], [neck, -0.44],
         [-neck, -0.44], [-neck, shoulder - 0.18], [-half, shoulder]]
    )  # fmt: skip
    parts: list[Part] = [(_ROLE_BODY, body), (_ROLE_DETAIL, _rect(-neck * 1.2, -0.5, neck * 1.2, -0.42))]
    if rng.random() < 0.6:
        top = rng.uniform(0.05, 0.15)
        parts.append((_ROLE_DETAIL, _rect(-half, top, half, top + rng.uniform(0.12, 0.2))))
    return parts


def _person_parts(rng: np.random.Generator) -> list[Part]:
    """Front view stick figure: head, capsule torso, arms and legs in a random pose."""
    torso = rng.uniform(0.18, 0.24)
    limb = rng.uniform(0.085, 0.1)
    parts: list[Part] = [(_ROLE_BODY, poly) for poly in _capsule((0.0, -0.24), (0.0, 0.08), torso)]
    for side in (-1.0, 1.0):
        angle = np.deg2rad(rng.uniform(15.0, 110.0))
        hand = (side * (0.05 + 0.3 * np.sin(angle)), -0.2 + 0.3 * np.cos(angle))
        parts += [(_ROLE_BODY, poly) for poly in _capsule((side * 0.05, -0.2), hand, limb)]
        foot = (side * rng.uniform(0.05, 0.2), 0.46)
        parts += [(_ROLE_BODY, poly) for poly in _capsule((side * 0.05, 0.08), foot, limb * 1.1)]
    parts.append((_ROLE_DETAIL, _ellipse(0.0, -0.39, 0.1, 0.11)))
    return parts


@dataclass(frozen=True)
class _ClassStyle:
    build: Callable[[np.random.Generator], list[Part]]
    texture: str
    hue_centre: float  # degrees; object hues spread +-_HUE_SPREAD around it, so classes overlap
    scale_range: tuple[float, float]  # longest side as a fraction of the image size
    max_rotation: float  # degrees
    flip: bool


_HUE_SPREAD = 110.0
_CLASS_STYLES: dict[str, _ClassStyle] = {
    "boat": _ClassStyle(_boat_parts, "stripes", 0.0, (0.4, 0.7), 8.0, True),
    "train": _ClassStyle(_train_parts, "checker", 60.0, (0.55, 0.92), 3.0, True),
    "aeroplane": _ClassStyle(_aeroplane_parts, "gradient", 120.0, (0.42, 0.75), 180.0, True),
    "bird": _ClassStyle(_bird_parts, "dots", 180.0, (0.34, 0.58), 20.0, True),
    "bottle": _ClassStyle(_bottle_parts, "shine", 240.0, (0.36, 0.62), 15.0, False),
    "person": _ClassStyle(_person_parts, "noise", 300.0, (0.4, 0.68), 8.0, True),
}


# --- colours and textures ------------------------------------------------------------------------


def _hsv(h_degrees: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb((h_degrees % 360.0) / 360.0, s, v)) * 255.0


def _object_colours(
    rng: np.random.Generator, style: _ClassStyle
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Main and secondary texture colours (overlapping between classes) and a detail colour."""
    hue = style.hue_centre + rng.uniform(-_HUE_SPREAD, _HUE_SPREAD)
    sat, val = rng.uniform(0.35, 0.9), rng.uniform(0.35, 0.95)
    main = _hsv(hue, sat, val)
    if style.texture == "shine":
        secondary = main + (255.0 - main) * rng.uniform(0.6, 0.85)
    else:
        shift = rng.choice([-1.0, 1.0]) * rng.uniform(0.3, 0.5)
        new_val = val + shift if 0.0 <= val + shift <= 1.0 else val - shift
        secondary = _hsv(hue + rng.uniform(-30.0, 30.0), sat * rng.uniform(0.6, 1.0), new_val)
    detail = _hsv(rng.uniform(0.0, 360.0), rng.uniform(0.05, 0.7), rng.uniform(0.55, 1.0))
    return main, secondary, detail


def _texture_weights(
    kind: str, rng: np.random.Generator, u: np.ndarray, v: np.ndarray, pixels_per_unit: float
) -> np.ndarray:
    """Mixing weight of the secondary colour (0..1) at object-frame coordinates ``u, v``.

    Periods are at least a few pixels so that textures survive small images and JPEG.
    """
    if kind == "stripes":
        period = max(rng.uniform(0.06, 0.11), 4.0 / pixels_per_unit)
        return (np.sin(2.0 * np.pi * v / period + rng.uniform(0, 2 * np.pi)) > 0).astype(np.float64)
    if kind == "checker":
        cell = max(rng.uniform(0.05, 0.08), 3.0 / pixels_per_unit)
        offset = rng.uniform(0.0, cell, size=2)
        return ((np.floor((u + offset[0]) / cell) + np.floor((v + offset[1]) / cell)) % 2).astype(np.float64)
    if kind == "gradient":
        angle = rng.uniform(0.0, 2.0 * np.pi)
        return np.clip(0.5 + (u * np.cos(angle) + v * np.sin(angle)) / 0.6, 0.0, 1.0)
    if kind == "dots":
        spacing = max(rng.uniform(0.08, 0.12), 5.0 / pixels_per_unit)
        radius = spacing * rng.uniform(0.28, 0.36)
        du = np.mod(u + rng.uniform(0, spacing), spacing) - spacing / 2
        dv = np.mod(v + rng.uniform(0, spacing), spacing) - spacing / 2
        return (du**2 + dv**2 < radius**2).astype(np.float64)
    if kind == "shine":
        centre, width = rng.uniform(-0.09, -0.02), rng.uniform(0.03, 0.05)
        return np.exp(-(((u - centre) / width) ** 2))
    if kind == "noise":
        weights = np.zeros_like(u)
        for _ in range(4):
            frequency = rng.uniform(3.0, 7.0) * 2.0 * np.pi
            angle = rng.uniform(0.0, np.pi)
            weights += np.sin(frequency * (u * np.cos(angle) + v * np.sin(angle)) + rng.uniform(0, 2 * np.pi))
        return np.clip(0.5 + weights / 4.0 + rng.normal(0.0, 0.12, size=u.shape), 0.0, 1.0)
    raise ValueError(f"unknown texture {kind!r}")


# --- background and contexts ---------------------------------------------------------------------


def _random_background_colour(rng: np.random.Generator) -> np.ndarray:
    return _hsv(rng.uniform(0, 360), rng.uniform(0.0, 0.6), rng.uniform(0.25, 0.9))


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Smooth colour noise, a two-colour gradient or soft blobs, as float32 (H, W, 3)."""
    kind = int(rng.integers(3))
    if kind == 0:
        grid = int(rng.integers(2, 6))
        nodes = np.stack([_random_background_colour(rng) for _ in range(grid * grid)]).reshape(grid, grid, 3)
        return cv2.resize(nodes.astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
    if kind == 1:
        first, second = _random_background_colour(rng), _random_background_colour(rng)
        angle = rng.uniform(0.0, 2.0 * np.pi)
        yy, xx = np.mgrid[0:size, 0:size] / (size - 1) - 0.5
        weight = np.clip(0.5 + (xx * np.cos(angle) + yy * np.sin(angle)), 0.0, 1.0)[..., None]
        return (first * (1.0 - weight) + second * weight).astype(np.float32)
    canvas = np.empty((size, size, 3), np.float32)
    canvas[:] = _random_background_colour(rng)
    for _ in range(int(rng.integers(3, 8))):
        centre = (int(rng.integers(0, size)), int(rng.integers(0, size)))
        axes = (int(rng.integers(size // 10, size // 3)), int(rng.integers(size // 10, size // 3)))
        colour = tuple(float(c) for c in _random_background_colour(rng))
        cv2.ellipse(canvas, centre, axes, float(rng.uniform(0, 180)), 0, 360, colour, -1)
    return cv2.GaussianBlur(canvas, (0, 0), sigmaX=size / 40)


def _paint_water(rng: np.random.Generator, image: np.ndarray, waterline: float) -> np.ndarray:
    """Blue-green band from ``waterline`` down, darker with depth, with light wave crests; returns its mask."""
    size = image.shape[0]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    edge = waterline + rng.uniform(0.3, 1.5) * np.sin(2 * np.pi * xx / (size * rng.uniform(0.2, 0.4)))
    region = yy >= edge
    colour = _hsv(rng.uniform(185, 225), rng.uniform(0.45, 0.85), rng.uniform(0.45, 0.85))
    depth = np.clip((yy - waterline) / max(size - waterline, 1.0), 0.0, 1.0)
    water = colour * (1.0 - 0.35 * depth)[..., None]
    period = max(size * rng.uniform(0.06, 0.1), 4.0)
    wobble = 1.5 * np.sin(2 * np.pi * xx / (size * rng.uniform(0.15, 0.3)) + rng.uniform(0, 2 * np.pi))
    crest = np.sin(2 * np.pi * yy / period + wobble) > 0.75
    water[crest] += (255.0 - water[crest]) * 0.4
    image[region] = water[region]
    return region


def _paint_rails(rng: np.random.Generator, image: np.ndarray, centre: float) -> np.ndarray:
    """Horizontal track: gravel band, brown sleepers and two steel rails; returns its mask."""
    size = image.shape[0]
    half = max(0.045 * size, 3.0)
    top, bottom = int(round(centre - half)), int(round(centre + half))
    band = np.zeros((size, size), bool)
    band[top : bottom + 1] = True
    gravel = _hsv(rng.uniform(20, 45), rng.uniform(0.05, 0.3), rng.uniform(0.35, 0.6))
    noise = rng.normal(0.0, 14.0, size=(bottom + 1 - top, size, 1))
    image[top : bottom + 1] = gravel + noise
    sleeper = tuple(
        float(c) for c in _hsv(rng.uniform(15, 35), rng.uniform(0.4, 0.65), rng.uniform(0.22, 0.4))
    )
    spacing = max(0.07 * size, 5.0)
    width = max(int(round(0.025 * size)), 2)
    for x in np.arange(rng.uniform(0, spacing), size, spacing):
        cv2.rectangle(image, (int(x), top), (int(x) + width - 1, bottom), sleeper, -1)
    steel = tuple(float(c) for c in _hsv(rng.uniform(0, 360), rng.uniform(0.0, 0.1), rng.uniform(0.72, 0.92)))
    thickness = max(int(round(0.015 * size)), 1)
    for y in (centre - half * 0.5, centre + half * 0.5):
        row = int(round(y))
        cv2.rectangle(image, (0, row), (size - 1, row + thickness - 1), steel, -1)
    return band


def _add_texture(rng: np.random.Generator, image: np.ndarray, strength: float) -> None:
    """Lay a high-frequency pattern (stripes, checks or grain) over the background, ``strength`` in 0..1."""
    size = image.shape[0]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    kind = int(rng.integers(3))
    period = rng.uniform(3.0, 7.0)
    if kind == 0:
        angle = rng.uniform(0.0, np.pi)
        pattern = np.sin(2 * np.pi * (xx * np.cos(angle) + yy * np.sin(angle)) / period)
    elif kind == 1:
        pattern = np.sign(np.sin(2 * np.pi * xx / period) * np.sin(2 * np.pi * yy / period))
    else:
        pattern = cv2.GaussianBlur(rng.normal(0.0, 1.0, (size, size)), (0, 0), sigmaX=0.8)
        pattern /= max(np.abs(pattern).max(), 1e-6)
    tint = rng.uniform(0.5, 1.0, size=3)
    image += (strength * 60.0 * pattern)[..., None] * tint


def _add_distractors(rng: np.random.Generator, image: np.ndarray, count: int) -> None:
    """Paint up to ``count`` blobs of no class, each with one of the classes' textures (labelled background)."""
    size = image.shape[0]
    textures = sorted({style.texture for style in _CLASS_STYLES.values()})
    for _ in range(int(rng.integers(0, count + 1))):
        centre = rng.uniform(0.1, 0.9, size=2) * size
        radius = rng.uniform(0.06, 0.16) * size
        polygon = _ellipse(
            centre[0], centre[1], radius, radius * rng.uniform(0.5, 1.0), rng.uniform(0, 180), n=9
        )
        polygon += rng.normal(0.0, radius * 0.2, polygon.shape)
        mask = np.zeros((size, size), np.uint8)
        cv2.fillPoly(mask, [np.round(polygon).astype(np.int32)], 1)
        ys, xs = np.nonzero(mask)
        if len(ys) == 0:
            continue
        first, second = _random_background_colour(rng), _random_background_colour(rng)
        kind = textures[int(rng.integers(len(textures)))]
        weights = _texture_weights(kind, rng, xs / size, ys / size, float(size))[:, None]
        image[ys, xs] = first * (1.0 - weights) + second * weights


# --- objects --------------------------------------------------------------------------------------


def _pose_matrix(scale: float, angle_degrees: float, flip: bool) -> np.ndarray:
    """Unit frame -> image frame (without the translation): rotation times (optionally mirrored) scale."""
    a = np.deg2rad(angle_degrees)
    rotation = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return rotation @ np.diag([-scale if flip else scale, scale])


def _role_map(parts: list[Part], matrix: np.ndarray, offset: np.ndarray, size: int) -> np.ndarray:
    """(H, W) uint8 map of part roles, later parts painted over earlier ones; 0 outside the object."""
    roles = np.zeros((size, size), np.uint8)
    for role, polygon in parts:
        points = polygon @ matrix.T + offset
        fixed = np.round(points * (1 << _SUBPIXEL_BITS)).astype(np.int32)
        cv2.fillPoly(roles, [fixed], role, lineType=cv2.LINE_8, shift=_SUBPIXEL_BITS)
    return roles


def _boundary_ring(instances: np.ndarray) -> np.ndarray:
    """Pixels next to (3x3) a later-painted object: a 1-pixel ring around each visible object."""
    return cv2.dilate(instances, _KERNEL3) > instances


def _labelled_counts(instances: np.ndarray, n_objects: int) -> np.ndarray:
    """Pixels per object id (index 0 = background) that keep their class once the ring is 255."""
    return np.bincount(instances[~_boundary_ring(instances)], minlength=n_objects + 1)


def _paint_object(
    rng: np.random.Generator,
    image: np.ndarray,
    roles: np.ndarray,
    style: _ClassStyle,
    matrix: np.ndarray,
    offset: np.ndarray,
    pixels_per_unit: float,
    contrast: float = 1.0,
) -> np.ndarray:
    """Colour the object's pixels in ``image``; returns the main colour (for the record).

    With ``contrast`` below 1 the colours move toward the mean colour of the background they cover.
    """
    main, secondary, detail = _object_colours(rng, style)
    if contrast != 1.0:
        under = image[roles > 0].mean(axis=0)
        main, secondary, detail = (
            under + contrast * (colour - under) for colour in (main, secondary, detail)
        )
    ys, xs = np.nonzero(roles == _ROLE_BODY)
    local = (np.stack([xs, ys], axis=1) - offset) @ np.linalg.inv(matrix).T
    weights = _texture_weights(style.texture, rng, local[:, 0], local[:, 1], pixels_per_unit)[:, None]
    image[ys, xs] = main * (1.0 - weights) + secondary * weights
    image[roles == _ROLE_DETAIL] = detail
    image[roles == _ROLE_DARK] = rng.uniform(15.0, 60.0)
    return main


def _place_object(
    rng: np.random.Generator,
    style: _ClassStyle,
    instances: np.ndarray,
    labelled: list[int],
    bottom: float | None,
    difficulty: Difficulty = DIFFICULTIES["default"],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float] | None:
    """Find a pose that keeps the object inside the image and every earlier object visible enough.

    ``labelled[k]`` is the number of labelled pixels object ``k + 1`` had when it was painted.
    ``bottom`` pins the lowest point of the object (a boat's keel in the water, a train's wheels on
    the rails). Returns (role map, pose matrix, offset, pixels per unit), or None after the attempts.
    """
    size = instances.shape[0]
    low = max(style.scale_range[0] * difficulty.scale, _MIN_OBJECT_PIXELS / size)
    high = max(style.scale_range[1] * difficulty.scale, low + 0.05)
    for _ in range(_PLACEMENT_ATTEMPTS):
        parts = style.build(rng)
        scale = rng.uniform(low, high) * size
        angle = rng.uniform(-style.max_rotation, style.max_rotation)
        matrix = _pose_matrix(scale, angle, bool(style.flip and rng.random() < 0.5))
        points = np.concatenate([polygon for _, polygon in parts]) @ matrix.T
        (min_x, min_y), (max_x, max_y) = points.min(axis=0), points.max(axis=0)
        if max_x - min_x > size - 2 or max_y - min_y > size - 2:
            continue
        offset_x = rng.uniform(-min_x + 0.5, size - 1.5 - max_x)
        offset_y = bottom - max_y if bottom is not None else rng.uniform(-min_y + 0.5, size - 1.5 - max_y)
        if offset_y + min_y < 0.5:
            continue
        offset = np.array([offset_x, offset_y])
        roles = _role_map(parts, matrix, offset, size)
        mask = roles > 0
        if mask.sum() < _MIN_LABELLED_PIXELS:
            continue
        trial = instances.copy()
        trial[mask] = len(labelled) + 1
        kept = _labelled_counts(trial, len(labelled))[1:]
        if all(k >= max(_MIN_LABELLED_PIXELS, difficulty.min_visible * n) for k, n in zip(kept, labelled)):
            return roles, matrix, offset, scale
    return None


def render_sample(
    rng: np.random.Generator, size: int, difficulty: Difficulty = DIFFICULTIES["default"]
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Draw one image, its VOC label map and a record of what was drawn.

    Returns ``image`` (H, W, 3) uint8 RGB, ``label`` (H, W) uint8 (0 background, 1..6 classes,
    255 on the ring around objects) and ``info`` with ``classes`` (sorted 1-based indices present in the label),
    ``contexts`` (names of the context regions drawn), ``context_masks`` ({name: (H, W) bool of the
    context pixels no object covers}) and ``objects`` (class, bounding box ``[x0, y0, x1, y1)``,
    main colour, and the context it stands on, in painting order).
    """
    if size < MIN_IMAGE_SIZE:
        raise ValueError(f"image size must be at least {MIN_IMAGE_SIZE} pixels, got {size}")
    counts = difficulty.object_counts
    n_objects = int(rng.choice(len(counts), p=counts)) + 1
    chosen = [SHAPES_CLASSES[int(k)] for k in rng.integers(1, len(SHAPES_CLASSES), size=n_objects)]

    image = _background(rng, size).astype(np.float64)
    if difficulty.texture > 0:
        _add_texture(rng, image, difficulty.texture)
    if difficulty.distractors > 0:
        _add_distractors(rng, image, difficulty.distractors)
    context_regions: dict[str, np.ndarray] = {}
    anchors: dict[str, float] = {}
    present = {
        spec.name: rng.random() < (spec.p_with_class if spec.class_name in chosen else spec.p_without_class)
        for spec in SHAPES_CONTEXTS
    }
    waterline = rng.uniform(0.55, 0.72) * size
    if present["water"]:
        context_regions["water"] = _paint_water(rng, image, waterline)
        anchors["boat"] = waterline + rng.uniform(0.03, 0.09) * size
    if present["rails"]:
        low, high = (0.36, waterline / size - 0.12) if present["water"] else (0.55, 0.85)
        centre = rng.uniform(low, high) * size
        context_regions["rails"] = _paint_rails(rng, image, centre)
        anchors["train"] = centre

    instances = np.zeros((size, size), np.uint8)
    labelled: list[int] = []
    objects: list[dict[str, Any]] = []
    for name in chosen:
        style = _CLASS_STYLES[name]
        placed = _place_object(rng, style, instances, labelled, anchors.get(name), difficulty)
        if placed is None:
            continue
        roles, matrix, offset, scale = placed
        main = _paint_object(rng, image, roles, style, matrix, offset, scale, difficulty.contrast)
        mask = roles > 0
        instances[mask] = len(labelled) + 1
        labelled.append(int(mask.sum()))
        ys, xs = np.nonzero(mask)
        context = next((spec.name for spec in SHAPES_CONTEXTS if spec.class_name == name), None)
        objects.append(
            {
                "class_index": SHAPES_CLASSES.index(name),
                "class_name": name,
                "bbox": [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1],
                "colour": [int(round(c)) for c in main],
                "on_context": context if context in context_regions else None,
            }
        )

    image += rng.normal(0.0, rng.uniform(*difficulty.noise), size=image.shape)
    image_uint8 = np.clip(np.round(image), 0, 255).astype(np.uint8)

    class_of_instance = np.array([0] + [obj["class_index"] for obj in objects], np.uint8)
    label = class_of_instance[instances]
    label[_boundary_ring(instances)] = IGNORE_INDEX
    classes = sorted(int(v) for v in np.unique(label) if v not in (0, IGNORE_INDEX))
    info = {
        "classes": classes,
        "contexts": [spec.name for spec in SHAPES_CONTEXTS if spec.name in context_regions],
        "context_masks": {name: region & (instances == 0) for name, region in context_regions.items()},
        "objects": objects,
    }
    return image_uint8, label, info


# --- dataset on disk ------------------------------------------------------------------------------


def sample_id(split: str, index: int) -> str:
    """Image id of the ``index``-th (1-based) sample of ``split``, e.g. ``shapes_train_000001``."""
    return f"shapes_{split}_{index:06d}"


def sample_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The generator that draws sample ``index`` of ``split``: independent of every other sample."""
    return np.random.default_rng([seed, SPLITS.index(split), index])


def _make_one(
    task: tuple[str, str, int, int, int, str, bool],
) -> tuple[str, list[int], list[str], bool, list[str]]:
    """Render one sample and write its files unless all exist already (they would be identical)."""
    out_dir, split, index, size, seed, difficulty, overwrite = task
    root = Path(out_dir)
    image_id = sample_id(split, index)
    image, label, info = render_sample(sample_rng(seed, split, index), size, DIFFICULTIES[difficulty])
    paths = [root / "JPEGImages" / f"{image_id}.jpg", root / "SegmentationClass" / f"{image_id}.png",
             root / CONTEXT_DIR / f"{image_id}.png"]  # fmt: skip
    written = overwrite or not all(path.is_file() for path in paths)
    if written:
        save_jpeg_atomic(paths[0], image, JPEG_QUALITY)
        write_label_png(paths[1], label)
        write_context_png(paths[2], info["context_masks"], label.shape)
    # Captions come from a generator of their own, so they never change what the image draws.
    captions = compose_captions(info, size, np.random.default_rng([seed, SPLITS.index(split), index, 1]))
    return image_id, info["classes"], info["contexts"], written, captions


def write_context_png(path: Path, masks: dict[str, np.ndarray], shape: tuple[int, int]) -> None:
    """The visible context regions as a greyscale PNG: 0 none, then each context's value (water 1, rails 2)."""
    context = np.zeros(shape, np.uint8)
    for value, spec in enumerate(SHAPES_CONTEXTS, start=1):
        if spec.name in masks:
            context[masks[spec.name]] = value
    with atomic_write(path) as tmp:
        Image.fromarray(context, mode="L").save(tmp, format="PNG")


def _init_worker() -> None:
    worker_init()
    cv2.setNumThreads(1)


def summarize_bias(
    image_classes: dict[str, list[int]], image_contexts: dict[str, list[str]]
) -> dict[str, Any]:
    """Measured co-occurrence of classes and contexts over a set of images.

    ``context_given_class[ctx][cls]``: fraction of the images containing ``cls`` that show ``ctx``
    (None when no image has ``cls``); ``context_without_biased_class[ctx]``: fraction of the images
    without the context's own class that still show it.
    """
    ids = list(image_classes)
    summary: dict[str, Any] = {
        "n_images": len(ids),
        "images_per_class": {},
        "images_per_context": {},
        "context_given_class": {},
        "context_without_biased_class": {},
    }
    for k, name in enumerate(SHAPES_CLASSES[1:], start=1):
        summary["images_per_class"][name] = sum(k in image_classes[i] for i in ids)
    for spec in SHAPES_CONTEXTS:
        with_context = {i for i in ids if spec.name in image_contexts[i]}
        summary["images_per_context"][spec.name] = len(with_context)
        per_class = {}
        for k, name in enumerate(SHAPES_CLASSES[1:], start=1):
            holders = [i for i in ids if k in image_classes[i]]
            per_class[name] = (
                round(sum(i in with_context for i in holders) / len(holders), 4) if holders else None
            )
        summary["context_given_class"][spec.name] = per_class
        own = SHAPES_CLASSES.index(spec.class_name)
        others = [i for i in ids if own not in image_classes[i]]
        summary["context_without_biased_class"][spec.name] = (
            round(sum(i in with_context for i in others) / len(others), 4) if others else None
        )
    return summary


def _check_output_folder(root: Path, marker: dict[str, Any], overwrite: bool) -> None:
    """Refuse folders holding other data, or a shapes dataset drawn with another seed or size."""
    marker_path = root / MARKER_FILE
    if marker_path.is_file():
        previous = json.loads(marker_path.read_text(encoding="utf-8"))
        if previous != marker and not overwrite:
            raise ValueError(
                f"{root} holds a shapes dataset made with seed={previous.get('seed')} size={previous.get('size')} "
                f"(version {previous.get('version')}); choose another output folder or pass overwrite=True "
                "(--overwrite) to replace its files"
            )
        return
    images = root / "JPEGImages"
    if images.is_dir() and any(images.iterdir()):
        raise ValueError(
            f"{images} already holds images this generator did not write; choose an empty output folder"
        )


def make_shapes_dataset(
    out_dir: str | os.PathLike,
    n_train: int,
    n_val: int,
    size: int,
    seed: int,
    workers: int = 1,
    overwrite: bool = False,
    progress: bool = True,
    difficulty: str = "default",
) -> dict[str, Any]:
    """Write the shapes dataset in VOC layout into ``out_dir`` and return its summary.

    Files: ``JPEGImages/<id>.jpg``, ``SegmentationClass/<id>.png``, ``ContextMasks/<id>.png`` (mode
    "L": 0 none, 1 visible water, 2 visible rails), ``class_names.txt``, ``cls_labels.json``,
    ``captions.json`` (COCO captions format, five per image), ``bias.json`` and, last,
    ``ImageSets/Segmentation/{train,val}.txt``. ``difficulty`` names a preset of :data:`DIFFICULTIES`.
    Every file is written to a temporary name and renamed, so an interrupted run leaves only whole
    files; running again with the same seed and size leaves the samples already on disk as they are
    (they would come out identical) and writes the missing ones.
    The summary holds the contents of ``bias.json`` plus ``written``, ``skipped`` and ``seconds``.
    """
    for name, value in (("n_train", n_train), ("n_val", n_val)):
        if value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")
    if size < MIN_IMAGE_SIZE:
        raise ValueError(f"size must be at least {MIN_IMAGE_SIZE} pixels, got {size}")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if difficulty not in DIFFICULTIES:
        raise ValueError(f"difficulty must be one of {', '.join(DIFFICULTIES)}, got {difficulty!r}")

    start = time.perf_counter()
    root = Path(out_dir)
    marker = {"generator": "wsss.data.shapes", "version": GENERATOR_VERSION, "seed": seed, "size": size}
    if difficulty != "default":  # the default's marker stays as it was, so existing folders are reused
        marker["difficulty"] = difficulty
    _check_output_folder(root, marker, overwrite)
    for folder in ("JPEGImages", "SegmentationClass", CONTEXT_DIR, "ImageSets/Segmentation"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    write_text_atomic(root / MARKER_FILE, json.dumps(marker, indent=1) + "\n")

    tasks = [
        (str(root), split, i, size, seed, difficulty, overwrite)
        for split, n in zip(SPLITS, (n_train, n_val))
        for i in range(1, n + 1)
    ]
    bar_options = {"total": len(tasks), "desc": "shapes", "unit": "img", "disable": not progress}
    if workers == 1:
        records = [_make_one(task) for task in tqdm(tasks, **bar_options)]
    else:
        chunk = max(1, min(64, len(tasks) // (8 * workers)))
        with multiprocessing.get_context("spawn").Pool(workers, initializer=_init_worker) as pool:
            records = list(tqdm(pool.imap(_make_one, tasks, chunksize=chunk), **bar_options))

    image_classes = {image_id: classes for image_id, classes, _, _, _ in records}
    image_contexts = {image_id: contexts for image_id, _, contexts, _, _ in records}
    split_ids = {split: [r[0] for r in records if r[0].startswith(f"shapes_{split}_")] for split in SPLITS}
    bias = {
        "generator": {**marker, "n_train": n_train, "n_val": n_val},
        "classes": list(SHAPES_CLASSES),
        "contexts": [
            {
                "name": s.name,
                "class": s.class_name,
                "p_with_class": s.p_with_class,
                "p_without_class": s.p_without_class,
            }
            for s in SHAPES_CONTEXTS
        ],
        "measured": {
            **{
                split: summarize_bias({i: image_classes[i] for i in ids}, image_contexts)
                for split, ids in split_ids.items()
            },
            "all": summarize_bias(image_classes, image_contexts),
        },
        "image_contexts": image_contexts,
    }
    write_class_names(root / "class_names.txt", SHAPES_CLASSES)
    contexts = [
        {"value": v, "name": s.name, "class": s.class_name} for v, s in enumerate(SHAPES_CONTEXTS, start=1)
    ]
    write_text_atomic(
        root / CONTEXT_DIR / "contexts.json", json.dumps({"contexts": contexts}, indent=1) + "\n"
    )
    write_captions(root / CAPTIONS_FILE, {image_id: captions for image_id, *_, captions in records})
    write_text_atomic(root / CLS_LABELS_FILE, json.dumps(image_classes) + "\n")
    write_text_atomic(root / BIAS_FILE, json.dumps(bias, indent=1) + "\n")
    for split, ids in split_ids.items():
        write_text_atomic(
            root / "ImageSets" / "Segmentation" / f"{split}.txt", "".join(f"{i}\n" for i in ids)
        )
    written = sum(r[3] for r in records)
    return {
        **bias,
        "written": written,
        "skipped": len(records) - written,
        "seconds": time.perf_counter() - start,
    }
