"""Responses of the inference APIs (the original detection and segmentation services), every variant seen in the wild.

Tolerant where services differ (a list or a dict of models, ``data: null`` labels before a YOLO ``load``, int or
float coordinates, 0- or 1-based class ids, extra fields), strict where the processor relies on a value (the
model type, numbers that are numbers, a confidence in percent).
"""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from schemas.config import InferenceType

_tolerant = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

DataT = TypeVar("DataT")

Coordinate = Annotated[float, Field(allow_inf_nan=False)]


class Envelope(BaseModel, Generic[DataT]):
    """``{"data": ..., "error": ..., "success": ...}``; ``data`` may be missing or null (errors, YOLO before
    ``load``); ``success`` missing means the service does not say."""

    model_config = _tolerant

    data: DataT | None = None
    error: str | None = None
    success: StrictBool | None = None

    @field_validator("error", mode="before")
    @classmethod
    def _error_as_text(cls, value: Any) -> Any:
        """Services put a string, a dict or a list in ``error``; keep it readable either way."""
        if value is None or isinstance(value, str):
            return value
        return str(value)

    @property
    def failed(self) -> bool:
        """The service handled the request and said it failed (HTTP 200 + ``success: false``)."""
        return self.success is False


class ModelsData(BaseModel):
    """``data`` of ``GET models``: a list of names, or (OpenVINO segmentation) a dict name → id."""

    model_config = _tolerant

    models: list[str] | dict[str, Any]

    def names(self) -> list[str]:
        """Model names in the order the service lists them."""
        return list(self.models)


ModelsResponse = Envelope[ModelsData]
LabelsResponse = Envelope[list[str]]
"""``data: null`` until a YOLO service's ``GET load`` has been called once."""


class ModelConfig(BaseModel):
    """``data`` of ``GET models/{m}/config``: only ``type`` is relied upon; the rest varies per framework."""

    model_config = ConfigDict(extra="allow", frozen=True)

    type: InferenceType

    @field_validator("type", mode="before")
    @classmethod
    def _type_case_insensitive(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value


ConfigResponse = Envelope[ModelConfig]
PaletteResponse = Envelope[list[Annotated[int, Field(ge=0, le=255)]]]
"""Flat RGB triplets: class index ``i`` is drawn as ``palette[3i:3i+3]``."""


class Coordinates(BaseModel):
    """Absolute pixels; ints or floats; may lie partly outside the image or be inverted (kernels clamp)."""

    model_config = _tolerant

    left: Coordinate
    top: Coordinate
    right: Coordinate
    bottom: Coordinate


class BoundingBox(BaseModel):
    """One detection. Matched to a label by ``ObjectClassName``; the id may be 0- or 1-based, so it is not used."""

    model_config = _tolerant

    object_class_name: str = Field(alias="ObjectClassName")
    object_class_id: int | None = Field(default=None, alias="ObjectClassId")
    confidence: float = Field(ge=0.0, le=100.0, allow_inf_nan=False, description="percent")
    coordinates: Coordinates


class DetectionData(BaseModel):
    model_config = _tolerant

    bounding_boxes: list[BoundingBox] = Field(alias="bounding-boxes")


DetectionResponse = Envelope[DetectionData]
