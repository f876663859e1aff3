"""Launcher setup: distributed runs with torchrun, also on machines without CUDA (gloo on CPU)."""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import Iterator

import torch
import torch.distributed as dist
from mmengine.config import Config

LAUNCHERS = ("none", "pytorch")


def prepare_launcher(cfg: Config, launcher: str) -> None:
    """Set ``cfg.launcher``; under ``pytorch`` without CUDA, switch to gloo and a CPU DDP wrapper.

    mmengine's own distributed init pins a CUDA device and its DDP wrapper passes CUDA device ids,
    both of which fail on a CPU-only machine, so there the process group is started here (gloo,
    from torchrun's environment) and the wrapper gets ``device_ids=None``.
    """
    if launcher not in LAUNCHERS:
        raise ValueError(f"launcher must be one of {LAUNCHERS}, got {launcher!r}")
    cfg.launcher = launcher
    if launcher == "none" or torch.cuda.is_available():
        return
    cfg.merge_from_dict({"env_cfg.dist_cfg.backend": "gloo"})
    wrapper = dict(cfg.get("model_wrapper_cfg") or {})
    wrapper.setdefault("type", "MMDistributedDataParallel")
    wrapper.setdefault("broadcast_buffers", False)
    wrapper.setdefault("find_unused_parameters", cfg.get("find_unused_parameters", False))
    wrapper["device_ids"] = None
    cfg.model_wrapper_cfg = wrapper
    if not dist.is_initialized():
        timeout = cfg.env_cfg.dist_cfg.get("timeout")
        extra = {"timeout": datetime.timedelta(seconds=timeout)} if timeout is not None else {}
        dist.init_process_group(backend="gloo", **extra)


TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def join_torchrun_group(device: str) -> torch.device:
    """Join the process group torchrun describes (nccl on CUDA, gloo on CPU); returns this rank's device.

    For the tools that run their own loops (seeds, testing) rather than mmengine's Runner. Raises
    ValueError naming the missing variables when the process was not started by torchrun.
    """
    missing = [name for name in TORCHRUN_VARIABLES if name not in os.environ]
    if missing:
        raise ValueError(
            f"--launcher pytorch needs the environment torchrun sets ({', '.join(missing)} missing); start "
            "the tool with python -m torch.distributed.run --nproc_per_node N ... --launcher pytorch"
        )
    if device == "cuda":
        target = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(target)
    else:
        target = torch.device("cpu")
    if not dist.is_initialized():
        if device == "cuda":
            dist.init_process_group(backend="nccl", device_id=target)
        else:
            dist.init_process_group(backend="gloo")
    return target


def device_for(device: str, launcher: str) -> torch.device:
    """This process's device: ``device`` alone, or under ``--launcher pytorch`` this rank's after joining the group."""
    return join_torchrun_group(device) if launcher == "pytorch" else torch.device(device)


@contextlib.contextmanager
def launched(device: str, launcher: str) -> Iterator[tuple[torch.device, int, int]]:
    """``(device, rank, world_size)`` for a tool's own loop; the torchrun group it joined is left at the end."""
    target = device_for(device, launcher)
    try:
        yield (target, dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (target, 0, 1)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
