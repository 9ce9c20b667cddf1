"""Which files the CLI batch reads and writes: folders mirrored, its own output folder skipped, and never an input
replaced or two inputs written to one file."""

from __future__ import annotations

from pathlib import Path

import pytest

from processor.batch import BatchSummary, collect_files, skipped_line
from processor.errors import OutputNotAllowed


def tree(root: Path, *names: str) -> None:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"frame")


def test_folders_are_mirrored_under_the_output_folder(tmp_path: Path) -> None:
    tree(tmp_path / "in", "a.jpg", "cam 1/a.jpg", "cam 2/b.PNG", "notes.txt")
    collected = collect_files([tmp_path / "in"], tmp_path / "out")
    assert [(s.relative_to(tmp_path).as_posix(), d.relative_to(tmp_path).as_posix()) for s, d in collected.pairs] == [
        ("in/a.jpg", "out/a.jpg"),
        ("in/cam 1/a.jpg", "out/cam 1/a.jpg"),
        ("in/cam 2/b.PNG", "out/cam 2/b.PNG"),
    ]
    assert [(s.name, reason) for s, reason in collected.skipped] == [("notes.txt", "not an image")]


def test_skipped_files_are_named_with_their_reason_and_counted_beyond_five(tmp_path: Path) -> None:
    names = [f"n{i}.txt" for i in range(7)]
    tree(tmp_path / "in", "a.jpg", *names)
    collected = collect_files([tmp_path / "in"], tmp_path / "out")
    line = BatchSummary(done=1, skipped=collected.skipped).line()
    assert "skipped 7 file(s): " in line and line.endswith(" and 2 more")
    assert f"{tmp_path / 'in' / 'n0.txt'} (not an image)" in line
    assert skipped_line([]) == ""


def test_skip_existing_leaves_only_the_missing_outputs(tmp_path: Path) -> None:
    tree(tmp_path / "in", "a.jpg", "b.jpg", "c.jpg")
    tree(tmp_path / "out", "b.jpg")
    resumed = collect_files([tmp_path / "in"], tmp_path / "out").without_done()
    assert [source.name for source, _ in resumed.pairs] == ["a.jpg", "c.jpg"]
    assert [(source.name, reason) for source, reason in resumed.skipped] == [("b.jpg", "done before (--skip-existing)")]


def test_an_output_folder_inside_the_input_is_skipped(tmp_path: Path) -> None:
    tree(tmp_path / "in", "a.jpg", "anonymized/a.jpg", "anonymized/old/b.jpg")
    pairs = collect_files([tmp_path / "in"], tmp_path / "in" / "anonymized").pairs
    assert [(s.name, d.relative_to(tmp_path).as_posix()) for s, d in pairs] == [("a.jpg", "in/anonymized/a.jpg")]


@pytest.mark.parametrize(
    ("inputs", "out", "message"),
    [
        (["in"], "in", "is the input folder"),
        (["in/a.jpg"], "in", "would replace the input"),
        (["in", "in/sub"], "in/sub", "is the input folder"),
        (["in/a.jpg", "in/sub/a.jpg"], "out", "would both be written to"),
        (["in", "other"], "out", "would both be written to"),
    ],
)
def test_a_run_that_would_replace_an_input_or_collide_is_refused(
    tmp_path: Path, inputs: list[str], out: str, message: str
) -> None:
    tree(tmp_path / "in", "a.jpg", "sub/a.jpg")
    tree(tmp_path / "other", "a.jpg")
    with pytest.raises(OutputNotAllowed, match=message):
        collect_files([tmp_path / name for name in inputs], tmp_path / out)


def test_the_same_file_named_twice_is_taken_once(tmp_path: Path) -> None:
    tree(tmp_path, "a.jpg")
    assert len(collect_files([tmp_path / "a.jpg", tmp_path / "./a.jpg"], tmp_path / "out").pairs) == 1
