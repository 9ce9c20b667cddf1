"""Build-venv side of ``prepare_models``: converts a TF.js graph model to ONNX, and runs it in TensorFlow.

Runs only as a script under a throwaway build interpreter that has TensorFlow and tf2onnx (never the runtime's):

    python tfjs_conversion.py convert model.json out.onnx
    python tfjs_conversion.py reference model.json input.npy outputs.npz

It imports nothing from ``processor`` (the build venv does not have it installed).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

OPSET = 13


def convert(model_json: Path, onnx_path: Path) -> None:
    """``tf2onnx --tfjs``; tf2onnx 1.17 still calls ``np.product``, which numpy 2 removed: alias it first."""
    np.product = np.prod  # type: ignore[attr-defined]
    from tf2onnx import convert as tf2onnx_convert

    sys.argv = ["tf2onnx", "--tfjs", str(model_json), "--output", str(onnx_path), "--opset", str(OPSET)]
    tf2onnx_convert.main()


def _weights(model: dict[str, Any], folder: Path) -> dict[str, npt.NDArray[Any]]:
    """The graph's weights by name; float16-quantised ones widened back to their declared dtype."""
    manifest = model["weightsManifest"][0]
    data = b"".join((folder / path).read_bytes() for path in manifest["paths"])
    weights: dict[str, npt.NDArray[Any]] = {}
    offset = 0
    for weight in manifest["weights"]:
        quantization = weight.get("quantization")
        if quantization is not None and "scale" in quantization:
            raise SystemExit(f"{weight['name']}: affine-quantised weights are not supported")
        stored = np.dtype(quantization["dtype"] if quantization else weight["dtype"])
        count = int(np.prod(weight["shape"], dtype=np.int64))
        array = np.frombuffer(data, dtype=stored, count=count, offset=offset).reshape(weight["shape"])
        offset += array.nbytes
        weights[weight["name"]] = array.astype(weight["dtype"])
    if offset != len(data):
        raise SystemExit(f"weights manifest covers {offset} bytes of {len(data)}")
    return weights


def reference(model_json: Path, input_path: Path, outputs_path: Path) -> None:
    """Runs the TF.js graph itself in TensorFlow on the array in ``input_path``; saves every signature output
    (keyed by its signature name, as the ONNX names them) to ``outputs_path``."""
    import tensorflow as tf
    from google.protobuf.json_format import ParseDict
    from tensorflow.core.framework import graph_pb2

    model = json.loads(model_json.read_text())
    weights = _weights(model, model_json.parent)
    graph_def = graph_pb2.GraphDef()
    for node in model["modelTopology"]["node"]:
        node_def = graph_def.node.add()
        ParseDict(node, node_def)
        if node_def.op == "Const":  # TF.js keeps constants' values in the weights file
            dtype = tf.dtypes.as_dtype(node_def.attr["dtype"].type).as_numpy_dtype
            node_def.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(weights[node_def.name].astype(dtype)))
    (input_tensor,) = [spec["name"] for spec in model["signature"]["inputs"].values()]
    outputs = {key: spec["name"] for key, spec in model["signature"]["outputs"].items()}
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    with tf.compat.v1.Session(graph=graph) as session:
        values = session.run(list(outputs.values()), {input_tensor: np.load(input_path)})
    np.savez(outputs_path, **dict(zip(outputs, values, strict=True)))


if __name__ == "__main__":
    command, *paths = sys.argv[1:]
    if command == "convert":
        convert(*map(Path, paths))
    elif command == "reference":
        reference(*map(Path, paths))
    else:
        raise SystemExit(f"unknown command {command!r}: convert or reference")
