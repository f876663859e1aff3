"""MARS: mark the biased objects in base pseudo labels. Run with --help for the options."""

from wsss.cli.mars import main

if __name__ == "__main__":
    raise SystemExit(main())
