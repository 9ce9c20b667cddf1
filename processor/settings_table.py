"""The settings model as a Markdown table of environment variables, for the README (a test keeps them equal).

Run: ``python -m processor.settings_table``.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from types import UnionType
from typing import Literal, Union, get_args, get_origin

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from processor.settings import Settings

PREFIX = "ANONYMIZER_"


def env_rows(model: type[BaseModel] = Settings, path: str = "") -> list[tuple[str, str, str]]:
    """(variable, default, description) for every leaf setting, sections flattened with ``__``."""
    rows: list[tuple[str, str, str]] = []
    for name, field in model.model_fields.items():
        variable = f"{path}{name.upper()}"
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            rows.extend(env_rows(annotation, f"{variable}__"))
        else:
            meaning = "; ".join(filter(None, [_choices(annotation), field.description]))
            rows.append((PREFIX + variable, _default(field), meaning))
    return rows


def markdown_table() -> str:
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    lines += [f"| `{variable}` | {default} | {description} |" for variable, default, description in env_rows()]
    return "\n".join(lines) + "\n"


def _choices(annotation: object) -> str:
    """"one of `A`, `B`" for a Literal setting (optional or not), else ""."""
    members = get_args(annotation) if get_origin(annotation) in {Union, UnionType} else (annotation,)
    values = [value for member in members if get_origin(member) is Literal for value in get_args(member)]
    return ("one of " + ", ".join(f"`{value}`" for value in values)) if values else ""


def _default(field: FieldInfo) -> str:
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "–"
    if isinstance(value, SecretStr):
        return "(secret)"
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, frozenset | set):
        value = sorted(value)
    if isinstance(value, Path):
        value = str(value)
    return f"`{value}`".replace("|", "\\|")


if __name__ == "__main__":
    print(markdown_table(), end="")  # noqa: T201
