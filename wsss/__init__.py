"""wsss: weakly supervised semantic segmentation toolkit.

The package mirrors the pipeline: ``data`` -> ``localize`` (BAS, CAM, seeds) -> ``pseudo`` (pseudo
labels) -> ``segment`` (DeepLab), with ``evaluation`` (metrics) and ``visualize`` (figures) after
them, ``engine`` (configs, launchers, checkpoints) and ``pipeline`` (the whole job) on top, and
``cli`` (the command-line tools). Importing it has no side effects.
"""

__version__ = "0.1.0"
