"""Draw images with their seeds, pseudo labels, predictions and ground truth as one PNG grid. Run with --help for the options."""

from wsss.cli.visualize import main

if __name__ == "__main__":
    raise SystemExit(main())
