"""The frame pipeline end to end in-process: real photos, the built-in detectors, every stage."""

from __future__ import annotations

from collections.abc import AsyncIterator

import numpy as np
import pytest

from processor.configuration import default_configuration, parse_configuration
from processor.errors import ImageTooLarge, ImageUndecodable, UnknownLabel
from processor.frames import BgrImage
from processor.inference.builtin.localizer import BuiltinLocalizer
from processor.media import decode
from processor.pipeline import anonymize_image
from processor.settings import LimitsSettings, OutputSettings
from tests.conftest import encode_jpeg, encode_png
from tests.frames import ASTRONAUT_FACE, compose_crowd_frame

OUTPUT = OutputSettings()
LIMITS = LimitsSettings()


@pytest.fixture
async def builtin() -> AsyncIterator[BuiltinLocalizer]:
    async with BuiltinLocalizer() as localizer:
        yield localizer


def changed(before: BgrImage, after: BgrImage) -> BgrImage:
    return np.abs(before.astype(np.int16) - after.astype(np.int16)).max(axis=2)


async def test_face_is_hidden_and_the_rest_of_a_png_is_untouched(
    builtin: BuiltinLocalizer, astronaut_png: bytes, astronaut_bgr: BgrImage
) -> None:
    image = await anonymize_image(astronaut_png, default_configuration(), builtin, output=OUTPUT, limits=LIMITS)
    assert image.content_type == "image/png"
    assert image.result.counts == {"face": 1}
    after = decode(image.data, LIMITS.max_pixels).pixels
    difference = changed(astronaut_bgr, after)
    left, top, right, bottom = ASTRONAUT_FACE
    assert difference[top:bottom, left:right].mean() > 20  # the face is strongly changed
    (region,) = image.result.regions
    outside = np.ones(difference.shape, bool)
    outside[region.box[1] : region.box[3], region.box[0] : region.box[2]] = False
    assert difference[outside].max() == 0  # PNG: every pixel outside the (scaled) box is identical


async def test_jpeg_stays_jpeg_and_changes_little_outside_the_face(
    builtin: BuiltinLocalizer, astronaut_bgr: BgrImage
) -> None:
    source = encode_jpeg(astronaut_bgr)
    image = await anonymize_image(source, default_configuration(), builtin, output=OUTPUT, limits=LIMITS)
    assert image.content_type == "image/jpeg"
    before = decode(source, LIMITS.max_pixels).pixels
    difference = changed(before, decode(image.data, LIMITS.max_pixels).pixels)
    assert difference[300:, :].mean() < 2  # one more encoding at quality 95, nothing else


async def test_every_face_of_a_crowd_is_found(builtin: BuiltinLocalizer) -> None:
    frame, truth = compose_crowd_frame([40, 60, 90, 140, 200, 300])
    image = await anonymize_image(encode_jpeg(frame), default_configuration(), builtin, output=OUTPUT, limits=LIMITS)
    assert image.result.counts.get("face") == len(truth)
    assert set(image.result.timings_ms) == {"decode", "localize", "anonymize", "encode", "total"}
    assert image.result.labels[0].source.startswith("builtin")


async def test_person_segmentation_changes_only_the_mask(
    builtin: BuiltinLocalizer, astronaut_png: bytes, astronaut_bgr: BgrImage
) -> None:
    configuration = parse_configuration(
        {
            "sensitive_info": [
                {
                    "model_name": "selfie_segmentation",
                    "class_name": "person",
                    "anonymization_technique": "blackening",
                    "inference_type": "segmentation",
                    "anonymization_degree": 1.0,
                    "url": "builtin",
                }
            ]
        }
    )
    image = await anonymize_image(astronaut_png, configuration, builtin, output=OUTPUT, limits=LIMITS)
    after = decode(image.data, LIMITS.max_pixels).pixels
    mask_pixels = image.result.labels[0].mask_pixels
    assert mask_pixels > 512 * 512 * 0.2
    assert int((after == 0).all(axis=2).sum()) >= mask_pixels  # every mask pixel is black now
    assert int((changed(astronaut_bgr, after) > 0).sum()) <= mask_pixels  # and nothing else changed


async def test_bad_images_fail_with_named_errors(builtin: BuiltinLocalizer) -> None:
    configuration = default_configuration()
    with pytest.raises(ImageUndecodable, match="0 bytes"):
        await anonymize_image(b"", configuration, builtin, output=OUTPUT, limits=LIMITS)
    small = LimitsSettings(max_pixels=1000)
    with pytest.raises(ImageTooLarge):
        await anonymize_image(
            encode_png(np.zeros((64, 64, 3), np.uint8)), configuration, builtin, output=OUTPUT, limits=small
        )


async def test_unknown_label_names_model_and_label(builtin: BuiltinLocalizer, astronaut_png: bytes) -> None:
    configuration = parse_configuration(
        {
            "sensitive_info": [
                {
                    "model_name": "centerface",
                    "class_name": "cat",
                    "anonymization_technique": "blurring",
                    "inference_type": "detection",
                    "anonymization_degree": 1.0,
                    "url": "builtin",
                }
            ]
        }
    )
    with pytest.raises(UnknownLabel, match="cat"):
        await anonymize_image(astronaut_png, configuration, builtin, output=OUTPUT, limits=LIMITS)


@pytest.mark.parametrize("shape", [(1, 1), (1, 50), (50, 1), (2, 2), (1, 1000), (1000, 1), (3, 1000)])
async def test_images_of_any_size_from_one_pixel_pass_every_builtin_detector(
    builtin: BuiltinLocalizer, shape: tuple[int, int]
) -> None:
    pixels = np.random.default_rng(7).integers(0, 256, (*shape, 3), dtype=np.uint8)
    configuration = default_configuration(persons=True)
    image = await anonymize_image(encode_png(pixels), configuration, builtin, output=OUTPUT, limits=LIMITS)
    after = decode(image.data, LIMITS.max_pixels).pixels
    assert after.shape == pixels.shape
    assert {entry.class_name for entry in configuration.sensitive_info} <= {
        label.label for label in image.result.labels
    }
