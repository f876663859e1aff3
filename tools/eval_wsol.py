"""Evaluate a BAS WSOL model on CUB-200-2011 test: Top-1 / Top-5 / GT-known Loc and MaxBoxAccV2. Run with --help for the options."""

from wsss.cli.eval_wsol import main

if __name__ == "__main__":
    raise SystemExit(main())
