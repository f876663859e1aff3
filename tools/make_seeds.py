"""Make seeds: multi-scale + flip maps of a trained localizer for every image of a split. Run with --help for the options."""

from wsss.cli.make_seeds import main

if __name__ == "__main__":
    raise SystemExit(main())
