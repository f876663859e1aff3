"""Training engine: config loading, launcher setup and safe checkpoint loading for mmengine's Runner.

Importing this package makes mmengine read local checkpoints through the allowlisted
``weights_only`` loader of :mod:`wsss.engine.checkpoint`.
"""

from wsss.engine.checkpoint import (
    checkpoint_safe_globals,
    install_safe_checkpoint_loader,
    load_from_local_safely,
)
from wsss.engine.config import load_config, override_data_root
from wsss.engine.launch import prepare_launcher

install_safe_checkpoint_loader()

__all__ = [
    "checkpoint_safe_globals",
    "install_safe_checkpoint_loader",
    "load_config",
    "load_from_local_safely",
    "override_data_root",
    "prepare_launcher",
]
