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
    error: None = None
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


class UrlState(BaseModel):
    model_config = _answer

    reachable: bool = Field(description="the URL answered model discovery")
    error: str | None = Field(default=None, description="its last problem, if any")


class UrlList(BaseModel):
    """The registered inference URLs, in routing order (the first that serves a model wins)."""

    model_config = _answer

    urls: list[str]
    status: dict[str, UrlState] = Field(default_factory=dict, description="per URL: did discovery reach it")


class UrlChange(BaseModel):
    model_config = _answer

    url: str = Field(description="the URL as registered (normalised: lower-case host, trailing slash)")
    message: str


class LabelMethods(BaseModel):
    """How one label can be found and hidden: inference type → URL → model names, and the techniques."""

    model_config = _answer

    detection: dict[str, list[str]] | None = None
    segmentation: dict[str, list[str]] | None = None
    technique: list[str] = Field(description="anonymization techniques that apply to this label")


class AvailableMethods(RootModel[dict[str, LabelMethods]]):
    """label → ``detection``/``segmentation`` → URL → models, plus ``technique`` (the original API's shape)."""

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
