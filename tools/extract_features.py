"""Extract dense features: multi-scale + flip features of a feature model for every image of a split. Run with --help for the options."""

from wsss.cli.extract_features import main

if __name__ == "__main__":
    raise SystemExit(main())
