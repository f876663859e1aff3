"""Plan text-to-image prompts with a belief graph from a dataset's captions and labels. Run with --help for the options."""

from wsss.cli.plan_prompts import main

if __name__ == "__main__":
    raise SystemExit(main())
