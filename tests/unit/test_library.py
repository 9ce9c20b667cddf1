"""The Python API (processor.library) with the real built-in models on real photos: sync and async, arrays and bytes."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import orjson
import pytest
import skimage.data
from pydantic import ValidationError

from processor import Anonymized, Anonymizer, AnonymizerClosed, AsyncAnonymizer, Detection
from processor.configuration import default_configuration
from processor.errors import ImageTooLarge, ImageUndecodable, InvalidConfiguration, UnknownLabel
from processor.frames import BgrImage
from processor.media import decode
from processor.settings import Settings
from schemas.results import FoundRegion
from tests.conftest import encode_jpeg
from tests.frames import ASTRONAUT_FACE, astronaut, grace_hopper

BLACKENED_FACES = {
    "sensitive_info": [
        {
            "model_name": "centerface",
            "class_name": "face",
            "inference_type": "detection",
            "anonymization_technique": "blackening",
            "anonymization_degree": 1.0,
            "url": "builtin",
        }
    ]
}
UNKNOWN_LABEL = {"sensitive_info": [{**BLACKENED_FACES["sensitive_info"][0], "class_name": "cat"}]}


@pytest.fixture(scope="module")
def anonymizer() -> Iterator[Anonymizer]:
    with Anonymizer() as opened:
        yield opened


def changed(before: BgrImage, after: BgrImage) -> BgrImage:
    return np.abs(before.astype(np.int16) - after.astype(np.int16)).max(axis=2)


def outside(regions: list[FoundRegion], shape: tuple[int, ...]) -> np.ndarray:
    """True outside every region's box."""
    mask = np.ones(shape[:2], bool)
    for region in regions:
        left, top, right, bottom = region.box
        mask[top:bottom, left:right] = False
    return mask


def assert_only_the_face_changed(before: BgrImage, after: BgrImage, regions: list[FoundRegion]) -> None:
    difference = changed(before, after)
    left, top, right, bottom = ASTRONAUT_FACE
    assert difference[top:bottom, left:right].mean() > 20  # the face is strongly changed
    assert difference[outside(regions, before.shape)].max() == 0  # not one pixel outside the hidden boxes


def test_an_array_comes_back_as_a_new_array_with_only_the_face_hidden(anonymizer: Anonymizer) -> None:
    image = astronaut()
    untouched = image.copy()
    anonymized = anonymizer.anonymize(image)
    assert isinstance(anonymized, Anonymized)
    assert isinstance(anonymized.image, np.ndarray)
    assert anonymized.image.shape == image.shape and anonymized.image.dtype == np.uint8
    assert not np.shares_memory(anonymized.image, image)
    assert np.array_equal(image, untouched)  # the caller's array is not written to
    assert anonymized.content_type is None and anonymized.result.format == "pixels"
    assert anonymized.counts == {"face": 1}
    (region,) = anonymized.regions
    assert region.label == "face" and 0.5 < region.confidence <= 1
    left, top, right, bottom = region.box  # the (scaled) box holds the annotated face
    face_left, face_top, face_right, face_bottom = ASTRONAUT_FACE
    assert left <= face_left + 10 and top <= face_top + 10 and right >= face_right - 10 and bottom >= face_bottom - 10
    assert set(anonymized.result.timings_ms) == {"prepare", "localize", "anonymize", "total"}
    assert_only_the_face_changed(untouched, anonymized.image, anonymized.regions)


def test_png_bytes_come_back_as_png_bytes_with_only_the_face_hidden(
    anonymizer: Anonymizer, astronaut_png: bytes, astronaut_bgr: BgrImage
) -> None:
    anonymized = anonymizer.anonymize(astronaut_png)
    assert isinstance(anonymized.image, bytes) and anonymized.image.startswith(b"\x89PNG")
    assert anonymized.content_type == "image/png" and anonymized.result.format == "png"
    assert anonymized.counts == {"face": 1}
    assert_only_the_face_changed(astronaut_bgr, decode(anonymized.image, 10**8).pixels, anonymized.regions)


def test_jpeg_bytes_stay_jpeg_and_the_far_background_barely_changes(anonymizer: Anonymizer) -> None:
    source = encode_jpeg(grace_hopper())
    anonymized = anonymizer.anonymize(bytearray(source))  # any bytes-like object
    assert isinstance(anonymized.image, bytes) and anonymized.image.startswith(b"\xff\xd8")
    assert anonymized.content_type == "image/jpeg" and anonymized.counts == {"face": 1}
    before, after = decode(source, 10**8).pixels, decode(anonymized.image, 10**8).pixels
    difference = changed(before, after)
    (region,) = anonymized.regions
    left, top, right, bottom = region.box
    assert difference[top:bottom, left:right].mean() > 15
    assert difference[outside(anonymized.regions, before.shape)].mean() < 2  # one more encoding at quality 95


def test_array_and_png_bytes_of_the_same_pixels_find_the_same_regions(
    anonymizer: Anonymizer, astronaut_png: bytes
) -> None:
    from_array = anonymizer.anonymize(astronaut())
    from_bytes = anonymizer.anonymize(astronaut_png)
    assert from_array.regions == from_bytes.regions
    assert np.array_equal(from_array.image, decode(from_bytes.image, 10**8).pixels)


def test_rgb_arrays_are_answered_in_rgb(anonymizer: Anonymizer) -> None:
    rgb = skimage.data.astronaut()  # RGB, as scikit-image, Pillow and matplotlib give it
    anonymized = anonymizer.anonymize(rgb, rgb=True)
    assert anonymized.counts == {"face": 1}
    as_bgr = anonymizer.anonymize(np.ascontiguousarray(rgb[..., ::-1]))
    assert np.array_equal(anonymized.image, as_bgr.image[..., ::-1])
    assert anonymized.image.flags.c_contiguous


def test_views_and_read_only_arrays_are_accepted_and_left_alone(anonymizer: Anonymizer) -> None:
    image = astronaut()
    image.flags.writeable = False
    assert anonymizer.anonymize(image).counts == {"face": 1}
    strided = astronaut()[:, ::-1]  # a mirrored view, not contiguous
    untouched = strided.copy()
    assert anonymizer.anonymize(strided).counts == {"face": 1}
    assert np.array_equal(strided, untouched)


@pytest.mark.parametrize(
    ("pixels", "message"),
    [
        (np.zeros((64, 64), np.uint8), r"grey pixels \(64×64\).*COLOR_GRAY2BGR"),
        (np.zeros((64, 64, 1), np.uint8), r"grey pixels \(64×64×1\)"),
        (np.zeros((64, 64, 4), np.uint8), r"4-channel pixels \(64×64×4\).*COLOR_BGRA2BGR"),
        (np.zeros((64, 64, 2), np.uint8), r"must be H×W×3 \(BGR\), got shape 64×64×2"),
        (np.zeros((64, 64, 3), np.float32), r"must be uint8 \(0..255\), got float32"),
        (np.zeros((0, 64, 3), np.uint8), r"empty pixels"),
        (np.zeros(3, np.uint8), r"must be H×W×3 \(BGR\), got shape 3"),
    ],
)
def test_arrays_that_are_not_bgr_images_are_refused_saying_how_to_convert(
    anonymizer: Anonymizer, pixels: np.ndarray, message: str
) -> None:
    with pytest.raises(ImageUndecodable, match=message) as refused:
        anonymizer.anonymize(pixels)
    assert refused.value.kind == "image_undecodable"
    with pytest.raises(ImageUndecodable, match=message):
        anonymizer.detect(pixels)


def test_other_inputs_are_type_errors(anonymizer: Anonymizer, astronaut_png: bytes) -> None:
    with pytest.raises(TypeError, match=r"got str; read a file with Path\(...\).read_bytes\(\)"):
        anonymizer.anonymize("processor/samples/astronaut.jpg")  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="rgb applies to arrays only"):
        anonymizer.anonymize(astronaut_png, rgb=True)
    with pytest.raises(ImageUndecodable, match="0 bytes"):
        anonymizer.anonymize(b"")


def test_the_pixel_limit_holds_for_arrays_and_bytes(astronaut_png: bytes) -> None:
    with Anonymizer({"limits": {"max_pixels": 512 * 511}}) as small:
        with pytest.raises(ImageTooLarge, match="512×512"):
            small.anonymize(astronaut())
        with pytest.raises(ImageTooLarge, match="512×512"):
            small.anonymize(astronaut_png)


def test_detect_finds_what_anonymize_hides_and_hides_nothing(anonymizer: Anonymizer, astronaut_png: bytes) -> None:
    image = astronaut()
    untouched = image.copy()
    found = anonymizer.detect(image)
    assert isinstance(found, Detection)
    assert (found.width, found.height) == (512, 512) and found.counts == {"face": 1}
    assert found.regions == anonymizer.anonymize(image).regions
    assert np.array_equal(image, untouched)
    assert anonymizer.detect(astronaut_png).regions == found.regions


def test_configuration_as_dict_file_or_model_per_anonymizer_or_per_call(anonymizer: Anonymizer, tmp_path: Path) -> None:
    path = tmp_path / "blacken.json"
    path.write_bytes(orjson.dumps(BLACKENED_FACES))
    for configuration in (BLACKENED_FACES, path, str(path)):
        with Anonymizer(configuration=configuration) as blackening:
            anonymized = blackening.anonymize(astronaut())
        assert anonymized.result.labels[0].technique == "blackening"
        left, top, right, bottom = anonymized.regions[0].box
        assert (anonymized.image[(top + bottom) // 2, (left + right) // 2] == 0).all()  # the face's centre is black
    per_call = anonymizer.anonymize(astronaut(), BLACKENED_FACES)
    assert per_call.result.labels[0].technique == "blackening"
    assert anonymizer.anonymize(astronaut()).result.labels[0].technique == "blurring"  # the default again
    assert anonymizer.configuration == default_configuration()
    assert anonymizer.anonymize(astronaut(), default_configuration()).counts == {"face": 1}


def test_bad_configurations_are_refused_before_any_model_loads(anonymizer: Anonymizer, tmp_path: Path) -> None:
    broken = {"sensitive_info": [{"model_name": "centerface", "anonymization_technique": "smudging"}]}
    with pytest.raises(InvalidConfiguration) as refused:
        Anonymizer(configuration=broken)
    assert refused.value.kind == "invalid_configuration"
    assert any("class_name: Field required" in problem for problem in refused.value.problems)
    assert any("unknown technique 'smudging'" in problem for problem in refused.value.problems)
    with pytest.raises(InvalidConfiguration, match="cannot read configuration file"):
        AsyncAnonymizer(configuration=tmp_path / "missing.json")
    with pytest.raises(TypeError, match="configuration must be"):
        Anonymizer(configuration=42)  # type: ignore[arg-type]
    with pytest.raises(InvalidConfiguration, match="unknown technique"):
        anonymizer.anonymize(astronaut(), broken)


def test_an_unknown_label_fails_at_opening_or_at_the_call_that_names_it(anonymizer: Anonymizer) -> None:
    unknown = Anonymizer(configuration=UNKNOWN_LABEL)
    with pytest.raises(UnknownLabel, match="'cat'"), unknown:
        pass
    with pytest.raises(AnonymizerClosed, match="closed"):
        unknown.anonymize(astronaut())
    with pytest.raises(UnknownLabel, match="'cat'"):
        anonymizer.anonymize(astronaut(), UNKNOWN_LABEL)


def test_settings_are_the_defaults_or_given_never_read_from_the_environment_unless_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ANONYMIZER_OUTPUT__BOX_SCALE", '{"face": 2.0}')
    assert Anonymizer().settings.output.box_scale == {"face": 2.2}
    assert Anonymizer(Settings()).settings.output.box_scale == {"face": 2.0}
    exact = Anonymizer({"output": {"box_scale": {"face": 1.0}}})
    assert exact.settings.output.box_scale == {"face": 1.0}
    with pytest.raises(ValidationError, match="jpeg_quality"):
        Anonymizer({"output": {"jpeg_quality": 700}})
    with pytest.raises(TypeError, match="settings must be"):
        Anonymizer("fast")  # type: ignore[arg-type]
    with exact:
        region, *_ = exact.anonymize(astronaut()).regions
    with Anonymizer() as scaled:
        grown, *_ = scaled.anonymize(astronaut()).regions
    assert region.box[2] - region.box[0] < grown.box[2] - grown.box[0]  # the default grows the box


def test_calls_from_several_threads_at_once_share_one_anonymizer(anonymizer: Anonymizer) -> None:
    images = [astronaut(), grace_hopper(), astronaut(), grace_hopper()]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(anonymizer.anonymize, images))
    assert [result.counts for result in results] == [{"face": 1}] * 4
    assert results[0].regions == results[2].regions and results[1].regions == results[3].regions


def test_closed_or_unopened_anonymizers_say_so_and_leave_no_thread() -> None:
    before = set(threading.enumerate())
    anonymizer = Anonymizer()
    assert set(threading.enumerate()) == before  # constructing starts nothing
    with pytest.raises(AnonymizerClosed, match="not open: use it in a with block"):
        anonymizer.anonymize(astronaut())
    with anonymizer:
        assert anonymizer.anonymize(astronaut()).counts == {"face": 1}
        assert any(thread.name == "anonymizer-loop" for thread in threading.enumerate())
    assert set(threading.enumerate()) == before  # the loop, its worker threads and the model threads are gone
    with pytest.raises(AnonymizerClosed, match="the anonymizer is closed"):
        anonymizer.anonymize(astronaut())
    with pytest.raises(AnonymizerClosed, match="the anonymizer is closed"):
        anonymizer.detect(astronaut())
    with pytest.raises(AnonymizerClosed, match="opened once"), anonymizer:
        pass
    anonymizer.close()  # twice is harmless


async def test_the_blocking_anonymizer_works_where_an_event_loop_is_already_running() -> None:
    """As in a notebook cell: a loop runs in this thread, so asyncio.run or a Runner here would refuse."""
    with Anonymizer() as anonymizer:
        assert anonymizer.anonymize(astronaut()).counts == {"face": 1}


async def test_async_arrays_and_bytes_concurrently(astronaut_png: bytes, astronaut_bgr: BgrImage) -> None:
    image = astronaut()
    untouched = image.copy()
    async with AsyncAnonymizer() as anonymizer:
        from_array, from_bytes, found = await asyncio.gather(
            anonymizer.anonymize(image), anonymizer.anonymize(astronaut_png), anonymizer.detect(image)
        )
    assert isinstance(from_array.image, np.ndarray) and from_array.content_type is None
    assert isinstance(from_bytes.image, bytes) and from_bytes.content_type == "image/png"
    assert from_array.counts == from_bytes.counts == found.counts == {"face": 1}
    assert np.array_equal(image, untouched)
    assert_only_the_face_changed(untouched, from_array.image, from_array.regions)
    assert_only_the_face_changed(astronaut_bgr, decode(from_bytes.image, 10**8).pixels, from_bytes.regions)
    assert anonymizer.closed
    with pytest.raises(AnonymizerClosed, match="the anonymizer is closed"):
        await anonymizer.anonymize(image)


async def test_async_unopened_and_reopened_anonymizers_are_refused() -> None:
    anonymizer = AsyncAnonymizer(configuration=BLACKENED_FACES)
    with pytest.raises(AnonymizerClosed, match="not open"):
        await anonymizer.detect(astronaut())
    async with anonymizer:
        assert (await anonymizer.anonymize(astronaut())).result.labels[0].technique == "blackening"
    with pytest.raises(AnonymizerClosed, match="opened once"):
        async with anonymizer:
            pass
    await anonymizer.aclose()  # twice is harmless
