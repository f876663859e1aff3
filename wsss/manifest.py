"""Output folders that record how they were made, so a resumed run never mixes two kinds of files.

Every tool that fills a folder file by file (seeds, pseudo labels, predictions, features, debiased
labels, synthetic images) writes a JSON manifest whose ``settings`` are everything that decides the
files' content. A later run into the same folder resumes only when its settings are the same; a
folder made with other settings, or holding such files without a manifest, is refused.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from wsss.fileio import write_json_atomic

MANIFEST_NAME = "manifest.json"


def read_manifest(folder: str | os.PathLike, name: str = MANIFEST_NAME) -> dict[str, Any] | None:
    """The manifest of ``folder`` (None when it has none); ValueError naming the file when it is unreadable."""
    path = Path(folder) / name
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: unreadable manifest ({err}); use a new output folder") from None
    if not isinstance(data, dict) or not isinstance(data.get("settings"), dict):
        raise ValueError(f"{path}: not a manifest of this toolkit (no 'settings'); use a new output folder")
    return data


def check_folder_settings(
    folder: str | os.PathLike,
    settings: dict[str, Any],
    name: str = MANIFEST_NAME,
    pattern: str = "*",
    flag: str = "--out",
) -> None:
    """ValueError unless ``folder`` is new, or was made with exactly ``settings``.

    A folder holding files that match ``pattern`` but no manifest was not made by this tool and is
    refused too; a path that is a file is refused.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{flag} {folder}: is a file; give a folder")
    manifest = read_manifest(folder, name)
    if manifest is None:
        if folder.is_dir() and any(
            p.name != name and not p.name.startswith(".") for p in folder.glob(pattern)
        ):
            raise ValueError(
                f"{flag} {folder}: holds {pattern} files but no {name}, so this tool did not make them; "
                "use a new folder"
            )
        return
    previous = manifest["settings"]
    if previous != settings:
        changed = [
            key for key in sorted(set(settings) | set(previous)) if previous.get(key) != settings.get(key)
        ]
        was = ", ".join(f"{key}={previous.get(key)!r}" for key in changed)
        now = ", ".join(f"{key}={settings.get(key)!r}" for key in changed)
        raise ValueError(
            f"{folder / name}: records other settings ({was}) than this run ({now}); "
            "use a new folder for new settings, or delete this one"
        )


def write_manifest(
    folder: str | os.PathLike, settings: dict[str, Any], name: str = MANIFEST_NAME, **extra: Any
) -> None:
    """Write ``folder/name`` atomically: the ``settings`` that decide the files, then ``extra`` facts."""
    write_json_atomic(Path(folder) / name, {"settings": settings, **extra})
