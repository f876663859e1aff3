"""Config loading shared by every tool: the file, a data-root override, and ``--cfg-options``."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mmengine.config import Config

from wsss.data.classes import CLASS_NAMES_FILE, read_class_names


def _replace_key(node: Any, key: str, value_for: Callable[[dict], Any]) -> int:
    """Set ``node[key] = value_for(node)`` in every dict of a nested dict/list tree that has ``key``."""
    count = 0
    if isinstance(node, dict):
        if key in node:
            node[key] = value_for(node)
            count += 1
        for child in node.values():
            count += _replace_key(child, key, value_for)
    elif isinstance(node, (list, tuple)):
        for child in node:
            count += _replace_key(child, key, value_for)
    return count


def primary_dataset(dataset: Any) -> dict | None:
    """The dataset dict ``--data-root`` applies to: a MixedDataset's first part, a wrapper's inner dataset."""
    while isinstance(dataset, dict) and "data_root" not in dataset:
        if isinstance(dataset.get("datasets"), (list, tuple)) and dataset["datasets"]:
            dataset = dataset["datasets"][0]
        elif isinstance(dataset.get("dataset"), dict):
            dataset = dataset["dataset"]
        else:
            return None
    return dataset if isinstance(dataset, dict) else None


def override_data_root(cfg: Config, data_root: str | os.PathLike) -> None:
    """Point the primary dataset of every dataloader (and the ``data_root`` variable) at ``data_root``.

    Only the primary dataset moves: in a MixedDataset (real + synthetic) the first part, so the other
    parts keep their own roots. With a ``class_names.txt`` in the root, the moved datasets get
    ``classes=None`` (so they read it) and every ``num_classes`` in ``cfg.model`` becomes its count.
    """
    root = Path(data_root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"{root}: data root not found; pass an existing dataset folder to --data-root"
        )
    class_file = root / CLASS_NAMES_FILE
    class_names = read_class_names(class_file) if class_file.is_file() else None
    if "data_root" in cfg:  # the base-config variable, kept consistent for later readers
        cfg.data_root = str(root)
    moved = 0
    for key in [k for k in cfg.keys() if k.endswith("dataloader")]:
        dataset = primary_dataset((cfg[key] or {}).get("dataset"))
        if dataset is None:
            continue
        dataset["data_root"] = str(root)
        if class_names is not None and "classes" in dataset:
            dataset["classes"] = None
        moved += 1
    if moved == 0:
        raise ValueError(
            "the config names no dataloader dataset with a data_root; drop --data-root or add data_root to it"
        )
    if class_names is not None and "model" in cfg:
        _replace_key(cfg.model, "num_classes", lambda _: len(class_names))


def read_config(path: str | os.PathLike, what: str = "config file") -> Config:
    """``Config.fromfile`` with its failures as one ValueError naming the file: a missing file or
    ``_base_``, another file type, a syntax error, or code in the config that fails when run."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {what} not found; give a path such as configs/bas/cam_shapes.py")
    try:
        return Config.fromfile(str(path))
    except SyntaxError as err:
        where = f"line {err.lineno}: " if err.lineno else ""
        raise ValueError(
            f"{path}: not valid Python ({where}{err.msg}; in it or a _base_ file); fix the config"
        ) from None
    except FileNotFoundError as err:
        missing = err.filename or err
        raise ValueError(
            f"{path}: {missing}, which it reads (_base_ or a file it names), not found; fix that path"
        ) from None
    except OSError as err:
        if "supported" in str(err):
            raise ValueError(
                f"{path}: a config is a .py file (or .yml / .yaml / .json), not {path.suffix or 'this'}"
            ) from None
        raise ValueError(f"{path}: unreadable config ({err})") from None
    except Exception as err:  # code in a config (or a custom_imports module) that fails when run
        raise ValueError(
            f"{path}: the config fails when read ({type(err).__name__}: {err}); fix it"
        ) from None


def load_config(
    path: str | os.PathLike,
    data_root: str | os.PathLike | None = None,
    cfg_options: dict[str, Any] | None = None,
) -> Config:
    """Read a config file, apply ``data_root`` (see :func:`override_data_root`) and then ``cfg_options``.

    ``cfg_options`` are dotted keys as given to ``--cfg-options`` (``model.num_classes=3``); they come
    last so an explicit option wins over what the data root implies. ``default_scope`` is ``wsss``
    unless the config says otherwise.
    """
    cfg = read_config(path)
    if data_root is not None:
        override_data_root(cfg, data_root)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    cfg.setdefault("default_scope", "wsss")
    return cfg


def _leaves(node: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """``(dotted path, value)`` of every entry of a config, lists indexed (``pipeline.0.type``)."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    found: list[tuple[str, Any]] = []
    for key, value in items:
        path = f"{prefix}.{key}" if prefix else str(key)
        found.append((path, value))
        found += _leaves(value, path)
    return found


def locate_in_config(cfg: Config, message: str, given: dict[str, Any] | None = None) -> list[str]:
    """Where in ``cfg`` the mistake a builder's ``message`` describes probably is: the entries whose key
    the message quotes (``unexpected keyword argument 'backbon'``, ``batch_size=0``) or whose value it
    quotes (``Unknown model (resnet_nope)``, ``Nope is not in the registry``); a bare number only
    among the ``given`` command-line overrides. At most three dotted paths, shortest first."""
    quoted = set(re.findall(r"['\"`]([^'\"`\s]+)['\"`]", message))
    quoted |= {part.strip() for part in re.findall(r"\(([^()]+)\)", message)}
    named = set(re.findall(r"\b([A-Za-z_]\w*)=", message))
    numbers = set(re.findall(r"(?<![\w.])(-?\d+(?:\.\d+)?)(?![\w.])", message))
    leaves = _leaves(cfg.to_dict() if isinstance(cfg, Config) else cfg)
    found = []
    for path, value in leaves:
        key = path.rsplit(".", 1)[-1]
        if key in quoted | named or (isinstance(value, str) and value in quoted):
            found.append(path)
    if given and any(path in given for path in found):
        found = [path for path in found if path in given]  # the user's own override is the likely one
    if not found and given:
        for key, value in given.items():
            if str(value) in numbers or (isinstance(value, str) and value in quoted):
                found.append(key)
    return sorted(set(found), key=lambda path: (path.count("."), path))[:3]
