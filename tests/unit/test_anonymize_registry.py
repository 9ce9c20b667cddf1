"""Technique registry: built-ins, one-function registration, and plugins found through real entry points."""

from __future__ import annotations

import logging
import shutil
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

from processor.anonymize import apply_boxes, get_technique, register_technique, registry, technique_names
from processor.errors import InvalidConfiguration
from processor.frames import BgrImage, Box
from tests.frames import astronaut

BUILTINS = ["blackening", "blurring", "filling", "pixelating"]


@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Techniques registered by a test stay in that test."""
    monkeypatch.setattr(registry, "_registry", registry.TechniqueRegistry(registry.BUILTIN_TECHNIQUES))


def install_plugins(root: Path, entries: dict[str, str], module_source: str) -> str:
    """Write a module and a distribution declaring ``entries`` (name -> attribute of the module) in the
    anonymizer.techniques group, as ``pip install`` would; returns the module's (unique) name."""
    module = f"technique_plugin_{uuid.uuid4().hex}"
    (root / f"{module}.py").write_text(module_source)
    info = root / f"{module}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.0\n")
    lines = [f"{name} = {module}:{attribute}" for name, attribute in entries.items()]
    (info / "entry_points.txt").write_text("[anonymizer.techniques]\n" + "\n".join(lines) + "\n")
    return module


PLUGIN_SOURCE = """
import numpy as np

NOT_A_FUNCTION = 42

def invert(patch, degree):
    patch[...] = 255 - patch  # works in place, as a plugin may
    return patch
"""


def test_builtins_are_listed() -> None:
    assert technique_names() == BUILTINS
    for name in BUILTINS:
        assert callable(get_technique(name))


def test_an_unknown_technique_names_itself_and_the_known_ones() -> None:
    with pytest.raises(InvalidConfiguration) as raised:
        get_technique("swirling")
    assert len(raised.value.problems) == 1
    assert "'swirling'" in raised.value.problems[0]
    for name in BUILTINS:
        assert name in raised.value.problems[0]
    assert raised.value.kind == "invalid_configuration"
    with pytest.raises(InvalidConfiguration, match="swirling"):
        apply_boxes(astronaut(), [Box(0, 0, 10, 10, "face")], "swirling", 1.0)


def test_one_function_adds_a_technique_that_works_through_apply_boxes() -> None:
    @register_technique("inverting")
    def inverting(patch: BgrImage, degree: float) -> BgrImage:
        return 255 - patch

    assert "inverting" in technique_names()
    image = astronaut()
    assert apply_boxes(image, [Box(10, 20, 110, 220, "face")], "inverting", 1.0) == 1
    np.testing.assert_array_equal(image[20:220, 10:110], 255 - astronaut()[20:220, 10:110])
    np.testing.assert_array_equal(image[220:], astronaut()[220:])


def test_a_technique_working_in_place_changes_only_its_ellipse() -> None:
    @register_technique("zeroing-in-place")
    def zeroing(patch: BgrImage, degree: float) -> BgrImage:
        patch[...] = 0
        return patch

    image = np.maximum(astronaut(), 1)
    apply_boxes(image, [Box(100, 100, 200, 300, "face")], "zeroing-in-place", 1.0, ellipse=True)
    assert not image[200, 150].any()
    assert image[100, 100].all()  # a corner of the box, outside the ellipse
    assert image[99, 150].all()


def test_a_name_cannot_be_registered_twice() -> None:
    with pytest.raises(ValueError, match="blurring"):
        register_technique("blurring")(lambda patch, degree: patch)


def test_plugins_load_lazily_once_and_broken_ones_are_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    module = install_plugins(
        tmp_path,
        {
            "inverting": "invert",
            "missing": "no_such_function",
            "constant": "NOT_A_FUNCTION",
            "blurring": "invert",  # a built-in's name: the built-in stays
        },
        PLUGIN_SOURCE,
    )
    broken = install_plugins(tmp_path, {"crashing": "invert"}, "raise RuntimeError('plugin import failed')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    techniques = registry.TechniqueRegistry(registry.BUILTIN_TECHNIQUES)
    assert module not in sys.modules  # nothing is imported before the first lookup

    with caplog.at_level(logging.WARNING, logger="processor.anonymize.registry"):
        assert techniques.names() == sorted([*BUILTINS, "inverting"])
    logged = caplog.text
    assert "missing" in logged
    assert "constant" in logged
    assert "not callable" in logged
    assert "crashing" in logged
    assert "plugin import failed" in logged
    assert "name is taken" in logged
    assert techniques.get("blurring") is registry.BUILTIN_TECHNIQUES["blurring"]

    # Loaded once: the distributions are gone, the plugin stays.
    shutil.rmtree(tmp_path / f"{module}-1.0.dist-info")
    shutil.rmtree(tmp_path / f"{broken}-1.0.dist-info")
    caplog.clear()
    assert "inverting" in techniques.names()
    assert not caplog.text

    patch = astronaut()[:50, :40]
    patch.flags.writeable = False  # what the engine passes: the plugin works in place on a copy
    np.testing.assert_array_equal(techniques.get("inverting")(patch, 1.0), 255 - astronaut()[:50, :40])


def test_a_plugin_works_through_apply_boxes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_plugins(tmp_path, {"inverting": "invert"}, PLUGIN_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_registry", registry.TechniqueRegistry(registry.BUILTIN_TECHNIQUES))
    image = astronaut()
    assert apply_boxes(image, [Box(0, 0, 64, 32, "plate")], "inverting", 1.0) == 1
    np.testing.assert_array_equal(image[:32, :64], 255 - astronaut()[:32, :64])
    np.testing.assert_array_equal(image[32:], astronaut()[32:])
