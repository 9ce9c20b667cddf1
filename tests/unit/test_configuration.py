"""User configurations: every problem of every entry is reported, naming the entry and the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from processor.configuration import default_configuration, load_configuration, parse_configuration
from processor.errors import InvalidConfiguration
from schemas.config import MAX_ENTRIES, UrlConfiguration


def entry(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "model_name": "centerface",
        "class_name": "face",
        "anonymization_technique": "blurring",
        "inference_type": "detection",
        "anonymization_degree": 1.0,
    }
    base.update(changes)
    return base


def problems_of(raw: Any) -> list[str]:
    with pytest.raises(InvalidConfiguration) as caught:
        parse_configuration(raw)
    return caught.value.problems


def test_valid_configuration_round_trips() -> None:
    configuration = parse_configuration(orjson.dumps({"sensitive_info": [entry(), entry(url="http://a:1/")]}))
    assert [e.url for e in configuration.sensitive_info] == [None, "http://a:1/"]


def test_unknown_technique_is_named_with_the_known_ones() -> None:
    (problem,) = problems_of({"sensitive_info": [entry(), entry(anonymization_technique="swirl")]})
    assert problem.startswith("sensitive_info[1].anonymization_technique: unknown technique 'swirl'")
    assert "blurring" in problem and "pixelating" in problem and "blackening" in problem


def test_degree_above_one_is_refused() -> None:
    (problem,) = problems_of({"sensitive_info": [entry(anonymization_degree=1.5)]})
    assert problem.startswith("sensitive_info[0].anonymization_degree:")
    assert "less than or equal to 1" in problem


def test_missing_field_in_the_third_entry_is_located() -> None:
    third = entry()
    del third["class_name"]
    (problem,) = problems_of({"sensitive_info": [entry(), entry(), third]})
    assert problem == "sensitive_info[2].class_name: Field required"


def test_empty_list_is_refused() -> None:
    (problem,) = problems_of({"sensitive_info": []})
    assert problem.startswith("sensitive_info:")
    assert "at least 1 item" in problem


def test_more_entries_than_the_bound_are_refused_before_any_inference_call() -> None:
    assert len(parse_configuration({"sensitive_info": [entry()] * MAX_ENTRIES}).sensitive_info) == MAX_ENTRIES
    (problem,) = problems_of({"sensitive_info": [entry()] * 500})
    assert problem == "sensitive_info: List should have at most 32 items after validation, not 500"


def test_every_problem_is_listed_at_once() -> None:
    bad = entry(inference_type="classification", anonymization_degree=-1)
    problems = problems_of({"sensitive_info": [entry(), bad, entry(model_name="", anonymization_technique="swirl")]})
    assert len(problems) == 4
    assert {p.split(":")[0] for p in problems} == {
        "sensitive_info[1].inference_type",
        "sensitive_info[1].anonymization_degree",
        "sensitive_info[2].model_name",
        "sensitive_info[2].anonymization_technique",
    }


def test_not_json_and_not_an_object() -> None:
    assert problems_of(b"{nope")[0].startswith("configuration is not valid JSON")
    assert problems_of(b"[1, 2]") == ["configuration must be a JSON object, got list"]


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(InvalidConfiguration, match=r"cannot read configuration file .*missing\.json"):
        load_configuration(tmp_path / "missing.json")


def test_default_configuration_hides_faces_and_plates_with_builtin_models() -> None:
    labels = [(e.class_name, e.url) for e in default_configuration().sensitive_info]
    assert labels == [("face", "builtin"), ("license_plate", "builtin")]
    person = default_configuration(persons=True).sensitive_info[-1]
    assert (person.class_name, person.model_name, person.inference_type.value) == ("person", "nanodet", "detection")


def test_digest_is_stable_and_sensitive_to_content() -> None:
    one = parse_configuration({"sensitive_info": [entry()]})
    assert one.digest() == parse_configuration({"sensitive_info": [entry()]}).digest()
    assert one.digest() != parse_configuration({"sensitive_info": [entry(anonymization_degree=0.5)]}).digest()


def test_the_shipped_sample_files_are_valid() -> None:
    folder = Path(__file__).parents[2] / "jsonFiles"
    configuration = load_configuration(folder / "user_configuration.json")
    assert [e.class_name for e in configuration.sensitive_info] == ["face", "license_plate"]
    urls = UrlConfiguration.model_validate_json((folder / "url_configuration.json").read_bytes())
    assert urls.urls == ["builtin"]
