"""Convert a COCO instances json into VOC-layout label PNGs, split lists and image-level labels for WSSS. Run with --help for the options."""

from wsss.cli.prepare_coco import main

if __name__ == "__main__":
    raise SystemExit(main())
