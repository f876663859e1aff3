"""wsss: weakly supervised semantic segmentation toolkit."""

import os

# albumentations asks the network for a newer release at import; this toolkit never touches the network.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

__version__ = "0.1.0"
