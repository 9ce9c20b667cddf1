"""Export the wire contracts as JSON Schema files and the topics' AsyncAPI document: ``python -m schemas.export``
writes schemas/json/,
``python -m schemas.export --check`` exits 1 listing the files that drifted from the models.

Output is deterministic (sorted keys, two-space indent, trailing newline), so the files can be committed
and compared byte for byte.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Literal

import orjson
from pydantic import BaseModel

from schemas import asyncapi, inference
from schemas.config import UrlConfiguration, UserConfiguration
from schemas.events import CloudEvent, CompletionEvent, DeadLetter, FrameEvent, S3Notification
from schemas.results import FrameResult

JSON_DIR = Path(__file__).parent / "json"
SUFFIX = ".schema.json"
ASYNCAPI_FILE = "asyncapi.json"
DISTRIBUTION = "camera-anonymizer"
DIALECT = "https://json-schema.org/draft/2020-12/schema"

Mode = Literal["validation", "serialization"]

# The one list of exported models: file stem, model, and whether the file describes what we accept
# (validation) or what we emit (serialization).
MODELS: tuple[tuple[str, type[BaseModel], Mode], ...] = (
    ("user_configuration", UserConfiguration, "validation"),
    ("url_configuration", UrlConfiguration, "validation"),
    ("frame_event", FrameEvent, "validation"),
    ("s3_notification", S3Notification, "validation"),
    ("cloud_event", CloudEvent, "validation"),
    ("completion_event", CompletionEvent, "serialization"),
    ("dead_letter", DeadLetter, "serialization"),
    ("frame_result", FrameResult, "serialization"),
    ("inference_models_response", inference.ModelsResponse, "validation"),
    ("inference_labels_response", inference.LabelsResponse, "validation"),
    ("inference_config_response", inference.ConfigResponse, "validation"),
    ("inference_palette_response", inference.PaletteResponse, "validation"),
    ("inference_detection_response", inference.DetectionResponse, "validation"),
)


def render() -> dict[str, bytes]:
    """File name → exact file contents, for every exported model and the AsyncAPI document."""
    files: dict[str, bytes] = {}
    for stem, model, mode in MODELS:
        schema = {"$schema": DIALECT, **model.model_json_schema(mode=mode)}
        files[stem + SUFFIX] = _dumps(schema)
    files[ASYNCAPI_FILE] = _dumps(asyncapi.document(version(DISTRIBUTION)))
    return files


def _dumps(document: dict[str, object]) -> bytes:
    return orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def drifted(directory: Path = JSON_DIR) -> list[str]:
    """Names of files that differ from the models, are missing, or belong to no model any more."""
    expected = render()
    present = {path.name for path in directory.glob("*" + SUFFIX)}
    stale = sorted(present - expected.keys())
    changed = [
        name
        for name, text in expected.items()
        if not (directory / name).is_file() or (directory / name).read_bytes() != text
    ]
    return sorted(changed) + stale


def write(directory: Path = JSON_DIR) -> list[str]:
    """Rewrite every schema file and delete stale ones; returns the names that changed."""
    changes = drifted(directory)
    directory.mkdir(parents=True, exist_ok=True)
    expected = render()
    for name in changes:
        path = directory / name
        if name in expected:
            path.write_bytes(expected[name])
        else:
            path.unlink()
    return changes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m schemas.export", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if the files differ from the models")
    parser.add_argument("--dir", type=Path, default=JSON_DIR, help=f"output folder (default {JSON_DIR})")
    arguments = parser.parse_args(argv)
    if arguments.check:
        changes = drifted(arguments.dir)
        for name in changes:
            print(f"drifted: {arguments.dir / name}", file=sys.stderr)  # noqa: T201
        if changes:
            print("regenerate with: python -m schemas.export", file=sys.stderr)  # noqa: T201
        return 1 if changes else 0
    for name in write(arguments.dir):
        print(f"wrote {arguments.dir / name}")  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
