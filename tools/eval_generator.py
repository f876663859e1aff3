"""Evaluate a flow generator: trajectory straightness, the one-step gap, image grids. Run with --help for the options."""

from wsss.cli.eval_generator import main

if __name__ == "__main__":
    raise SystemExit(main())
