"""The Python API as a user's program meets it: a fresh interpreter, the README's snippets, an HTTP inference
service."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from processor import AsyncAnonymizer
from tests.conftest import LOOPBACK
from tests.frames import astronaut
from tests.inference_stubs import InferenceStub, StubModel

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

ROOT = Path(__file__).parents[2]
README = ROOT / "README.md"
HEAVY = ("onnxruntime", "aiohttp", "cv2", "numpy", "av", "aiokafka", "obstore", "processor.library")

FACE = {
    "ObjectClassName": "face",
    "ObjectClassId": 0,
    "confidence": 90,
    "coordinates": {"left": 100, "top": 300, "right": 200, "bottom": 400},
}
STUB_MODEL = StubModel("stubfaces", "detection", ["face"], boxes=[FACE])


def run_python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=100, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_importing_processor_loads_no_model_runtime_http_client_or_server() -> None:
    loaded = run_python(
        "import sys, threading, processor\n"
        f"print(sorted(name for name in {HEAVY!r} if name in sys.modules), threading.active_count())"
    )
    assert loaded.split() == ["[]", "1"]


def test_importing_the_api_and_constructing_it_starts_nothing() -> None:
    started = run_python(
        "import threading, processor, processor.library\n"
        "from processor import Anonymizer, AsyncAnonymizer\n"
        "assert Anonymizer is processor.library.Anonymizer\n"
        "Anonymizer(), AsyncAnonymizer()\n"
        "print(threading.active_count())\n"
        "try:\n    processor.Nothing\nexcept AttributeError as error:\n    print(error)"
    )
    assert started.splitlines() == ["1", "module 'processor' has no attribute 'Nothing'"]


def readme_snippets() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


def test_the_readme_has_a_python_api_section_with_sync_and_async_snippets() -> None:
    snippets = readme_snippets()
    assert len(snippets) == 2
    assert "with Anonymizer() as" in snippets[0] and "async with AsyncAnonymizer(" in snippets[1]


@pytest.mark.parametrize("index", [0, 1])
def test_the_readme_snippets_run_and_print_what_their_comments_say(index: int) -> None:
    snippet = readme_snippets()[index]
    expected = [line.split("  # ", 1)[1] for line in snippet.splitlines() if "print(" in line]
    assert expected, "every printed line states its output in a comment"
    assert run_python(snippet).splitlines() == expected


async def test_an_array_reaches_an_http_inference_service_as_one_jpeg_and_builtin_entries_upload_nothing(
    tmp_path: Path,
) -> None:
    async with InferenceStub([STUB_MODEL]) as stub:
        registry = tmp_path / "url_configuration.json"
        registry.write_text(json.dumps({"urls": ["builtin", stub.url]}))
        settings = {
            "inference": {"url_configuration": str(registry), "allowed_networks": LOOPBACK},
            "output": {"box_scale": {}, "ellipse_labels": []},  # the service's box exactly
        }
        remote = {
            "sensitive_info": [
                {
                    "model_name": "stubfaces",
                    "class_name": "face",
                    "inference_type": "detection",
                    "anonymization_technique": "blackening",
                    "anonymization_degree": 1.0,
                    "url": stub.url,
                }
            ]
        }
        image = astronaut()
        untouched = image.copy()
        async with AsyncAnonymizer(settings, configuration=remote) as anonymizer:
            anonymized = await anonymizer.anonymize(image)
            assert [(name, kind) for name, kind, _ in stub.uploads] == [("frame.jpg", "image/jpeg")]
            assert anonymized.result.labels[0].source == f"{stub.url} stubfaces"
            assert (anonymized.image[300:400, 100:200] == 0).all()  # the service's box, blackened
            assert anonymized.regions[0].box == (100, 300, 200, 400)
            assert np.array_equal(anonymized.image[:300], untouched[:300])  # nothing else
            assert np.array_equal(image, untouched)
            builtin = await anonymizer.anonymize(image, "jsonFiles/user_configuration.json")
        assert builtin.counts == {"face": 1}
        assert len(stub.uploads) == 1  # the built-in models read the pixels: no JPEG made, nothing sent
