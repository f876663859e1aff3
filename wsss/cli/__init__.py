"""Command-line entry points, one module per tool (``python -m wsss.cli.<tool>`` or ``tools/<tool>.py``).

Each module parses arguments, calls the library and turns a user's mistake into one line
``error: ...`` with exit code 2 (see :mod:`wsss.cli.common`). Importing this package prepares the
process for a command-line run: albumentations' update check, which would reach PyPI at import,
is switched off, since nothing in this toolkit may touch the network at run time.
"""

import os

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
