"""Prompt files for synthetic datasets: one prompt per line, or JSONL with prompt, classes and seed
(and ``contexts``, as tools/plan_prompts.py writes them: checked, not used for generation).

The image-level label of a synthetic image is the set of classes its prompt names: given as
``classes`` in JSONL, else found in the prompt text (whole words, case-insensitive, plural ``s``/``es``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from wsss.fileio import read_text_file


@dataclass(frozen=True)
class PromptEntry:
    """One prompt of the file: its text, the class names it was given (None: read them from the text),
    its own seed (None: the run's base seed plus its index) and its line number."""

    prompt: str
    classes: tuple[str, ...] | None
    seed: int | None
    line: int


def _is_jsonl(path: Path, lines: Sequence[str]) -> bool:
    first = next((line for line in lines if line.strip()), "")
    return path.suffix.lower() == ".jsonl" or first.lstrip().startswith("{")


def _json_entry(path: Path, number: int, text: str) -> PromptEntry:
    where = f"{path}:{number}"
    try:
        record = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(
            f'{where}: not a JSON object ({err.msg}); write one {{"prompt": ...}} object per line'
        ) from None
    if not isinstance(record, dict):
        raise ValueError(f'{where}: not a JSON object; write one {{"prompt": ...}} object per line')
    prompt = record.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError(f'{where}: needs a non-empty string "prompt"')
    classes = record.get("classes")
    if classes is not None and (
        not isinstance(classes, list) or not all(isinstance(c, str) for c in classes)
    ):
        raise ValueError(f'{where}: "classes" must be a list of class names')
    seed = record.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise ValueError(f'{where}: "seed" must be an integer of 0 or more, got {seed!r}')
    contexts = record.get("contexts")
    if contexts is not None and (
        not isinstance(contexts, list) or not all(isinstance(c, str) for c in contexts)
    ):
        raise ValueError(f'{where}: "contexts" must be a list of context names')
    unknown = sorted(set(record) - {"prompt", "classes", "seed", "contexts"})
    if unknown:
        raise ValueError(
            f"{where}: unknown keys {unknown}; a line holds prompt, classes, seed (and contexts, not used here)"
        )
    return PromptEntry(prompt.strip(), None if classes is None else tuple(classes), seed, number)


def read_prompts(path: str | os.PathLike) -> list[PromptEntry]:
    """The prompts of ``path`` in order (blank lines skipped); JSONL when it ends in .jsonl or starts with ``{``."""
    path = Path(path)
    lines = read_text_file(path, "prompt file", "write one prompt (or JSON object) per line").splitlines()
    jsonl = _is_jsonl(path, lines)
    entries = [
        _json_entry(path, number, line) if jsonl else PromptEntry(line.strip(), None, None, number)
        for number, line in enumerate(lines, start=1)
        if line.strip()
    ]
    if not entries:
        raise ValueError(f"{path}: no prompts; write one prompt (or JSON object) per line")
    return entries


def class_mentions(prompt: str, class_names: Sequence[str]) -> list[int]:
    """1-based indices of the foreground classes of ``class_names`` that ``prompt`` names as whole words.

    Case-insensitive; a name's words may be separated by spaces, ``_`` or ``-`` and it may carry a
    plural ``s``/``es`` ("two dogs" names dog, "potted plants" names potted plant).
    """
    found = []
    for index, name in enumerate(class_names[1:], start=1):
        words = [re.escape(word) for word in re.split(r"[\s_-]+", name.strip()) if word]
        pattern = r"\b" + r"[\s_-]+".join(words) + r"(?:e?s)?\b"
        if words and re.search(pattern, prompt, flags=re.IGNORECASE):
            found.append(index)
    return found


def prompt_labels(
    entries: Sequence[PromptEntry], class_names: Sequence[str], path: str | os.PathLike
) -> list[list[int]]:
    """Each entry's sorted 1-based class indices; ValueError naming the line for unknown or absent classes."""
    index = {name: i for i, name in enumerate(class_names)}
    listed = ", ".join(class_names[1:])
    labels = []
    for entry in entries:
        where = f"{path}:{entry.line}"
        if entry.classes is None:
            found = class_mentions(entry.prompt, class_names)
        else:
            unknown = [c for c in entry.classes if index.get(c, 0) == 0]
            if unknown:
                raise ValueError(
                    f"{where}: classes {unknown} are not foreground classes of --classes ({listed})"
                )
            found = sorted({index[c] for c in entry.classes})
        if not found:
            raise ValueError(f"{where}: the prompt {entry.prompt!r} names none of the classes ({listed}); "
                             "name one, or give \"classes\" in JSONL")  # fmt: skip
        labels.append(found)
    return labels
