"""The committed JSON Schema files match the pydantic models, describe real events, and drift is detected."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from schemas import export
from schemas.events import DeadLetter


def test_committed_schema_files_match_the_models() -> None:
    assert export.drifted() == [], "JSON Schema files drifted: run `python -m schemas.export` and commit them"


def test_every_exported_file_is_a_valid_json_schema() -> None:
    for name, text in export.render().items():
        if name == export.ASYNCAPI_FILE:
            continue  # an AsyncAPI document, validated against the AsyncAPI schema in tests/deploy/test_asyncapi.py
        schema = json.loads(text)
        Draft202012Validator.check_schema(schema)
        assert text.endswith(b"}\n"), name


def test_check_reports_a_changed_a_missing_and_a_stale_file(tmp_path: Path) -> None:
    assert export.main(["--dir", str(tmp_path)]) == 0
    (tmp_path / "frame_event.schema.json").write_text("{}\n")
    (tmp_path / "dead_letter.schema.json").unlink()
    (tmp_path / "removed_model.schema.json").write_text("{}\n")

    assert export.drifted(tmp_path) == [
        "dead_letter.schema.json",
        "frame_event.schema.json",
        "removed_model.schema.json",
    ]
    assert export.main(["--check", "--dir", str(tmp_path)]) == 1

    assert export.main(["--dir", str(tmp_path)]) == 0
    assert export.main(["--check", "--dir", str(tmp_path)]) == 0
    assert not (tmp_path / "removed_model.schema.json").exists()


def test_rendering_is_deterministic() -> None:
    assert export.render() == export.render()


@pytest.mark.parametrize(
    ("stem", "instance", "valid"),
    [
        ("frame_event", {"id": "cam7-0001", "source": "s3://frames/cam7/0001.jpg", "configuration": "faces"}, True),
        ("frame_event", {"id": "a", "source": "file:///data/a.jpg", "attributes": {"vehicle": "V-12", "lap": 3}}, True),
        ("frame_event", {"id": "a", "source": "http://example.com/a.jpg"}, False),
        ("frame_event", {"id": "a", "source": "s3://b/k.jpg", "configuration": "../../etc/passwd"}, False),
        ("frame_event", {"source": "s3://b/k.jpg"}, False),
        ("s3_notification", {"Records": [{"eventName": "s3:ObjectCreated:Put", "s3": {
            "bucket": {"name": "images"}, "object": {"key": "a.jpg", "size": 3}}}]}, True),
        ("cloud_event", {"specversion": "1.0", "type": "t", "source": "/s", "id": "1", "data": {}}, True),
        ("cloud_event", {"specversion": "0.3", "type": "t", "source": "/s", "id": "1"}, False),
    ],
)  # fmt: skip
def test_schemas_accept_real_events_and_refuse_wrong_ones(stem: str, instance: object, valid: bool) -> None:
    schema = json.loads(export.render()[stem + export.SUFFIX])
    assert Draft202012Validator(schema).is_valid(instance) is valid


def test_a_serialized_dead_letter_validates_against_its_schema() -> None:
    letter = DeadLetter(
        event_id=None,
        error_kind="invalid_event",
        error_message="not JSON",
        attempts=1,
        source_topic="frames",
        source_partition=2,
        source_offset=41,
        headers=DeadLetter.encode_headers([("ce_id", b"\x00\xff")]),
        payload_base64=DeadLetter.encode_payload(b"\xff not json"),
        failed_at=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
        processor_version="0.1.0",
    )
    schema = json.loads(export.render()["dead_letter" + export.SUFFIX])
    Draft202012Validator(schema).validate(json.loads(letter.model_dump_json()))
    assert letter.payload() == b"\xff not json"
    assert letter.original_headers() == [("ce_id", b"\x00\xff")]
