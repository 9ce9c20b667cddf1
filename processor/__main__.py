"""`python -m processor` runs the command-line interface."""

from processor.cli import main

raise SystemExit(main())
