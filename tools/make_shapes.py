"""Write the procedural "shapes" dataset (the toolkit's embedded data) in VOC layout. Run with --help for the options."""

from wsss.cli.make_shapes import main

if __name__ == "__main__":
    raise SystemExit(main())
