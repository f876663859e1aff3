"""Generate synthetic training images from prompts with a one-step generator, as a VOC-layout dataset. Run with --help for the options."""

from wsss.cli.generate_synthetic import main

if __name__ == "__main__":
    raise SystemExit(main())
