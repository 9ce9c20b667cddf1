"""The README's claims that code can check: the settings table is the settings model's."""

from __future__ import annotations

from pathlib import Path

from processor.settings_table import markdown_table

README = Path(__file__).parents[2] / "README.md"


def test_readme_settings_table_is_the_settings_model() -> None:
    assert markdown_table() in README.read_text(encoding="utf-8"), "run: python -m processor.settings_table"


def test_readme_names_the_two_commands_and_ci_runs_the_test_one() -> None:
    text = README.read_text(encoding="utf-8")
    assert "make demo" in text and "make test" in text
    assert "make test" in (README.parent / ".ci" / "run").read_text(encoding="utf-8")
