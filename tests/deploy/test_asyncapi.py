"""The topics' AsyncAPI document is valid AsyncAPI 3.0 (the official JSON Schema from npm @asyncapi/specs), names
the settings' default topics, and carries exactly the models the JSON Schema files export."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator

from processor.settings import KafkaSettings
from schemas import export

SPECS_VERSION = "6.11.1"
SPEC_FILE = Path(sys.executable).parents[1] / "tools" / "node_modules" / "@asyncapi" / "specs" / "schemas"
SPEC_FILE = SPEC_FILE / "3.0.0-without-$id.json"


@pytest.fixture(scope="module")
def validator() -> Draft7Validator:
    if not SPEC_FILE.is_file():
        pytest.fail(f"missing {SPEC_FILE}: npm install --prefix {SPEC_FILE.parents[4]} @asyncapi/specs@{SPECS_VERSION}")
    return Draft7Validator(json.loads(SPEC_FILE.read_text(encoding="utf-8")))


def committed() -> dict[str, Any]:
    document: dict[str, Any] = json.loads((export.JSON_DIR / export.ASYNCAPI_FILE).read_bytes())
    return document


def test_the_committed_document_is_valid_asyncapi_3(validator: Draft7Validator) -> None:
    errors = [f"{list(error.path)}: {error.message}" for error in validator.iter_errors(committed())]
    assert errors == []


def test_the_validator_rejects_a_broken_document(validator: Draft7Validator) -> None:
    broken = committed()
    broken["channels"]["frames"]["address"] = 7
    del broken["info"]
    assert len(list(validator.iter_errors(broken))) == 2


def test_channel_addresses_are_the_default_topics() -> None:
    channels = committed()["channels"]
    defaults = KafkaSettings()
    assert channels["frames"]["address"] == defaults.input_topic
    assert channels["completions"]["address"] == defaults.completion_topic
    assert channels["deadLetters"]["address"] == defaults.dead_letter_topic


def test_every_message_payload_resolves_to_the_exported_model_schema() -> None:
    document = committed()
    schemas = document["components"]["schemas"]
    payloads = {
        name: message["payload"]["$ref"].removeprefix("#/components/schemas/")
        for name, message in document["components"]["messages"].items()
    }
    assert payloads == {
        "frameEvent": "FrameEvent",
        "s3Notification": "S3Notification",
        "cloudEvent": "CloudEvent",
        "completionEvent": "CompletionEvent",
        "deadLetter": "DeadLetter",
    }
    exported = {model.__name__: model.model_json_schema(mode=mode) for _, model, mode in export.MODELS}
    for model in payloads.values():
        assert set(schemas[model]["properties"]) == set(exported[model]["properties"]), model
    unresolved = [ref for ref in _refs(document) if ref.startswith("#/") and _lookup(document, ref) is None]
    assert unresolved == []


def _refs(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


def _lookup(document: dict[str, Any], ref: str) -> object | None:
    node: object = document
    for part in ref.removeprefix("#/").split("/"):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def test_kafka_bindings_name_the_record_keys_and_the_consumer_group() -> None:
    document = committed()
    messages = document["components"]["messages"]
    assert "source object's URL" in messages["completionEvent"]["bindings"]["kafka"]["key"]["description"]
    assert "key of the input record" in messages["deadLetter"]["bindings"]["kafka"]["key"]["description"]
    group = document["operations"]["consumeFrames"]["bindings"]["kafka"]["groupId"]
    assert group["default"] == KafkaSettings().group_id
