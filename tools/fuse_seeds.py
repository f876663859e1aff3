"""Fuse BAS seeds with CAM seeds, as the BAS authors make their pseudo masks. Run with --help for the options."""

from wsss.cli.fuse_seeds import main

if __name__ == "__main__":
    raise SystemExit(main())
