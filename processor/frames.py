"""The frame vocabulary every layer shares: decoded images, masks, boxes and what a localizer found.

It sits at the bottom of the package (numpy only), so the kernels, media,
inference and video code all depend on it and never on each other for these types.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

BgrImage = npt.NDArray[np.uint8]
"""An H×W×3 uint8 array in OpenCV's BGR channel order."""

BoolMask = npt.NDArray[np.bool_]
"""An H×W boolean array: True where the label is."""


@dataclass(frozen=True, slots=True)
class Frame:
    """A decoded image and the bytes HTTP inference uploads: the original, no re-encode, unless its EXIF orientation
    needed the pixels turned upright (then those, re-encoded)."""

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
