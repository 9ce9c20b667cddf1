"""What anonymizing one frame found and did: shared by completion events, the API, the CLI and the video path."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class FoundRegion(BaseModel):
    """One hidden region, in absolute pixels of the decoded frame (after clamping to the image)."""

    model_config = ConfigDict(frozen=True)

    label: str
    box: tuple[int, int, int, int] = Field(description="left, top, right, bottom (right/bottom exclusive)")
    confidence: float = Field(ge=0.0, le=1.0)


class LabelSummary(BaseModel):
    """Per ``sensitive_info`` entry: which service answered and how many regions it hid."""

    model_config = ConfigDict(frozen=True)

    label: str
    model_name: str
    source: str = Field(description="'builtin/<model>' or '<url> <model>'")
    technique: str
    degree: float
    count: int = Field(ge=0, description="boxes hidden (detection) or mask components (segmentation)")
    mask_pixels: int = Field(default=0, ge=0, description="pixels hidden through a segmentation mask")


class FrameResult(BaseModel):
    """The result record of one anonymized frame."""

    model_config = ConfigDict(frozen=True)

    width: int
    height: int
    format: str
    counts: dict[str, int] = Field(description="regions hidden per label")
    labels: list[LabelSummary]
    regions: list[FoundRegion]
    timings_ms: dict[str, float] = Field(description="per stage: decode, localize, anonymize, encode, total")
    configuration_hash: str
