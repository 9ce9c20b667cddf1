"""`python -m processor` runs the command-line interface."""

from processor.cli import entry

entry()
