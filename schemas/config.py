"""User configuration (what to hide, how) and URL registry, in the original API's file formats."""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Annotated

import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

NonEmptyStr = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


MAX_ENTRIES = 32
"""Entries of one configuration: a bound on the inference calls one event or request can cause."""


class InferenceType(StrEnum):
    detection = "detection"
    segmentation = "segmentation"


class SensitiveInfo(BaseModel):
    """One kind of region to hide: a label of a model, found by detection or segmentation, hidden by a technique.

    ``url`` (optional) must be one of the registered inference URLs; without it the first registered URL
    serving ``model_name`` and ``class_name`` is used.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    model_name: NonEmptyStr
    class_name: NonEmptyStr
    anonymization_technique: NonEmptyStr = Field(
        description="blurring, pixelating, blackening, filling or a technique registered by a plugin"
    )
    inference_type: InferenceType
    anonymization_degree: float = Field(ge=0.0, le=1.0, description="0 leaves the region unchanged, 1 hides most")
    url: NonEmptyStr | None = None


class UserConfiguration(BaseModel):
    """The contents of ``user_configuration.json``: every entry is validated, not only the first."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sensitive_info: list[SensitiveInfo] = Field(
        min_length=1,
        max_length=MAX_ENTRIES,
        description=f"at most {MAX_ENTRIES} entries: each costs an inference call per frame",
    )

    def digest(self) -> str:
        """A short stable hash of the configuration; part of every output key so a replay rewrites the same key."""
        canonical = orjson.dumps(self.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
        return hashlib.sha256(canonical).hexdigest()[:16]


class UrlConfiguration(BaseModel):
    """The contents of ``url_configuration.json``: inference service base URLs, or ``builtin``."""

    model_config = ConfigDict(extra="forbid")

    urls: list[NonEmptyStr] = Field(default_factory=list)
