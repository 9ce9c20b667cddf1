"""One stage result per live image: computed once however many threads ask, forgotten with the image."""

from __future__ import annotations

import gc
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from types import EllipsisType

import numpy as np
import pytest

from processor.frames import BgrImage, Box
from processor.inference.builtin.models import BuiltinModels
from processor.inference.builtin.per_image import PerImage


def test_two_threads_asking_for_one_image_share_one_computation() -> None:
    calls: list[int] = []
    lock = threading.Lock()

    def slow_sum(image: BgrImage) -> int:
        with lock:
            calls.append(id(image))
        time.sleep(0.2)  # the second caller arrives while the first computes
        return int(image.sum())

    shared = PerImage(slow_sum)
    image = np.ones((4, 4, 3), np.uint8)
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(shared.get, [image, image]))
    assert results == [48, 48] and len(calls) == 1
    assert shared.get(np.ones((4, 4, 3), np.uint8)) == 48 and len(calls) == 2, "an equal copy is another image"


def test_an_entry_goes_with_its_image_and_a_reused_id_is_computed_afresh() -> None:
    shared = PerImage(lambda image: int(image[0, 0, 0]))
    image = np.full((2, 2, 3), 7, np.uint8)
    assert shared.get(image) == 7 and len(shared) == 1
    del image
    gc.collect()
    assert len(shared) == 0, "no frame is kept alive by the cache"
    assert [shared.get(np.full((2, 2, 3), value, np.uint8)) for value in (1, 2, 3)] == [1, 2, 3]


def test_faces_and_plates_of_one_frame_run_the_stage_pass_once(monkeypatch: pytest.MonkeyPatch) -> None:
    models = BuiltinModels()
    frame = np.random.default_rng(3).integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
    nanodet = models._objects.get()
    detect = nanodet.detect
    runs: list[int] = []

    def counted(image: BgrImage, *, tile: int | EllipsisType | None = ...) -> list[Box]:
        runs.append(id(image))
        return detect(image, tile=tile)

    monkeypatch.setattr(nanodet, "detect", counted)
    models.run_detection("centerface", frame)
    models.run_detection("plate_reader", frame)
    assert runs == [id(frame)], "the real NanoDet, counted: one stage pass for both models"
