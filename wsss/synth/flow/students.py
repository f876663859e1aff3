"""Multi-student distillation (MSD, METHODS.md section 3): K velocity networks, one per group of classes.

The conditions are split into K disjoint groups of classes (by default consecutive blocks of the
vocabulary's class order, as MSD does with class indices); each group has its own student UNet, and
a prompt is drawn by the student of the first class it names, in that order. Training routes each
(noise, sample, caption) pair the same way, so a student only ever sees its own conditions. The text
encoder stays shared, as the frozen text encoder of a latent diffusion model is.

A prompt naming no class has no student: multi-student models are distilled one-step models, sampled
at guidance 1 (no empty prompt), and trained without condition dropout.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from wsss.synth.flow.text_encoder import TextContext
from wsss.synth.flow.unet import FlowUNet
from wsss.synth.flow.vocabulary import Vocabulary


def class_groups(classes: Sequence[str], students: int,
                 groups: Sequence[Sequence[str]] | None = None) -> list[tuple[str, ...]]:  # fmt: skip
    """The ``students`` groups of ``classes``: ``groups`` checked to partition them, or consecutive blocks.

    Blocks differ in size by at most one class, the larger first.
    """
    if groups is None:
        if students > len(classes):
            raise ValueError(
                f"{students} students for {len(classes)} classes; use at most one student per class"
            )
        size, extra = divmod(len(classes), students)
        bounds = [k * size + min(k, extra) for k in range(students + 1)]
        return [tuple(classes[bounds[k] : bounds[k + 1]]) for k in range(students)]
    if len(groups) != students:
        raise ValueError(
            f"student_groups has {len(groups)} groups for {students} students; give one per student"
        )
    named = [name for group in groups for name in group]
    repeated = sorted({name for name in named if named.count(name) > 1})
    unknown = sorted(set(named) - set(classes))
    missing = [name for name in classes if name not in named]
    if repeated or unknown or missing or any(not group for group in groups):
        raise ValueError(
            "student_groups must split the model's classes into non-empty disjoint groups: "
            f"repeated {repeated}, unknown {unknown}, missing {missing} (classes: {', '.join(classes)})"
        )
    return [tuple(group) for group in groups]


def student_routes(vocabulary: Vocabulary, groups: Sequence[Sequence[str]], prompts: Sequence[str]) -> Tensor:
    """``(B,)`` int64: the student of each prompt, the group of the first class it names in the vocabulary's order."""
    student_of = {name: k for k, group in enumerate(groups) for name in group}
    routes = []
    for prompt in prompts:
        named = vocabulary.classes_in(prompt)
        if not named:
            raise ValueError(
                f"{prompt!r} names no class, so no student of this {len(groups)}-student model draws it; "
                f"name one of {', '.join(vocabulary.classes)} and sample at guidance 1"
            )
        routes.append(student_of[named[0]])
    return torch.tensor(routes, dtype=torch.long)


class StudentUNets(nn.Module):
    """``students`` copies of :class:`~wsss.synth.flow.unet.FlowUNet`; each image goes through its own.

    Its ``forward`` takes a text context whose ``route`` gives the student of every row. A state dict
    of a single-network flow model (keys ``unet.*``, e.g. the 2-RF teacher that distillation starts
    from) is loaded into every student. In training, a student without images in the batch still
    takes part with a zero term, so that data-parallel training sees a gradient for every parameter.
    """

    def __init__(self, count: int, **unet: Any):
        super().__init__()
        self.students = nn.ModuleList(FlowUNet(**unet) for _ in range(count))

    def forward(self, x: Tensor, t: Tensor, text: TextContext) -> Tensor:
        if text.route is None:
            raise ValueError(
                "a multi-student model needs each prompt's student; encode prompts with the model"
            )
        route = text.route.to(x.device)
        order, parts, idle = [], [], []
        for k, student in enumerate(self.students):
            rows = torch.nonzero(route == k).flatten()
            if rows.numel():
                order.append(rows)
                parts.append(student(x[rows], t[rows], text.select(rows)))
            elif torch.is_grad_enabled():
                idle.append(sum(p.sum() for p in student.parameters()))
        out = torch.cat(parts)[torch.argsort(torch.cat(order))]  # back to the batch's order
        return out + 0.0 * sum(idle) if idle else out


def load_single_network_into_students(state_dict: dict[str, Tensor], prefix: str, students: int) -> None:
    """Rewrite ``state_dict`` in place: keys ``{prefix}unet.*`` become ``{prefix}unet.students.{k}.*`` for every k.

    A no-op for a multi-student state dict. Used as a load-state-dict pre-hook of the flow model.
    """
    single = f"{prefix}unet."
    if any(key.startswith(f"{single}students.") for key in state_dict):
        return
    for key in [key for key in state_dict if key.startswith(single)]:
        value = state_dict.pop(key)
        for k in range(students):
            state_dict[f"{single}students.{k}.{key[len(single) :]}"] = value.clone()
