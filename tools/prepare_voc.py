"""Check a PASCAL VOC 2012 devkit and write the files WSSS training reads. Run with --help for the options."""

from wsss.cli.prepare_voc import main

if __name__ == "__main__":
    raise SystemExit(main())
