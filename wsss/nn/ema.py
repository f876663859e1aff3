"""An exponential-moving-average (EMA) teacher and the hook that updates it after each optimizer step.

Losses that relabel pixels from the model's own predictions (MARS's complementing step) ask a
teacher whose weights trail the student's: ``teacher = decay * teacher + (1 - decay) * student``.

The teacher's tensors are buffers, not parameters: it then has nothing for an optimizer to pick up
(mmengine's param-wise constructor would log one warning per frozen tensor otherwise), it can never
receive a gradient, DDP ignores it, and it still moves with ``.to(device)`` and is saved in, and
resumed from, the model's checkpoints. Its BatchNorm layers become :class:`FrozenBatchNorm`, which
always normalises with running statistics and which ``sync_bn`` conversion leaves alone.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from wsss.registry import HOOKS


class FrozenBatchNorm(nn.Module):
    """Batch norm in eval mode with every tensor a buffer; state-dict keys as in the ``_BatchNorm`` it copies.

    Without running statistics (``track_running_stats=False``) it normalises with the batch's, as
    the original does.
    """

    def __init__(self, batch_norm: _BatchNorm):
        super().__init__()
        self.eps = batch_norm.eps
        for name in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
            tensor = getattr(batch_norm, name, None)
            self.register_buffer(name, None if tensor is None else tensor.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        use_batch_stats = self.running_mean is None
        return F.batch_norm(
            x, self.running_mean, self.running_var, self.weight, self.bias, use_batch_stats, 0.0, self.eps
        )


def _freeze(module: nn.Module) -> None:
    """Swap BatchNorm layers for :class:`FrozenBatchNorm` and re-register all other parameters as buffers."""
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, _BatchNorm):
                setattr(parent, name, FrozenBatchNorm(child))
    for child in module.modules():
        for name, param in list(child._parameters.items()):
            del child._parameters[name]
            child.register_buffer(name, None if param is None else param.detach())


class EMATeacher(nn.Module):
    """A frozen copy of ``student`` that follows it by EMA; always in eval mode, never differentiated.

    ``update(student)`` applies ``t = decay * t + (1 - decay) * s`` to every floating-point tensor of
    the state dict (weights and BatchNorm running statistics) and copies the others (BatchNorm's
    batch counters). ``student`` must have the architecture the teacher was copied from.
    """

    def __init__(self, student: nn.Module, decay: float = 0.999):
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must lie in [0, 1), got {decay}")
        self.decay = decay
        self.network = copy.deepcopy(student)
        _freeze(self.network)
        self.network.eval()

    def train(self, mode: bool = True) -> EMATeacher:
        """Stay in eval mode whatever the parent asks: the teacher predicts with running statistics."""
        return super().train(False)

    def _pairs(self, student: nn.Module) -> list[tuple[torch.Tensor, torch.Tensor]]:
        own = self.network.state_dict()
        theirs = student.state_dict()
        if own.keys() != theirs.keys():
            raise ValueError(
                "the student's architecture differs from the one the EMA teacher was copied from"
            )
        return [(own[name], theirs[name]) for name in own]

    @torch.no_grad()
    def update(self, student: nn.Module) -> None:
        """One EMA step towards ``student``'s current weights."""
        for target, source in self._pairs(student):
            if target.is_floating_point():
                target.lerp_(source.to(target.dtype), 1.0 - self.decay)
            else:
                target.copy_(source)

    @torch.no_grad()
    def copy_from(self, student: nn.Module) -> None:
        """Make the teacher equal to ``student`` (the start of training)."""
        for target, source in self._pairs(student):
            target.copy_(source)

    @torch.no_grad()
    def forward(self, *args, **kwargs):
        return self.network(*args, **kwargs)


@HOOKS.register_module()
class EMATeacherHook(Hook):
    """Drives the model's EMA teacher: copied from the student when training starts from iteration 0,
    one EMA step after every iteration in which the optimizer stepped (so also with gradient
    accumulation).

    The model (unwrapped from DDP) must have a ``teacher`` and the methods ``update_teacher()`` and
    ``reset_teacher()``, as :class:`~wsss.segment.model.Segmenter` has when its loss sets
    ``needs_teacher``. A resumed run keeps the teacher stored in its checkpoint.
    """

    priority = "ABOVE_NORMAL"

    @staticmethod
    def _model(runner) -> nn.Module:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if getattr(model, "teacher", None) is None:
            raise RuntimeError(
                f"EMATeacherHook: {type(model).__name__} has no EMA teacher (its loss does not set "
                "needs_teacher); drop the hook from custom_hooks or use a loss that needs a teacher"
            )
        return model

    def before_train(self, runner) -> None:
        model = self._model(runner)
        if runner.iter == 0:
            model.reset_teacher()

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        should_update = getattr(runner.optim_wrapper, "should_update", None)
        if should_update is None or should_update():
            self._model(runner).update_teacher()
