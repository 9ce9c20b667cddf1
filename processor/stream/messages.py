"""Raw Kafka record → FrameEvents, whatever the producer: a FrameEvent, an S3/MinIO bucket notification, or a
CloudEvent (structured JSON or binary mode with ``ce_`` headers). Pure: no I/O.

The kind is detected per message, in this order: ``ce_specversion`` header → binary CloudEvent; content type
``application/cloudevents+json`` or a ``specversion`` field → structured CloudEvent; a ``Records`` field or an
``s3:TestEvent`` → bucket notification; anything else must be a FrameEvent. A message may yield several events
(one per ObjectCreated record) or none (test events, deletions, folder markers).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any, TypeVar
from urllib.parse import unquote_plus

import orjson
from pydantic import BaseModel, ValidationError

from processor.errors import InvalidEvent
from schemas.events import CloudEvent, FrameEvent, JsonScalar, S3Notification, S3Record

Headers = Sequence[tuple[str, bytes]]

CLOUDEVENTS_JSON = "application/cloudevents+json"
_CE_PREFIX = "ce_"
_MAX_REPORTED_ERRORS = 5

ModelT = TypeVar("ModelT", bound=BaseModel)


def parse_message(value: bytes | None, headers: Headers) -> list[FrameEvent]:
    """The frame events a record asks for, in order. Raises InvalidEvent naming what is wrong."""
    header_map = {key.lower(): raw for key, raw in headers}
    if _CE_PREFIX + "specversion" in header_map:
        return _from_cloud_event(_binary_cloud_event(value, header_map))
    document = _json_object(value, "message")
    if _media_type(header_map.get("content-type")) == CLOUDEVENTS_JSON or "specversion" in document:
        return _from_cloud_event(_validate(CloudEvent, document))
    if "Records" in document or document.get("Event") == "s3:TestEvent":
        return _from_notification(_validate(S3Notification, document))
    return [_validate(FrameEvent, document)]


def record_event(record: S3Record) -> FrameEvent | None:
    """The FrameEvent for one notification record, or None when the record asks for no work.

    Keys arrive URL-encoded as in a form (``+`` is a space, ``%2B`` a plus). The id is derived from the
    bucket, key and ETag (or sequencer), so a redelivered notification keeps its id.
    """
    key = unquote_plus(record.s3.object.key)
    if not record.is_object_created or key.endswith("/"):
        return None
    bucket = record.s3.bucket.name
    version = record.s3.object.e_tag or record.s3.object.sequencer
    attributes: dict[str, JsonScalar] = {
        "event_name": record.event_name,
        "event_time": record.event_time,
        "size": record.s3.object.size,
        "etag": record.s3.object.e_tag,
    }
    return _validate(
        FrameEvent,
        {
            "id": f"{bucket}/{key}@{version}" if version else f"{bucket}/{key}",
            "source": f"s3://{bucket}/{key}",
            "attributes": {name: item for name, item in attributes.items() if item is not None},
        },
    )


def _from_notification(notification: S3Notification) -> list[FrameEvent]:
    events = (record_event(record) for record in notification.records)
    return [event for event in events if event is not None]


def _from_cloud_event(event: CloudEvent) -> list[FrameEvent]:
    data = _cloud_event_data(event)
    if "Records" in data or data.get("Event") == "s3:TestEvent":
        return _from_notification(_validate(S3Notification, data))
    if "s3" in data and "eventName" in data:
        single = record_event(_validate(S3Record, data))
        return [] if single is None else [single]
    return [_validate(FrameEvent, {"id": event.id, **data})]


def _cloud_event_data(event: CloudEvent) -> dict[str, Any]:
    media_type = _media_type(event.datacontenttype)
    if media_type is not None and not _is_json(media_type):
        raise InvalidEvent(f"CloudEvent.datacontenttype: {event.datacontenttype!r} is not JSON")
    if event.data_base64 is not None:
        try:
            raw = base64.b64decode(event.data_base64, validate=True)
        except binascii.Error as error:
            raise InvalidEvent(f"CloudEvent.data_base64: not base64 ({error})") from error
        return _json_object(raw, "CloudEvent.data_base64")
    data = event.data
    if isinstance(data, str | bytes):
        return _json_object(data.encode() if isinstance(data, str) else data, "CloudEvent.data")
    if not isinstance(data, dict):
        raise InvalidEvent("CloudEvent.data: must be a JSON object (a frame event or an S3 notification)")
    return data


def _binary_cloud_event(value: bytes | None, header_map: dict[str, bytes]) -> CloudEvent:
    """Binary content mode: attributes in ``ce_*`` headers, ``content-type`` = datacontenttype, data = the value."""
    attributes: dict[str, Any] = {}
    for key, raw in header_map.items():
        if key.startswith(_CE_PREFIX):
            attributes[key.removeprefix(_CE_PREFIX)] = _header_text(key, raw)
    if "content-type" in header_map:
        attributes["datacontenttype"] = _header_text("content-type", header_map["content-type"])
    if value is not None:
        attributes["data_base64"] = base64.b64encode(value).decode("ascii")
    return _validate(CloudEvent, attributes)


def _json_object(value: bytes | None, what: str) -> dict[str, Any]:
    if not value:
        raise InvalidEvent(f"{what}: empty, expected a JSON object")
    try:
        document = orjson.loads(value)
    except orjson.JSONDecodeError as error:
        raise InvalidEvent(f"{what}: not valid JSON ({error})") from error
    if not isinstance(document, dict):
        raise InvalidEvent(f"{what}: expected a JSON object, got {type(document).__name__}")
    return document


def _validate(model: type[ModelT], document: dict[str, Any]) -> ModelT:
    try:
        return model.model_validate(document)
    except ValidationError as error:
        raise InvalidEvent(_describe(model.__name__, error)) from error


def _describe(model_name: str, error: ValidationError) -> str:
    """``FrameEvent.source: Field required; FrameEvent.id: ...`` (the first few problems)."""
    problems = [
        f"{model_name}.{'.'.join(str(part) for part in detail['loc'])}: {detail['msg']}"
        for detail in error.errors(include_url=False)
    ]
    more = len(problems) - _MAX_REPORTED_ERRORS
    return "; ".join(problems[:_MAX_REPORTED_ERRORS]) + (f"; and {more} more" if more > 0 else "")


def _header_text(key: str, raw: bytes | None) -> str:
    try:
        return (raw or b"").decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidEvent(f"header {key}: not UTF-8") from error


def _media_type(content_type: bytes | str | None) -> str | None:
    """``application/json; charset=utf-8`` → ``application/json``; None when absent."""
    if content_type is None:
        return None
    text = content_type.decode("latin-1") if isinstance(content_type, bytes) else content_type
    return text.split(";", 1)[0].strip().lower() or None


def _is_json(media_type: str) -> bool:
    return media_type in {"application/json", "text/json"} or media_type.endswith("+json")
