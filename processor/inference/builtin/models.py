"""The built-in models behind one sync, thread-safe facade: lazy loading once, routing of entries, and the
detection / segmentation calls the HTTP inference server and the localizer share.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

import numpy as np
import numpy.typing as npt

from processor.errors import InvalidConfiguration, UnknownModel
from processor.frames import BgrImage, BoolMask, Box, Localization
from processor.inference.builtin.catalog import (
    BUILTIN_URL,
    CATALOG,
    CENTERFACE,
    NANODET,
    PLATE_CASCADE,
    PLATE_READER,
    SELFIE_SEGMENTATION,
    ModelInfo,
    check_label,
)
from processor.inference.builtin.custom import CustomDetector
from processor.inference.builtin.custom import model_info as custom_model_info
from processor.inference.builtin.faces import FaceDetector
from processor.inference.builtin.head_crops import far_faces
from processor.inference.builtin.objects import ObjectDetector
from processor.inference.builtin.per_image import PerImage
from processor.inference.builtin.persons import PersonSegmenter, component_boxes
from processor.inference.builtin.plate_reader import PlateReader
from processor.inference.builtin.plates import PlateDetector
from processor.inference.builtin.tiling import containment_merge
from processor.settings import BuiltinSettings
from schemas.config import InferenceType, SensitiveInfo

LabelMap = npt.NDArray[np.uint8]
"""An HxW array of class ids: the index of each pixel's label in the model's labels."""

T = TypeVar("T")

NANODET_TILE = 640
"""Side of NanoDet's tiles, px, when tiling is on: 1080p gives 8 tiles (plus the whole frame)."""


class _Lazy(Generic[T]):
    """A value built on first use, exactly once even when many threads ask at the same time."""

    def __init__(self, load: Callable[[], T]) -> None:
        self._load = load
        self._value: T | None = None
        self._lock = threading.Lock()

    def get(self) -> T:
        value = self._value
        if value is None:
            with self._lock:
                if self._value is None:
                    self._value = self._load()
                value = self._value
        return value


class BuiltinModels:
    """The bundled models and the custom ones (``builtin.custom_models``), each loaded on first use (or by
    :meth:`warm_up`); every method is sync, thread-safe and CPU-bound: call it from worker threads, never on the
    event loop.

    :param options: detector settings (face input size and threshold, onnxruntime threads and execution providers,
        plate cascade scale, where the plate reader reads, NanoDet tiling, custom models).
    """

    def __init__(self, options: BuiltinSettings | None = None) -> None:
        options = options or BuiltinSettings()
        threads, providers = options.onnx_threads, options.onnx_providers
        self._faces = _Lazy(
            lambda: FaceDetector(
                max_side=options.face_max_side,
                threshold=options.face_threshold,
                intra_op_threads=threads,
                providers=providers,
            )
        )
        self._plates = _Lazy(
            lambda: PlateDetector(downscale=options.plate_downscale, scale_factor=options.plate_scale_factor)
        )
        self._plate_reader = _Lazy(
            lambda: PlateReader(crop_side=options.plate_crop_side, intra_op_threads=threads, providers=providers)
        )
        self._plate_vehicles = options.plate_vehicles
        self._plate_whole_frame = options.plate_whole_frame
        self._face_head_crops = options.face_head_crops
        self._objects = _Lazy(
            lambda: ObjectDetector(
                tile=NANODET_TILE if options.nanodet_tiling else None, intra_op_threads=threads, providers=providers
            )
        )
        self._stage_pass = PerImage(
            lambda image: tuple(self._objects.get().detect(image, tile=options.nanodet_stage_tile))
        )
        self._persons = _Lazy(PersonSegmenter)
        self._custom = {
            custom.name: _Lazy(functools.partial(CustomDetector, custom, intra_op_threads=threads, providers=providers))
            for custom in options.custom_models
        }
        self._catalog = {**CATALOG, **{custom.name: custom_model_info(custom) for custom in options.custom_models}}

    def catalog(self) -> dict[str, ModelInfo]:
        """Every model by name: the bundled ones, then the custom ones."""
        return dict(self._catalog)

    def model_info(self, name: str) -> ModelInfo:
        """The model called ``name``; raises :class:`UnknownModel` naming the models there are."""
        try:
            return self._catalog[name]
        except KeyError:
            raise UnknownModel(
                f"no built-in model {name!r}; built-in models: {', '.join(sorted(self._catalog))}"
            ) from None

    def warm_up(self) -> None:
        """Load every model now and run each once, so the first frame does not pay for it."""
        blank = np.zeros((64, 64, 3), np.uint8)
        for model in self._catalog.values():
            if model.type is InferenceType.detection:
                self.run_detection(model.name, blank)
            else:
                self.run_segmentation(model.name, blank)

    def run_detection(self, model: str, image: BgrImage) -> list[Box]:
        """The boxes ``model`` finds in ``image``, in its pixels. For the segmentation model: one box per
        connected region of persons. Raises :class:`processor.errors.UnknownModel`."""
        info = self.model_info(model)
        if info.name in self._custom:
            return self._custom[info.name].get().detect(image)
        if info is CENTERFACE:
            return self._find_faces(image)
        if info is PLATE_CASCADE:
            return self._plates.get().detect(image)
        if info is PLATE_READER:
            return self._read_plates(image)
        if info is NANODET:
            return self._objects.get().detect(image)
        return component_boxes(self._persons.get().segment(image), "person")

    def _find_faces(self, image: BgrImage) -> list[Box]:
        """CenterFace on the whole frame, and on upscaled head crops of the far persons NanoDet's stage pass finds
        (faces too small for the whole-frame pass); a face found by both is one box."""
        detector = self._faces.get()
        faces = detector.detect(image)
        if not self._face_head_crops:
            return faces
        persons = [box for box in self._stage_pass.get(image) if box.label == "person"]
        return containment_merge(faces + far_faces(detector, image, persons))

    def _read_plates(self, image: BgrImage) -> list[Box]:
        """The plate reader on NanoDet's vehicles (the stage pass, shared with the faces: whole frame and
        ``nanodet_stage_tile`` tiles, as far cars are too small for NanoDet's 416 px view of a whole 1080p frame)
        and/or on the whole frame, which finds the plates of vehicles NanoDet misses (occluded, cut by the frame
        edge); a plate found by both is one box."""
        reader = self._plate_reader.get()
        plates = reader.find_plates(image) if self._plate_whole_frame else []
        if self._plate_vehicles:
            vehicles = [box for box in self._stage_pass.get(image) if box.label == "vehicle"]
            plates += reader.find_plates(image, vehicles)
        return containment_merge(plates)

    def run_segmentation(self, model: str, image: BgrImage) -> LabelMap:
        """The label map of ``image`` by a segmentation model (class id = index in the model's labels).
        Raises :class:`processor.errors.UnknownModel`, and :class:`InvalidConfiguration` for a detection model."""
        info = self.model_info(model)
        if info is not SELFIE_SEGMENTATION:
            raise InvalidConfiguration([_not_segmentation(info)])
        person = self._persons.get().segment(image)
        label_map: LabelMap = person.astype(np.uint8) * np.uint8(SELFIE_SEGMENTATION.labels.index("person"))
        return label_map

    def localize(self, image: BgrImage, entry: SensitiveInfo) -> Localization:
        """What ``entry`` asks for in ``image``: boxes for detection; for segmentation, the mask of
        ``entry.class_name`` and the boxes of its connected regions.

        Raises :class:`processor.errors.UnknownModel`, :class:`processor.errors.UnknownLabel`, and
        :class:`InvalidConfiguration` for a segmentation entry on a detection model.
        """
        info = self.model_info(entry.model_name)
        check_label(info, entry.class_name)
        started = time.perf_counter()
        mask: BoolMask | None = None
        if info.type is InferenceType.detection:
            if entry.inference_type is InferenceType.segmentation:
                raise InvalidConfiguration([_not_segmentation(info)])
            boxes = [box for box in self.run_detection(info.name, image) if box.label == entry.class_name]
        else:
            class_mask: BoolMask = self.run_segmentation(info.name, image) == info.labels.index(entry.class_name)
            boxes = component_boxes(class_mask, entry.class_name)
            if entry.inference_type is InferenceType.segmentation:
                mask = class_mask
        return Localization(
            label=entry.class_name,
            boxes=tuple(boxes),
            mask=mask,
            source=f"{BUILTIN_URL}/{info.name}",
            timings_ms={"inference": (time.perf_counter() - started) * 1000.0},
        )


def _not_segmentation(info: ModelInfo) -> str:
    return f"built-in model {info.name!r} is a detection model: use inference_type 'detection' with it"
