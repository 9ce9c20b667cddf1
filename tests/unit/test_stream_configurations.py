"""Which configuration an event gets: inline, stored by name (re-read when changed), or the default."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest

from processor.configuration import default_configuration
from processor.errors import InvalidConfiguration
from processor.settings import StreamSettings
from processor.stream.configurations import Configurations
from schemas.config import UserConfiguration


def entry(class_name: str = "face", technique: str = "blurring") -> dict[str, object]:
    return {
        "model_name": "centerface",
        "class_name": class_name,
        "anonymization_technique": technique,
        "inference_type": "detection",
        "anonymization_degree": 0.5,
    }


def write(path: Path, *entries: dict[str, object]) -> Path:
    path.write_bytes(orjson.dumps({"sensitive_info": list(entries)}))
    return path


def test_no_configuration_means_the_builtin_default(tmp_path: Path) -> None:
    configurations = Configurations(StreamSettings(configurations_dir=tmp_path))
    assert configurations.resolve(None) == default_configuration()


def test_the_default_can_be_a_file(tmp_path: Path) -> None:
    default = write(tmp_path / "mine.json", entry(technique="pixelating"))
    configurations = Configurations(StreamSettings(default_configuration=default, configurations_dir=tmp_path))
    assert configurations.resolve(None).sensitive_info[0].anonymization_technique == "pixelating"


def test_a_broken_default_fails_at_start(tmp_path: Path) -> None:
    broken = write(tmp_path / "broken.json", entry(technique="swirl"))
    with pytest.raises(InvalidConfiguration, match="swirl"):
        Configurations(StreamSettings(default_configuration=broken))


def test_inline_configurations_are_checked_against_the_technique_registry(tmp_path: Path) -> None:
    configurations = Configurations(StreamSettings(configurations_dir=tmp_path))
    good = UserConfiguration.model_validate({"sensitive_info": [entry()]})
    assert configurations.resolve(good) is good
    with pytest.raises(InvalidConfiguration, match="unknown technique 'swirl'"):
        configurations.resolve(UserConfiguration.model_validate({"sensitive_info": [entry(technique="swirl")]}))


def test_a_name_reads_the_stored_file_and_rereads_it_when_changed(tmp_path: Path) -> None:
    path = write(tmp_path / "plates.json", entry(class_name="face"))
    configurations = Configurations(StreamSettings(configurations_dir=tmp_path))
    assert configurations.resolve("plates").sensitive_info[0].class_name == "face"
    write(path, entry(class_name="license_plate"))
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert configurations.resolve("plates").sensitive_info[0].class_name == "license_plate"


def test_an_unknown_name_is_a_configuration_error_naming_where_it_looked(tmp_path: Path) -> None:
    configurations = Configurations(StreamSettings(configurations_dir=tmp_path))
    with pytest.raises(InvalidConfiguration, match="no stored configuration 'nope'"):
        configurations.resolve("nope")
