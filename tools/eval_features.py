"""Probe a feature folder against ground truth (cluster, linear, context). Run with --help for the options."""

from wsss.cli.eval_features import main

if __name__ == "__main__":
    raise SystemExit(main())
