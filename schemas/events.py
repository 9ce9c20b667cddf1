"""Stream events: what the processor consumes (FrameEvent, S3/MinIO notifications, CloudEvents) and produces
(CompletionEvent, DeadLetter).

Events we own are strict (unknown fields are refused, so a misspelt ``configuration`` is dead-lettered
instead of silently falling back to the default); events other systems send are tolerant (extra fields
ignored).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Discriminator, Field, StringConstraints, Tag

from schemas.config import UserConfiguration
from schemas.results import FrameResult

ObjectUrl = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, pattern=r"^(?:(?:s3|gs|az|memory)://[^/\s]+/.+|file:///.+)$", max_length=4096
    ),
]
"""``s3://bucket/key``, ``gs://``, ``az://container/key``, ``file:///path`` or ``memory://bucket/key``."""

ConfigurationName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}$")]
"""The name of a stored configuration (``<configurations_dir>/<name>.json``); never a path."""

EventId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4096)]

JsonScalar = str | int | float | bool | None
Attributes = dict[str, JsonScalar]

_strict = ConfigDict(extra="forbid", frozen=True)
_tolerant = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class EventKind(StrEnum):
    frame = "frame"
    video = "video"


def _configuration_tag(value: Any) -> str:
    return "name" if isinstance(value, str) else "inline"


class FrameEvent(BaseModel):
    """A request to anonymize one object (a frame, or a video with ``kind: video``)."""

    model_config = _strict

    id: EventId = Field(description="unique per object; replays of the same object should reuse it")
    source: ObjectUrl = Field(description="the object to anonymize, e.g. s3://bucket/camera-7/0001.jpg")
    output: ObjectUrl | None = Field(
        default=None, description="explicit output URL; default: derived from the source key and the configuration"
    )
    configuration: (
        Annotated[
            Annotated[UserConfiguration, Tag("inline")] | Annotated[ConfigurationName, Tag("name")],
            Discriminator(_configuration_tag),
        ]
        | None
    ) = Field(default=None, description="inline user configuration, the name of a stored one, or null = the default")
    attributes: Attributes = Field(
        default_factory=dict, description="free JSON scalars (vehicle, camera, captured_at …) copied to the completion"
    )
    kind: EventKind | None = Field(default=None, description="frame or video; null = inferred from the object")


class CompletionEvent(BaseModel):
    """Published on the completion topic (keyed by the source key) once the output object is written."""

    model_config = _strict

    id: str
    source: str
    output: str
    status: Literal["completed"] = "completed"
    kind: EventKind = EventKind.frame
    result: FrameResult = Field(description="what was found and hidden (for a video, over all its frames)")
    configuration_hash: str
    processor_version: str
    attributes: Attributes = Field(default_factory=dict)
    attempts: int = Field(ge=1, description="tries it took, 1 = first time")
    completed_at: datetime
    frames: int | None = Field(default=None, ge=0, description="videos: frames processed")
    duration_s: float | None = Field(default=None, ge=0, description="videos: media duration")
    frames_blackened: int | None = Field(
        default=None, ge=0, description="videos: frames written black (corrupt, or a detector failed on them)"
    )
    frames_dropped: int | None = Field(default=None, ge=0, description="videos: corrupt packets with no picture")
    keyframes: int | None = Field(
        default=None, ge=0, description="videos: frames the tracked labels (faces, plates) were detected on"
    )
    frames_tracked: int | None = Field(
        default=None, ge=0, description="videos: frames whose tracked labels were hidden from their tracks only"
    )


class DeadLetter(BaseModel):
    """Published on the dead-letter topic for an event that failed permanently or ran out of retries.

    Carries the original record byte for byte (``payload_base64``, ``headers`` with base64 values), so it can
    be inspected and replayed after a fix.
    """

    model_config = _strict

    event_id: str | None = Field(description="null when the message could not be parsed far enough to know it")
    error_kind: str = Field(description="stable kind of processor.errors, e.g. object_not_found; internal = a bug")
    error_message: str
    attempts: int = Field(ge=0)
    source_topic: str
    source_partition: int = Field(ge=0)
    source_offset: int = Field(ge=0)
    headers: list[tuple[str, str]] = Field(default_factory=list, description="[key, base64 value] pairs")
    payload_base64: str | None = Field(description="the original message value, base64; null for a null value")
    failed_at: datetime
    processor_version: str

    @staticmethod
    def encode_payload(value: bytes | None) -> str | None:
        return None if value is None else base64.b64encode(value).decode("ascii")

    @staticmethod
    def encode_headers(headers: Sequence[tuple[str, bytes]]) -> list[tuple[str, str]]:
        return [(key, base64.b64encode(value or b"").decode("ascii")) for key, value in headers]

    def payload(self) -> bytes | None:
        """The original message value."""
        return None if self.payload_base64 is None else base64.b64decode(self.payload_base64)

    def original_headers(self) -> list[tuple[str, bytes]]:
        return [(key, base64.b64decode(value)) for key, value in self.headers]


# --- S3 / MinIO bucket notifications (AWS event message structure 2.x; MinIO sends the same with "s3:" prefixes) ---


class S3Bucket(BaseModel):
    model_config = _tolerant

    name: str = Field(min_length=1)


class S3Object(BaseModel):
    model_config = _tolerant

    key: str = Field(min_length=1, description="URL-encoded as in a form: '+' is a space, '%2B' a plus")
    size: int | None = Field(default=None, ge=0)
    e_tag: str | None = Field(default=None, alias="eTag", validation_alias=AliasChoices("eTag", "etag", "e_tag"))
    version_id: str | None = Field(default=None, alias="versionId")
    sequencer: str | None = None


class S3Entity(BaseModel):
    model_config = _tolerant

    bucket: S3Bucket
    object: S3Object


class S3Record(BaseModel):
    """One record of a notification; only ``ObjectCreated`` events ask for work."""

    model_config = _tolerant

    event_name: str = Field(alias="eventName", description="'ObjectCreated:Put' (AWS), 's3:ObjectCreated:Put' (MinIO)")
    event_source: str | None = Field(default=None, alias="eventSource")
    event_time: str | None = Field(default=None, alias="eventTime")
    s3: S3Entity

    @property
    def is_object_created(self) -> bool:
        return self.event_name.removeprefix("s3:").startswith("ObjectCreated:")


class S3Notification(BaseModel):
    """A bucket notification; a test event (``s3:TestEvent``, no ``Records``) has an empty list."""

    model_config = _tolerant

    records: list[S3Record] = Field(default_factory=list, alias="Records")


# --- CloudEvents 1.0 (structured mode; binary mode carries the same attributes in ce_ headers) ---------------------


class CloudEvent(BaseModel):
    """A CloudEvents 1.0 envelope; ``data`` is a FrameEvent-like body (its ``id`` defaults to the CloudEvent's)
    or an S3 notification (or one record of it). Extension attributes are accepted and ignored."""

    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: Literal["1.0"]
    type: str = Field(min_length=1)
    source: str = Field(min_length=1)
    id: str = Field(min_length=1)
    subject: str | None = None
    time: datetime | None = None
    datacontenttype: str | None = None
    dataschema: str | None = None
    data: Any = None
    data_base64: str | None = None
