"""Evaluate a trained Segmenter (configs/seg/...) on its config's test dataset. Run with --help for the options."""

from wsss.cli.test import main

if __name__ == "__main__":
    raise SystemExit(main())
