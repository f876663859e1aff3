"""Turn seed files (<id>.npz: keys + maps) into pseudo-label PNGs, optionally refined by a dense CRF. Run with --help for the options."""

from wsss.cli.make_pseudo_labels import main

if __name__ == "__main__":
    raise SystemExit(main())
