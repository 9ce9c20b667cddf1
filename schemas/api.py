"""Answers of the anonymization HTTP API (``anonymizer serve``), in the original API's ``{data, error, success}``
envelope; the source of the API's OpenAPI document."""

from __future__ import annotations

from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, RootModel

DataT = TypeVar("DataT")

_answer = ConfigDict(frozen=True)


class Answer(BaseModel, Generic[DataT]):
    """A successful JSON answer."""

    model_config = _answer

    data: DataT
    error: Literal[""] = ""
    success: Literal[True] = True


class FailureDetail(BaseModel):
    """What went wrong: the error's stable kind and every problem found (one line each)."""

    model_config = _answer

    kind: str = Field(description="e.g. invalid_configuration, image_undecodable, inference_unavailable")
    problems: list[str] = Field(description="for an invalid configuration, one line per problem, naming the field")


class Failure(BaseModel):
    """A failed request: ``error`` says why; the HTTP status code says what kind of failure."""

    model_config = _answer

    data: FailureDetail | None = None
    error: str
    success: Literal[False] = False


class UrlList(BaseModel):
    """``/list_urls``: the registered inference URLs (credentials shown as ``***``), in routing order."""

    model_config = _answer

    urls: list[str]


class Message(RootModel[str]):
    """What was done, in the original API's words (e.g. ``url added successfully``)."""

    model_config = _answer


class Messages(RootModel[list[str]]):
    """What was done, as the original API said it: a one-element list (``["url removed successfully"]``)."""

    model_config = _answer


class UrlStatus(BaseModel):
    """One registered URL as the API knows it now."""

    model_config = _answer

    url: str = Field(description="as registered (normalised; credentials shown as ***)")
    builtin: bool = Field(description="the bundled models, in this process (the registry entry `builtin`)")
    reachable: bool = Field(description="the last model discovery reached it")
    error: str | None = Field(default=None, description="its last problem, if any")
    models: list[str] | None = Field(description="the models it serves, as last discovered; null: never reached")


class Urls(BaseModel):
    """``GET /urls``: every registered URL with its state, in routing order (the first that serves a model wins)."""

    model_config = _answer

    urls: list[UrlStatus]
    read_only: bool = Field(description="inference.url_registry_read_only: the registry endpoints answer 409")


class LabelMethods(BaseModel):
    """How one label can be found and hidden: inference type → URL → model names, and the techniques."""

    model_config = _answer

    detection: dict[str, list[str]] | None = None
    segmentation: dict[str, list[str]] | None = None
    technique: list[str] = Field(description="anonymization techniques that apply to this label")


class AvailableMethods(RootModel[dict[str, LabelMethods]]):
    """label → ``detection``/``segmentation`` → URL → models, plus ``technique``: the original API's answer, not in
    the envelope (its users read ``response.json()["face"]``)."""

    model_config = _answer


class Readiness(BaseModel):
    """``/ready``: whether this process can do its work, and what was checked."""

    model_config = ConfigDict(frozen=True, extra="allow")

    ready: bool


class Alive(BaseModel):
    model_config = _answer

    alive: Literal[True] = True


class NotReady(BaseModel):
    """``/ready`` when the process cannot do its work yet (HTTP 503), with what was checked."""

    model_config = _answer

    data: Readiness
    error: str
    success: Literal[False] = False
