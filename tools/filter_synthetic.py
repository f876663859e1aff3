"""Keep the synthetic images the project's classifier agrees with (kept list, scores in the manifest). Run with --help for the options."""

from wsss.cli.filter_synthetic import main

if __name__ == "__main__":
    raise SystemExit(main())
