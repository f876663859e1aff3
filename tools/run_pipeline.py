"""Run the whole weakly supervised pipeline and write a report. Run with --help for the options."""

from wsss.cli.run_pipeline import main

if __name__ == "__main__":
    raise SystemExit(main())
