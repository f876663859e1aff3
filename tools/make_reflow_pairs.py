"""Make reflow pairs (noise, ODE sample, caption) of a trained flow model. Run with --help for the options."""

from wsss.cli.make_reflow_pairs import main

if __name__ == "__main__":
    raise SystemExit(main())
