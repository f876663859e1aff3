"""Train any wsss model from a config with mmengine's Runner (logs, checkpoints, validation). Run with --help for the options."""

from wsss.cli.train import main

if __name__ == "__main__":
    raise SystemExit(main())
