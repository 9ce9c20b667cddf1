"""Loading user configurations: every problem of every entry reported at once, techniques checked too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from processor.anonymize.registry import is_technique, technique_names
from processor.errors import InvalidConfiguration
from processor.inference.builtin.catalog import BUILTIN_URL
from schemas.config import InferenceType, SensitiveInfo, UserConfiguration


def builtin_entry(model_name: str, class_name: str, inference_type: InferenceType) -> SensitiveInfo:
    """An entry served by the built-in detectors, blurred at degree 1."""
    return SensitiveInfo(
        model_name=model_name,
        class_name=class_name,
        anonymization_technique="blurring",
        inference_type=inference_type,
        anonymization_degree=1.0,
        url=BUILTIN_URL,
    )


def default_configuration(*, persons: bool = False) -> UserConfiguration:
    """The embedded default: faces and licence plates (and persons if asked) blurred by the built-in detectors."""
    entries = [
        builtin_entry("centerface", "face", InferenceType.detection),
        builtin_entry("plate_reader", "license_plate", InferenceType.detection),
    ]
    if persons:
        entries.append(builtin_entry("nanodet", "person", InferenceType.detection))
    return UserConfiguration(sensitive_info=entries)


def chosen_configuration(path: Path | None, *, persons: bool = False) -> UserConfiguration:
    """The configuration a command was given (a file), else the embedded default."""
    return load_configuration(path) if path is not None else default_configuration(persons=persons)


def parse_configuration(raw: bytes | str | dict[str, Any]) -> UserConfiguration:
    """Validate a user configuration (JSON text or a decoded object). Raises InvalidConfiguration listing all
    problems, each naming the entry and field, e.g. ``sensitive_info[2].class_name: Field required``."""
    if isinstance(raw, bytes | str):
        try:
            raw = orjson.loads(raw)
        except orjson.JSONDecodeError as error:
            raise InvalidConfiguration([f"configuration is not valid JSON: {error}"]) from error
    if not isinstance(raw, dict):
        raise InvalidConfiguration([f"configuration must be a JSON object, got {type(raw).__name__}"])
    problems = _technique_problems(raw.get("sensitive_info"))
    try:
        configuration = UserConfiguration.model_validate(raw)
    except ValidationError as error:
        raise InvalidConfiguration([_describe(detail) for detail in error.errors()] + problems) from error
    if problems:
        raise InvalidConfiguration(problems)
    return configuration


def load_configuration(path: Path) -> UserConfiguration:
    """Read and validate a configuration file; a missing file is a configuration problem, named."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise InvalidConfiguration([f"cannot read configuration file {path}: {error.strerror}"]) from error
    return parse_configuration(raw)


def check_techniques(configuration: UserConfiguration) -> None:
    """Every entry's technique must be registered. Raises InvalidConfiguration naming each bad entry."""
    problems = _technique_problems(configuration.model_dump()["sensitive_info"])
    if problems:
        raise InvalidConfiguration(problems)


def _technique_problems(entries: Any) -> list[str]:
    """Unknown techniques among raw entries, so they are reported along with the schema's problems."""
    if not isinstance(entries, list):
        return []
    known = technique_names()
    return [
        f"sensitive_info[{index}].anonymization_technique: unknown technique {technique!r}; "
        f"known: {', '.join(known)}, solid:RRGGBB"
        for index, entry in enumerate(entries)
        if isinstance(entry, dict)
        and isinstance(technique := entry.get("anonymization_technique"), str)
        and not is_technique(technique)
    ]


def _describe(detail: Any) -> str:
    location = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in detail["loc"]).lstrip(".")
    return f"{location or 'configuration'}: {detail['msg']}"
