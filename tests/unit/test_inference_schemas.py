"""Inference API answers (pure): every variant parses, wrong shapes fail; label maps decode or say what is wrong."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError

from processor.inference.contract import decode_label_map
from schemas.config import InferenceType
from schemas.inference import ConfigResponse, DetectionResponse, LabelsResponse, ModelsResponse, PaletteResponse


def test_models_as_a_list_or_an_openvino_dict() -> None:
    as_list = ModelsResponse.model_validate({"data": {"models": ["a", "b"]}})
    assert as_list.data is not None and as_list.data.names() == ["a", "b"]
    as_dict = ModelsResponse.model_validate({"data": {"models": {"deeplab": 0, "unet": 1}}, "success": True})
    assert as_dict.data is not None and as_dict.data.names() == ["deeplab", "unet"]


def test_labels_null_before_a_yolo_load_and_errors_without_data() -> None:
    assert LabelsResponse.model_validate({"data": None, "error": None, "success": True}).data is None
    failed = LabelsResponse.model_validate({"error": {"detail": "no such model"}, "success": False})
    assert failed.failed and failed.error == "{'detail': 'no such model'}"
    assert not LabelsResponse.model_validate({"data": ["face"]}).failed  # success missing: not a failure


def test_config_type_is_required_and_checked_extra_fields_kept() -> None:
    config = ConfigResponse.model_validate({"data": {"type": "Segmentation", "framework": "openvino"}}).data
    assert config is not None and config.type is InferenceType.segmentation
    assert config.model_extra == {"framework": "openvino"}
    with pytest.raises(ValidationError, match="type"):
        ConfigResponse.model_validate({"data": {"type": "classification"}})
    with pytest.raises(ValidationError, match="success"):
        ConfigResponse.model_validate({"data": None, "success": "yes"})


def test_detection_boxes_int_or_float_with_any_class_id_and_percent_confidence() -> None:
    answer = DetectionResponse.model_validate(
        {
            "data": {
                "bounding-boxes": [
                    {
                        "ObjectClassName": "face",
                        "ObjectClassId": 1,
                        "confidence": 99.5,
                        "coordinates": {"left": -3, "top": 2.5, "right": 700.25, "bottom": 40},
                        "extra": "ignored",
                    }
                ]
            },
            "error": "",
            "success": True,
        }
    )
    assert answer.data is not None
    box = answer.data.bounding_boxes[0]
    assert (box.object_class_name, box.object_class_id, box.confidence) == ("face", 1, 99.5)
    assert (box.coordinates.left, box.coordinates.top, box.coordinates.right) == (-3.0, 2.5, 700.25)


@pytest.mark.parametrize(
    "bad_box",
    [
        {"ObjectClassName": "face", "confidence": 150, "coordinates": {"left": 0, "top": 0, "right": 1, "bottom": 1}},
        {"ObjectClassName": "face", "confidence": 50, "coordinates": {"left": 0, "top": 0, "right": 1}},
        {"confidence": 50, "coordinates": {"left": 0, "top": 0, "right": 1, "bottom": 1}},
        {"ObjectClassName": "face", "confidence": 50, "coordinates": {"left": "a", "top": 0, "right": 1, "bottom": 1}},
    ],
)
def test_detection_boxes_missing_or_out_of_range_values_fail(bad_box: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        DetectionResponse.model_validate({"data": {"bounding-boxes": [bad_box]}})


def test_palette_values_are_bytes() -> None:
    assert PaletteResponse.model_validate({"data": [0, 0, 0, 255, 0, 0]}).data == [0, 0, 0, 255, 0, 0]
    with pytest.raises(ValidationError):
        PaletteResponse.model_validate({"data": [0, 256, 0]})


def png(pixels: np.ndarray, mode: str) -> bytes:
    height, width = pixels.shape[:2]
    image = Image.frombytes(mode, (width, height), np.ascontiguousarray(pixels).tobytes())
    if mode == "P":
        image.putpalette(list(range(256)) * 3)  # a full palette: otherwise Pillow may shrink the bit depth
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_label_map_decodes_palette_indices_and_resizes_nearest() -> None:
    indices = np.array([[0, 1], [2, 1]], np.uint8)
    assert np.array_equal(decode_label_map(png(indices, "P"), 2, 2), indices)
    assert np.array_equal(decode_label_map(png(indices, "L"), 2, 2), indices)
    assert np.array_equal(decode_label_map(png(indices, "P"), 4, 4), np.kron(indices, np.ones((2, 2), np.uint8)))


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        (b"not a png", "not an image"),
        (png(np.zeros((2, 2, 3), np.uint8), "RGB"), "PNG mode RGB"),
        (png(np.zeros((100, 100), np.uint8), "P"), "far larger than the 10x10 frame"),
    ],
)
def test_label_map_problems_are_named(payload: bytes, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        decode_label_map(payload, 10, 10)


def test_a_jpeg_is_not_a_label_map() -> None:
    buffer = io.BytesIO()
    Image.new("L", (4, 4)).save(buffer, format="JPEG")
    with pytest.raises(ValueError, match="a JPEG image, expected a PNG"):
        decode_label_map(buffer.getvalue(), 4, 4)
