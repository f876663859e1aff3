"""Evaluate a folder of label PNGs (pseudo labels or predictions) against ground-truth PNGs. Run with --help for the options."""

from wsss.cli.eval_seg import main

if __name__ == "__main__":
    raise SystemExit(main())
