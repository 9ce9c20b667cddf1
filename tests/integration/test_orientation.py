"""EXIF orientations 1–8 with an EXIF-unaware HTTP inference service: the face is hidden in every case.

The service (a real HTTP server) decodes each upload ignoring its EXIF orientation, as services built on Pillow
or OpenCV without the tag do, and runs the real CenterFace model on those stored pixels. The processor applies the
boxes to the upright pixels, so what it uploads must be upright too.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from PIL import Image

from processor import AsyncAnonymizer
from processor.frames import BgrImage
from processor.inference.builtin.faces import FaceDetector
from tests.conftest import LOOPBACK
from tests.frames import ASTRONAUT_FACE, astronaut
from tests.inference_stubs import InferenceStub, StubModel

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

# The stored pixels of orientation o: the inverse of what a viewer applies to display them upright.
STORED = {
    1: lambda image: image,
    2: lambda image: cv2.flip(image, 1),
    3: lambda image: cv2.rotate(image, cv2.ROTATE_180),
    4: lambda image: cv2.flip(image, 0),
    5: lambda image: cv2.transpose(image),
    6: lambda image: cv2.rotate(image, cv2.ROTATE_90_COUNTERCLOCKWISE),
    7: lambda image: cv2.rotate(cv2.transpose(image), cv2.ROTATE_180),
    8: lambda image: cv2.rotate(image, cv2.ROTATE_90_CLOCKWISE),
}


def oriented_jpeg(upright: BgrImage, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    stored = np.ascontiguousarray(STORED[orientation](upright))
    buffer = io.BytesIO()
    Image.fromarray(stored[:, :, ::-1]).save(buffer, format="JPEG", quality=95, exif=exif)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def detector() -> Iterator[FaceDetector]:
    yield FaceDetector()


def raw_pixel_faces(detector: FaceDetector) -> Any:
    def detect(image: BgrImage) -> list[dict[str, Any]]:
        return [
            {
                "ObjectClassName": "face",
                "confidence": round(box.confidence * 100, 2),
                "coordinates": {"left": box.left, "top": box.top, "right": box.right, "bottom": box.bottom},
            }
            for box in detector.detect(image)
        ]

    return detect


def face_changed(before: BgrImage, after: BgrImage) -> float:
    """The fraction of the face region's pixels that changed by more than 24 levels in some channel."""
    left, top, right, bottom = ASTRONAUT_FACE
    difference = np.abs(before[top:bottom, left:right].astype(np.int16) - after[top:bottom, left:right]).max(axis=2)
    return float((difference > 24).mean())


async def test_the_face_is_hidden_for_every_exif_orientation_with_an_exif_unaware_service(
    tmp_path: Path, detector: FaceDetector
) -> None:
    model = StubModel("rawfaces", "detection", ["face"], detect=raw_pixel_faces(detector))
    async with InferenceStub([model]) as stub:
        registry = tmp_path / "url_configuration.json"
        registry.write_text(json.dumps({"urls": [stub.url]}))
        settings = {"inference": {"url_configuration": str(registry), "allowed_networks": LOOPBACK}}
        remote = {
            "sensitive_info": [
                {
                    "model_name": "rawfaces",
                    "class_name": "face",
                    "inference_type": "detection",
                    "anonymization_technique": "blackening",
                    "anonymization_degree": 1.0,
                    "url": stub.url,
                }
            ]
        }
        upright = astronaut()
        hidden: dict[int, float] = {}
        async with AsyncAnonymizer(settings, configuration=remote) as anonymizer:
            for orientation in range(1, 9):
                source = oriented_jpeg(upright, orientation)
                shown = cv2.imdecode(np.frombuffer(source, np.uint8), cv2.IMREAD_COLOR)
                assert face_changed(upright, shown) < 0.02  # the viewer's upright image is the photo
                anonymized = await anonymizer.anonymize(source)
                assert anonymized.result.counts == {"face": 1}
                after = cv2.imdecode(np.frombuffer(anonymized.image, np.uint8), cv2.IMREAD_COLOR)
                hidden[orientation] = face_changed(upright, after)
        assert stub.requests["/models/rawfaces/predict"] == 8
        assert min(hidden.values()) > 0.8, hidden
