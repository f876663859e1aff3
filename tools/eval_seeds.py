"""Evaluate seeds against ground-truth label PNGs by a background-threshold sweep. Run with --help for the options."""

from wsss.cli.eval_seeds import main

if __name__ == "__main__":
    raise SystemExit(main())
