"""Shared fixtures: real public-domain photos as arrays and encoded bytes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from matplotlib import cbook
from skimage import data

from processor.frames import BgrImage
from schemas.config import InferenceType, SensitiveInfo

LOOPBACK = ("127.0.0.0/8", "::1/128")
"""``inference.allowed_networks`` for tests whose inference services listen on loopback (refused by default)."""
LOOPBACK_ENV = {"ANONYMIZER_INFERENCE__ALLOWED_NETWORKS": '["127.0.0.0/8", "::1/128"]'}


def encode_jpeg(image: BgrImage, quality: int = 95) -> bytes:
    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buffer.tobytes()


def encode_png(image: BgrImage) -> bytes:
    ok, buffer = cv2.imencode(".png", image)
    assert ok
    return buffer.tobytes()


@pytest.fixture(scope="session")
def astronaut_bgr() -> BgrImage:
    """NASA portrait, 512×512, one face at about x 170–230, y 70–150."""
    return np.ascontiguousarray(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))


@pytest.fixture(scope="session")
def grace_hopper_jpeg() -> bytes:
    """US Navy portrait, 512×600 JPEG, one face."""
    with cbook.get_sample_data("grace_hopper.jpg") as handle:
        return bytes(handle.read())


@pytest.fixture(scope="session")
def astronaut_jpeg(astronaut_bgr: BgrImage) -> bytes:
    return encode_jpeg(astronaut_bgr)


@pytest.fixture(scope="session")
def astronaut_png(astronaut_bgr: BgrImage) -> bytes:
    return encode_png(astronaut_bgr)


def sensitive_entry(
    model: str = "faces", label: str = "face", url: str | None = None, kind: str = "detection"
) -> SensitiveInfo:
    """A configuration entry for routing tests: blurring at degree 1."""
    return SensitiveInfo(
        model_name=model,
        class_name=label,
        anonymization_technique="blurring",
        inference_type=InferenceType(kind),
        anonymization_degree=1.0,
        url=url,
    )
