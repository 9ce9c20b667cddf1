"""Tiny real ONNX detectors for the bring-your-own-model tests, built with the ``onnx`` package: each answers fixed
head tensors whatever the image (a Constant plus 0 x the input's mean, so the input binds and is read)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper

Floats = npt.NDArray[np.float32]
Corners = tuple[float, float, float, float]


def write_detector(path: Path, input_size: tuple[int, int], outputs: dict[str, Floats]) -> Path:
    """An ONNX file with input ``images`` (1, 3, h, w) answering ``outputs`` (name -> fixed tensor)."""
    width, height = input_size
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["mean"], keepdims=0),
        helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
    ]
    initializers = [numpy_helper.from_array(np.zeros((), np.float32), "zero")]
    for name, value in outputs.items():
        initializers.append(numpy_helper.from_array(value.astype(np.float32), f"{name}_value"))
        nodes.append(helper.make_node("Add", [f"{name}_value", "nothing"], [name]))
    graph = helper.make_graph(
        nodes,
        "fixed_detector",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, height, width])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, list(value.shape)) for name, value in outputs.items()],
        initializer=initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def yolo_v8_head(boxes: list[tuple[Corners, int, float]], classes: int, candidates: int = 32) -> Floats:
    """(1, 4+C, N): each (x1, y1, x2, y2 network pixels, class, score) as cx, cy, w, h + class scores."""
    head = np.zeros((4 + classes, candidates), np.float32)
    for index, ((x1, y1, x2, y2), cls, score) in enumerate(boxes):
        head[:4, index] = ((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1)
        head[4 + cls, index] = score
    return head[np.newaxis]


def yolo_v5_head(boxes: list[tuple[Corners, int, float]], classes: int, candidates: int = 32) -> Floats:
    """(1, N, 5+C) with objectness 1: the same boxes as :func:`yolo_v8_head`, v5 layout."""
    head = np.zeros((candidates, 5 + classes), np.float32)
    for index, ((x1, y1, x2, y2), cls, score) in enumerate(boxes):
        head[index, :5] = ((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1, 1.0)
        head[index, 5 + cls] = score
    return head[np.newaxis]


def ssd_heads(
    boxes: list[tuple[Corners, int, float]], classes: int, input_size: tuple[int, int], candidates: int = 16
) -> dict[str, Floats]:
    """``boxes`` (1, N, 4) 0..1 and ``scores`` (1, N, C), background class 0 high for the unused candidates."""
    width, height = input_size
    corners = np.zeros((candidates, 4), np.float32)
    scores = np.zeros((candidates, classes), np.float32)
    scores[:, 0] = 0.99
    for index, ((x1, y1, x2, y2), cls, score) in enumerate(boxes):
        corners[index] = (x1 / width, y1 / height, x2 / width, y2 / height)
        scores[index] = 0.0
        scores[index, cls] = score
    return {"boxes": corners[np.newaxis], "scores": scores[np.newaxis]}


def letterboxed(box: Corners, frame: tuple[int, int], input_size: tuple[int, int]) -> Corners:
    """A frame box in the pixels of a centred letterbox of ``frame`` (w, h) into ``input_size`` (w, h)."""
    scale = min(input_size[0] / frame[0], input_size[1] / frame[1])
    pad_x = (input_size[0] - round(frame[0] * scale)) // 2
    pad_y = (input_size[1] - round(frame[1] * scale)) // 2
    x1, y1, x2, y2 = box
    return (x1 * scale + pad_x, y1 * scale + pad_y, x2 * scale + pad_x, y2 * scale + pad_y)


def stretched(box: Corners, frame: tuple[int, int], input_size: tuple[int, int]) -> Corners:
    """A frame box in the pixels of ``frame`` stretched to ``input_size``."""
    sx, sy = input_size[0] / frame[0], input_size[1] / frame[1]
    x1, y1, x2, y2 = box
    return (x1 * sx, y1 * sy, x2 * sx, y2 * sy)
