"""The catalog of bundled models, in the shape the inference HTTP contract exposes (models, labels, config, palette);
custom models join it in :class:`processor.inference.builtin.models.BuiltinModels`.

For a segmentation model the index of a label is its class id in the label map.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from processor.errors import UnknownLabel
from schemas.config import InferenceType

BUILTIN_URL = "builtin"
"""The pseudo-URL of the in-process models, usable wherever an inference URL is."""

MODELS_DIR = Path(__file__).resolve().parents[2] / "models"
CENTERFACE_PATH = MODELS_DIR / "centerface.onnx"
SELFIE_PATH = MODELS_DIR / "selfie_segmentation.tflite"
PPOCR_DET_PATH = MODELS_DIR / "ch_PP-OCRv4_det_infer.onnx"
PPOCR_REC_PATH = MODELS_DIR / "ch_PP-OCRv4_rec_infer.onnx"
NANODET_PATH = MODELS_DIR / "nanodet.onnx"
PLATE_CASCADE_FILE = "haarcascade_russian_plate_number.xml"  # in cv2.data.haarcascades


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """One built-in model as the HTTP contract describes it."""

    name: str
    type: InferenceType
    labels: tuple[str, ...]
    palette: tuple[int, ...] = ()  # segmentation only: flat RGB, one triple per label

    def config(self) -> dict[str, str]:
        """The body of ``GET models/{name}/config``'s ``data``."""
        return {"type": self.type.value}


CENTERFACE = ModelInfo("centerface", InferenceType.detection, ("face",))
PLATE_CASCADE = ModelInfo("plate_cascade", InferenceType.detection, ("license_plate",))
PLATE_READER = ModelInfo("plate_reader", InferenceType.detection, ("license_plate",))
NANODET = ModelInfo("nanodet", InferenceType.detection, ("person", "vehicle"))
SELFIE_SEGMENTATION = ModelInfo(
    "selfie_segmentation",
    InferenceType.segmentation,
    ("background", "person"),
    palette=(0, 0, 0, 192, 128, 128),  # Pascal VOC's colours for background and person
)

CATALOG: dict[str, ModelInfo] = {
    model.name: model for model in (CENTERFACE, PLATE_CASCADE, PLATE_READER, NANODET, SELFIE_SEGMENTATION)
}


def check_label(model: ModelInfo, label: str) -> None:
    """Raises :class:`UnknownLabel` when ``model`` does not know ``label``, naming the labels it has."""
    if label not in model.labels:
        raise UnknownLabel(
            f"built-in model {model.name!r} has no label {label!r}; its labels: {', '.join(model.labels)}"
        )
