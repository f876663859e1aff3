"""Training and inference plumbing: config loading, launchers, safe checkpoint loading, model building.

Nothing here changes global state at import; the tools that let mmengine read checkpoints install
the safe loader themselves (:func:`wsss.engine.checkpoint.install_safe_checkpoint_loader`).
"""
