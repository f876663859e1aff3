"""Reflow pairs: (noise x0, the teacher's ODE sample x1, caption) triples, in resumable npz shards.

Reflow (METHODS.md section 3) trains the next flow on pairs the current one links, kept fixed. A pairs
folder holds ``pairs.json`` (the settings, the teacher's vocabulary, the shard size) and shards
``pairs_00000.npz``, ... each with ``noise`` and ``x1`` (float32 ``(n, 3, H, W)``), ``captions`` and
``seeds``. Pair ``i`` draws its caption and its noise seed from ``(seed, i)`` only, so a shard can be
rewritten identically; shards are written atomically and a rerun skips those already whole.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from wsss.fileio import atomic_write, remove_stale_temporaries, write_json_atomic
from wsss.registry import DATASETS
from wsss.synth.flow.generator import FlowGenerator
from wsss.synth.flow.vocabulary import Vocabulary

MANIFEST = "pairs.json"
SHARD_KEYS = ("noise", "x1", "captions", "seeds")


def shard_path(folder: Path, index: int) -> Path:
    return folder / f"pairs_{index:05d}.npz"


def pair_plan(captions: Sequence[str], count: int, seed: int) -> tuple[list[str], list[int]]:
    """The caption and noise seed of every pair ``i < count``, each drawn from ``(seed, i)`` alone."""
    chosen, seeds = [], []
    for i in range(count):
        rng = np.random.default_rng([seed, i])
        chosen.append(captions[int(rng.integers(len(captions)))])
        seeds.append(int(rng.integers(2**31)))
    return chosen, seeds


def _whole_shard(path: Path, expected: int) -> bool:
    """Whether ``path`` is a readable shard of ``expected`` pairs."""
    try:
        with np.load(path) as shard:
            return all(key in shard for key in SHARD_KEYS) and all(
                len(shard[key]) == expected for key in SHARD_KEYS
            )
    except (OSError, ValueError, zipfile.BadZipFile, EOFError):
        return False


def write_pairs(generator: FlowGenerator, captions: Sequence[str], out: str | os.PathLike, count: int,
                shard_size: int, steps: int, guidance: float, seed: int, source: dict[str, Any] | None = None,
                progress: bool = True) -> dict[str, int]:  # fmt: skip
    """Write ``count`` pairs of ``generator`` (``steps`` Euler steps at ``guidance``) into ``out``; resumable.

    ``captions`` are the conditions to draw from (the training captions); ``source`` is recorded in the
    manifest (e.g. the teacher's config and checkpoint). A folder holding pairs of other settings is
    refused. Returns the counts of shards written and skipped.
    """
    out = Path(out)
    vocabulary = generator.model.vocabulary
    settings = {"count": count, "shard_size": shard_size, "steps": steps, "guidance": guidance, "seed": seed,
                "resolution": generator.resolution, "teacher": generator.name, "source": source or {},
                "vocabulary": {"words": list(vocabulary.words), "classes": list(vocabulary.classes)}}  # fmt: skip
    manifest = out / MANIFEST
    if manifest.is_file():
        previous = json.loads(manifest.read_text(encoding="utf-8"))
        if previous != settings:
            changed = sorted(k for k in settings if previous.get(k) != settings[k])
            raise ValueError(
                f"{manifest}: pairs of other settings ({', '.join(changed)} differ); give another --out"
            )
    else:
        write_json_atomic(manifest, settings)
    remove_stale_temporaries(out)
    chosen, seeds = pair_plan(captions, count, seed)
    shards = range((count + shard_size - 1) // shard_size)
    written = skipped = 0
    for index in tqdm(shards, desc="reflow pairs", unit="shard", disable=not progress):
        part = slice(index * shard_size, min(count, (index + 1) * shard_size))
        path = shard_path(out, index)
        if path.is_file() and _whole_shard(path, part.stop - part.start):
            skipped += 1
            continue
        x0 = generator.noise(seeds[part])
        x1 = torch.cat([generator.integrate(x0[i : i + generator.batch_size], chosen[part][i : i + generator.batch_size],
                                            steps, guidance).x1 for i in range(0, len(x0), generator.batch_size)])  # fmt: skip
        with atomic_write(path) as tmp:
            np.savez(tmp, noise=x0.cpu().numpy().astype(np.float32), x1=x1.cpu().numpy().astype(np.float32),
                     captions=np.array(chosen[part]), seeds=np.array(seeds[part], dtype=np.int64))  # fmt: skip
        written += 1
    return {"written": written, "skipped": skipped}


def read_pairs(folder: str | os.PathLike) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The manifest and every pair of a folder written by :func:`write_pairs` (errors name what is missing)."""
    folder = Path(folder)
    manifest = folder / MANIFEST
    if not manifest.is_file():
        raise FileNotFoundError(
            f"{manifest}: not found; write the pairs with tools/make_reflow_pairs.py first"
        )
    settings = json.loads(manifest.read_text(encoding="utf-8"))
    count, size = settings["count"], settings["shard_size"]
    parts: dict[str, list[np.ndarray]] = {key: [] for key in SHARD_KEYS}
    for index in range((count + size - 1) // size):
        path = shard_path(folder, index)
        expected = min(count, (index + 1) * size) - index * size
        if not _whole_shard(path, expected):
            raise FileNotFoundError(
                f"{path}: missing or incomplete; rerun tools/make_reflow_pairs.py with the same settings to finish"
            )
        with np.load(path) as shard:
            for key in SHARD_KEYS:
                parts[key].append(shard[key])
    return settings, {key: np.concatenate(value) for key, value in parts.items()}


@DATASETS.register_module()
class ReflowPairDataset(Dataset):
    """The pairs of a folder as training samples: ``inputs`` is x1 (float, [-1, 1] scale), the sample
    holds its ``noise`` (x0) and ``caption``. ``vocabulary`` is the teacher's, which the student keeps."""

    def __init__(self, data_root: str | os.PathLike, max_pairs: int | None = None):
        settings, pairs = read_pairs(data_root)
        self.settings = settings
        stop = len(pairs["x1"]) if max_pairs is None else max_pairs
        self.noise = torch.from_numpy(pairs["noise"][:stop])
        self.x1 = torch.from_numpy(pairs["x1"][:stop])
        self.captions = [str(text) for text in pairs["captions"][:stop]]
        vocabulary = settings["vocabulary"]
        self.vocabulary = Vocabulary(tuple(vocabulary["words"]), tuple(vocabulary["classes"]))
        self.metainfo = {"classes": ("background", *self.vocabulary.classes)}

    def __len__(self) -> int:
        return len(self.x1)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {"inputs": self.x1[index], "data_samples": {"noise": self.noise[index], "caption": self.captions[index],
                                                           "pair_index": index}}  # fmt: skip
