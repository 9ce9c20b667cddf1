"""What every localizer (HTTP inference client or built-in detector) takes and returns.

The pipeline cannot tell an HTTP service from a built-in model: both answer ``localize`` with a
:class:`Localization` in absolute pixel coordinates of the decoded frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from schemas.config import SensitiveInfo

BgrImage = npt.NDArray[np.uint8]
"""An H×W×3 uint8 array in OpenCV's BGR channel order."""

BoolMask = npt.NDArray[np.bool_]
"""An H×W boolean array: True where the label is."""


@dataclass(frozen=True, slots=True)
class Frame:
    """A decoded image and the bytes it came from (HTTP inference uploads the original bytes, no re-encode)."""

    pixels: BgrImage
    encoded: bytes
    format: str  # "jpeg", "png", "webp", ...

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])


@dataclass(frozen=True, slots=True)
class Box:
    """A detection in absolute pixels; may be float, inverted or partly outside the image (kernels clamp)."""

    left: float
    top: float
    right: float
    bottom: float
    label: str
    confidence: float = 1.0  # 0..1


@dataclass(frozen=True, slots=True)
class Localization:
    """What one ``sensitive_info`` entry found in one frame: boxes, and for segmentation a mask too."""

    label: str
    boxes: tuple[Box, ...] = ()
    mask: BoolMask | None = None
    source: str = ""  # "builtin/centerface" or "http://host:port/ model"
    timings_ms: dict[str, float] = field(default_factory=dict)


class Localizer(Protocol):
    """Finds the regions of one ``sensitive_info`` entry in a frame."""

    async def localize(self, frame: Frame, entry: SensitiveInfo) -> Localization:
        """Raises :class:`processor.errors.PermanentError` subclasses for bad requests (unknown model or label)
        and :class:`processor.errors.TransientError` subclasses when the service is unavailable."""
        ...
