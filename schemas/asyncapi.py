"""The topics as a contract: an AsyncAPI 3.0 document built from the same pydantic models as the JSON Schema files.

Message payloads are the models' JSON Schemas with their ``$defs`` hoisted into ``components.schemas`` (AsyncAPI's
Schema Object is a superset of JSON Schema draft 07), so the document and ``schemas/json/`` cannot disagree.
Channel addresses are the default topic names; deployments rename them with ``ANONYMIZER_KAFKA__*_TOPIC``.
Kafka bindings (0.5.0) say what the record keys are and which consumer group reads the input.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode

from schemas.events import CloudEvent, CompletionEvent, DeadLetter, FrameEvent, S3Notification

ASYNCAPI_VERSION = "3.0.0"
REF_TEMPLATE = "#/components/schemas/{model}"

# Default topic names (the settings' defaults: KafkaSettings.input_topic, completion_topic, dead_letter_topic).
INPUT_TOPIC = "frames"
COMPLETION_TOPIC = "frames.anonymized"
DEAD_LETTER_TOPIC = "frames.dead-letter"
GROUP_ID = "anonymizer"  # KafkaSettings.group_id
KAFKA_BINDING = "0.5.0"

_KEYS = {
    "completionEvent": "the source object's URL (s3://bucket/key): a source's completions share a partition",
    "deadLetter": "the key of the input record, unchanged (none when it had none)",
}

# (message name, model, title, summary): what each channel carries.
_INPUT_MESSAGES: tuple[tuple[str, type[BaseModel], str, str], ...] = (
    ("frameEvent", FrameEvent, "Frame event", "A reference to a frame or video in object storage to anonymize."),
    (
        "s3Notification",
        S3Notification,
        "S3 / MinIO bucket notification",
        "Every record's object is anonymized; a test event without Records is skipped.",
    ),
    (
        "cloudEvent",
        CloudEvent,
        "CloudEvent (structured mode)",
        "A CloudEvent whose data is a frame event or an S3 notification; binary mode carries ce_* headers instead.",
    ),
)
_COMPLETION = ("completionEvent", CompletionEvent, "Completion event", "Published before the input offset commits.")
_DEAD_LETTER = ("deadLetter", DeadLetter, "Dead letter", "An input that could not be processed, with the reason.")


def _schema(model: type[BaseModel], mode: JsonSchemaMode, components: dict[str, Any]) -> dict[str, str]:
    """Put ``model``'s schema (and its definitions) into ``components``; returns a reference to it."""
    schema = model.model_json_schema(ref_template=REF_TEMPLATE, mode=mode)
    components.update(schema.pop("$defs", {}))
    components[model.__name__] = schema
    return {"$ref": REF_TEMPLATE.format(model=model.__name__)}


def _message(
    entry: tuple[str, type[BaseModel], str, str], mode: JsonSchemaMode, components: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    name, model, title, summary = entry
    message: dict[str, Any] = {
        "name": name,
        "title": title,
        "summary": summary,
        "contentType": "application/json",
        "payload": _schema(model, mode, components),
    }
    if name in _KEYS:
        key = {"type": "string", "description": _KEYS[name]}
        message["bindings"] = {"kafka": {"key": key, "bindingVersion": KAFKA_BINDING}}
    return name, message


def document(version: str) -> dict[str, Any]:
    """The AsyncAPI document of the processor's topics, for processor version ``version``."""
    schemas: dict[str, Any] = {}
    inputs = dict(_message(entry, "validation", schemas) for entry in _INPUT_MESSAGES)
    completion_name, completion = _message(_COMPLETION, "serialization", schemas)
    dead_name, dead = _message(_DEAD_LETTER, "serialization", schemas)
    messages = {**inputs, completion_name: completion, dead_name: dead}

    def refs(channel: str, names: list[str]) -> list[dict[str, str]]:
        return [{"$ref": f"#/channels/{channel}/messages/{name}"} for name in names]

    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "camera-anonymizer topics",
            "version": version,
            "description": (
                "Frame-reference events in, completion events and dead letters out. Delivery is at least once: "
                "a completion is published before the input offset is committed, so consumers must tolerate "
                "duplicates (the output object and the completion's id are the same on a replay)."
            ),
        },
        "defaultContentType": "application/json",
        "channels": {
            "frames": {
                "address": INPUT_TOPIC,
                "description": "Input (ANONYMIZER_KAFKA__INPUT_TOPIC).",
                "messages": {name: {"$ref": f"#/components/messages/{name}"} for name in inputs},
            },
            "completions": {
                "address": COMPLETION_TOPIC,
                "description": "Completion events keyed by source (ANONYMIZER_KAFKA__COMPLETION_TOPIC).",
                "messages": {completion_name: {"$ref": f"#/components/messages/{completion_name}"}},
            },
            "deadLetters": {
                "address": DEAD_LETTER_TOPIC,
                "description": "Dead letters with the original bytes (ANONYMIZER_KAFKA__DEAD_LETTER_TOPIC).",
                "messages": {dead_name: {"$ref": f"#/components/messages/{dead_name}"}},
            },
        },
        "operations": {
            "consumeFrames": {
                "action": "receive",
                "channel": {"$ref": "#/channels/frames"},
                "messages": refs("frames", list(inputs)),
                "bindings": {
                    "kafka": {
                        "groupId": {
                            "type": "string",
                            "default": GROUP_ID,
                            "description": "one group shared by every processor (ANONYMIZER_KAFKA__GROUP_ID)",
                        },
                        "bindingVersion": KAFKA_BINDING,
                    }
                },
            },
            "publishCompletions": {
                "action": "send",
                "channel": {"$ref": "#/channels/completions"},
                "messages": refs("completions", [completion_name]),
            },
            "publishDeadLetters": {
                "action": "send",
                "channel": {"$ref": "#/channels/deadLetters"},
                "messages": refs("deadLetters", [dead_name]),
            },
        },
        "components": {"messages": messages, "schemas": dict(sorted(schemas.items()))},
    }
