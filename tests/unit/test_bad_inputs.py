"""The bad-input corpus generator: seeded, unique names, expectations that are real outcomes, the table's sums."""

from __future__ import annotations

from pathlib import Path

from processor.errors import INTERNAL, error_kinds
from tests.bad_inputs import OK, SKIPPED, event_cases, image_cases, outcome_table, video_cases


def test_the_corpus_is_the_same_bytes_every_time_and_its_names_are_unique() -> None:
    first, second = image_cases(), image_cases()
    assert [(case.name, case.data) for case in first] == [(case.name, case.data) for case in second]
    events = event_cases("bucket-a", Path("/data/root"), Path("/data/outside"))
    names = [case.name for case in [*first, *video_cases(), *events]]
    assert len(names) == len(set(names))
    assert (len(first), len(video_cases()), len(events)) >= (200, 40, 100)


def test_every_expected_outcome_is_a_stable_kind_and_none_is_internal() -> None:
    known = error_kinds() - {INTERNAL} | {OK, SKIPPED}
    cases = [*image_cases(), *video_cases(), *event_cases("bucket-a", Path("/r"), Path("/o"))]
    expected = {kind for case in cases for entry in ("api", "cli", "inbox") for kind in case.expected_at(entry)}
    assert expected <= known, expected - known
    assert {"image_too_complex", "image_too_large", "container_not_allowed", "video_too_long"} <= expected


def test_the_table_has_a_column_per_entry_point_and_the_sums() -> None:
    runs = {
        "api-image": {"tried": 3, "clean": 3, "outcomes": {"ok": 2, "image_undecodable": 1}},
        "inbox": {"tried": 2, "clean": 1, "outcomes": {"ok": 1, "invalid_event": 2}},
    }
    assert outcome_table(runs).splitlines() == [
        "| | api-image | inbox | all |",
        "|---|---:|---:|---:|",
        "| **tried** | 3 | 2 | 5 |",
        "| **clean** | 3 | 1 | 4 |",
        "| `image_undecodable` | 1 | 0 | 1 |",
        "| `invalid_event` | 0 | 2 | 2 |",
        "| `ok` | 2 | 1 | 3 |",
    ]
