"""Bring your own ONNX detector: real ONNX files (YOLOv8/v11, YOLOv5, SSD heads) found in frame pixels in-process
and through a real ``anonymizer infer`` over HTTP; their settings checked at start; execution providers."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path

import aiohttp
import numpy as np
import orjson
import pytest
from pydantic import ValidationError

from processor.configuration import builtin_entry
from processor.frames import BgrImage, Frame
from processor.inference.builtin import onnx_sessions
from processor.inference.builtin.custom import CustomDetector
from processor.inference.builtin.localizer import BuiltinLocalizer
from processor.inference.builtin.models import BuiltinModels
from processor.settings import BuiltinSettings, CustomModelSettings
from schemas.config import InferenceType
from tests.cli import run_anonymizer
from tests.conftest import encode_png
from tests.integration.builtin_inference import running_infer
from tests.onnx_detectors import Corners, letterboxed, ssd_heads, stretched, write_detector, yolo_v5_head, yolo_v8_head

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

INPUT = (320, 256)  # width, height: not the frame's aspect ratio, so letterbox and stretch differ
FACE: Corners = (100.0, 80.0, 200.0, 200.0)
PLATE: Corners = (300.0, 250.0, 460.0, 300.0)
LABELS = {0: "face", 1: "license_plate"}
Geometry = Callable[[Corners, tuple[int, int], tuple[int, int]], Corners]


@pytest.fixture(scope="module")
def picture(astronaut_bgr: BgrImage) -> BgrImage:
    """A real 512x384 photo (any content: the test models answer fixed tensors)."""
    return np.ascontiguousarray(astronaut_bgr[:384])


def _size(image: BgrImage) -> tuple[int, int]:
    return int(image.shape[1]), int(image.shape[0])


def build(kind: str, resize: str, frame: tuple[int, int], directory: Path) -> CustomModelSettings:
    """A model of head ``kind`` answering the face and the plate (plus a weaker duplicate of the face and a box of
    an unmapped class), with the settings that read it."""
    geometry: Geometry = letterboxed if resize == "letterbox" else stretched
    face, plate = geometry(FACE, frame, INPUT), geometry(PLATE, frame, INPUT)
    shifted = (face[0] + 2, face[1] + 2, face[2] + 2, face[3] + 2)
    boxes = [(face, 0, 0.9), (plate, 1, 0.8), (shifted, 0, 0.6), ((5.0, 5.0, 50.0, 50.0), 2, 0.99)]
    if kind == "yolo_v8":
        outputs = {"output0": yolo_v8_head(boxes, classes=3)}
    elif kind == "yolo_v5":
        outputs = {"output0": yolo_v5_head(boxes, classes=3)}
    elif kind == "ssd":
        outputs = ssd_heads([(box, cls + 1, score) for box, cls, score in boxes], classes=4, input_size=INPUT)
    else:  # DetectionOutput rows: image id, class, score, x1, y1, x2, y2 (0..1), padding rows at -1
        width, height = INPUT
        rows = [
            [0, cls + 1, score, b[0] / width, b[1] / height, b[2] / width, b[3] / height] for b, cls, score in boxes
        ]
        outputs = {"detection_out": np.array([[[*rows, [-1, 0, 0, 0, 0, 0, 0]]]], np.float32)}
    path = write_detector(directory / f"{kind}-{resize}.onnx", INPUT, outputs)
    labels = LABELS if kind.startswith("yolo") else {cls + 1: label for cls, label in LABELS.items()}
    format_ = "yolo" if kind.startswith("yolo") else "ssd"
    return CustomModelSettings(
        name=f"mine_{kind}", path=path, format=format_, input_size=INPUT, resize=resize, labels=labels
    )


@pytest.mark.parametrize("resize", ["letterbox", "stretch"])
@pytest.mark.parametrize("kind", ["yolo_v8", "yolo_v5", "ssd", "ssd_detection_output"])
async def test_the_in_process_localizer_finds_exactly_the_models_boxes_in_frame_pixels(
    kind: str, resize: str, picture: BgrImage, tmp_path: Path
) -> None:
    custom = build(kind, resize, _size(picture), tmp_path)
    frame = Frame(picture, encode_png(picture), "png")
    async with BuiltinLocalizer(BuiltinSettings(workers=1, custom_models=(custom,))) as localizer:
        assert localizer.models.catalog()[custom.name].labels == ("face", "license_plate")
        faces = await localizer.localize(frame, builtin_entry(custom.name, "face", InferenceType.detection))
        plates = await localizer.localize(frame, builtin_entry(custom.name, "license_plate", InferenceType.detection))
    assert [(b.left, b.top, b.right, b.bottom) for b in faces.boxes] == [pytest.approx(FACE, abs=1e-3)]
    assert [(b.left, b.top, b.right, b.bottom) for b in plates.boxes] == [pytest.approx(PLATE, abs=1e-3)]
    assert [b.confidence for b in faces.boxes + plates.boxes] == pytest.approx([0.9, 0.8])
    assert faces.source == f"builtin/{custom.name}"


@pytest.mark.parametrize("kind", ["yolo_v8", "ssd"])
async def test_anonymizer_infer_lists_describes_and_serves_a_custom_model(
    kind: str, picture: BgrImage, tmp_path: Path
) -> None:
    custom = build(kind, "letterbox", _size(picture), tmp_path)
    env = {
        **os.environ,
        "ANONYMIZER_BUILTIN__CUSTOM_MODELS": orjson.dumps([custom.model_dump(mode="json")]).decode(),
        "ANONYMIZER_BUILTIN__ONNX_PROVIDERS": '["CUDAExecutionProvider"]',
    }
    with running_infer(tmp_path, env) as url:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{url}models") as answer:
                assert custom.name in (await answer.json())["data"]["models"]
            async with session.get(f"{url}models/{custom.name}/labels") as answer:
                assert (await answer.json())["data"] == ["face", "license_plate"]
            async with session.get(f"{url}models/{custom.name}/config") as answer:
                assert (await answer.json())["data"] == {"type": "detection"}
            form = aiohttp.FormData()
            form.add_field("input_data", encode_png(picture), filename="frame.png", content_type="image/png")
            async with session.post(f"{url}models/{custom.name}/predict", data=form) as answer:
                assert answer.status == 200
                found = (await answer.json())["data"]["bounding-boxes"]
            assert await _ready(session, url)  # every model (bundled and custom) loaded on the providers asked
    assert [(b["ObjectClassName"], b["ObjectClassId"], b["confidence"], b["coordinates"]) for b in found] == [
        ("face", 0, 90.0, {"left": 100, "top": 80, "right": 200, "bottom": 200}),
        ("license_plate", 1, 80.0, {"left": 300, "top": 250, "right": 460, "bottom": 300}),
    ]
    log = await asyncio.to_thread(_logs, tmp_path)
    assert log.count("CUDAExecutionProvider") == 1, log  # one warning for every ONNX model of the process


async def _ready(session: aiohttp.ClientSession, url: str, timeout_s: float = 60.0) -> bool:
    """Whether ``GET /ready`` answers 200 within ``timeout_s`` (the server warms its models up after it listens)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        async with session.get(f"{url}ready") as answer:
            if answer.status == 200:
                return True
        await asyncio.sleep(0.2)
    return False


def _logs(directory: Path) -> str:
    return "".join(path.read_text() for path in directory.glob("infer-*.log"))


def test_an_unavailable_provider_falls_back_to_cpu_with_a_warning(
    picture: BgrImage, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(onnx_sessions, "_warned", set())  # the warning is once per process
    custom = build("yolo_v8", "letterbox", _size(picture), tmp_path)
    with caplog.at_level(logging.WARNING, logger=onnx_sessions.__name__):
        detector = CustomDetector(custom, providers=["CUDAExecutionProvider"])
        models = BuiltinModels(BuiltinSettings(onnx_providers=("CUDAExecutionProvider",)))
        faces = models.run_detection("centerface", picture)
    assert detector._session.get_providers() == ["CPUExecutionProvider"]
    assert [(b.left, b.top, b.right, b.bottom) for b in detector.detect(picture)] == [
        pytest.approx(FACE, abs=1e-3),
        pytest.approx(PLATE, abs=1e-3),
    ]
    assert faces  # the bundled CenterFace ran too, on CPU
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 1
    assert "CUDAExecutionProvider" in warnings[0]
    assert "running on CPU" in warnings[0]


def test_an_unknown_provider_name_is_a_settings_error() -> None:
    with pytest.raises(ValidationError, match=r"unknown onnxruntime execution provider.*CUDAProvider"):
        BuiltinSettings(onnx_providers=("CUDAProvider",))


@pytest.mark.parametrize(
    ("change", "variable", "message"),
    [
        ({"path": "missing.onnx"}, "CUSTOM_MODELS__0", "path: no file 'missing.onnx'"),
        ({"format": "yolo", "labels": {"0": "face"}}, "CUSTOM_MODELS__0", "format yolo needs an output"),
        (
            {"input_size": [300, 300]},
            "CUSTOM_MODELS__0",
            "its input is 320 x 256 px (width x height), input_size says 300 x 300",
        ),
        ({"labels": {"7": "face"}}, "CUSTOM_MODELS__0", "have 4 classes, labels need 8"),
        ({"name": "centerface"}, "", "custom_models: name(s) centerface taken"),
        ({"score_threshold": {"face": 0.5}}, "CUSTOM_MODELS__0", "no threshold for label(s) license_plate"),
        ({"providers": '["CUDA"]'}, "ONNX_PROVIDERS", "unknown onnxruntime execution provider(s) CUDA"),
    ],
)
def test_a_custom_model_that_does_not_fit_is_one_line_naming_the_setting_and_exit_2(
    change: dict[str, object], variable: str, message: str, picture: BgrImage, tmp_path: Path
) -> None:
    custom = build("ssd", "stretch", _size(picture), tmp_path).model_dump(mode="json")
    providers = change.pop("providers", None)
    custom["path"] = os.path.relpath(custom["path"], tmp_path)
    env = {"ANONYMIZER_BUILTIN__CUSTOM_MODELS": orjson.dumps([{**custom, **change}]).decode()}
    if providers is not None:
        env["ANONYMIZER_BUILTIN__ONNX_PROVIDERS"] = str(providers)
    done = run_anonymizer("infer", "--port", "0", cwd=tmp_path, env=env)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"anonymizer: invalid settings: ANONYMIZER_BUILTIN{'__' if variable else ''}")
    assert variable in done.stderr.split(":")[2]
    assert message in done.stderr
    assert "Traceback" not in done.stderr
