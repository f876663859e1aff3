"""Find nearest neighbours of every image by a backbone descriptor (STEGO pairs). Run with --help for the options."""

from wsss.cli.find_neighbours import main

if __name__ == "__main__":
    raise SystemExit(main())
