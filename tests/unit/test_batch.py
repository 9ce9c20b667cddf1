"""Which files the CLI batch reads and writes: folders mirrored, its own output folder skipped, and never an input
replaced or two inputs written to one file."""

from __future__ import annotations

from pathlib import Path

import pytest

from processor.batch import collect_images
from processor.errors import OutputNotAllowed


def tree(root: Path, *names: str) -> None:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"frame")


def test_folders_are_mirrored_under_the_output_folder(tmp_path: Path) -> None:
    tree(tmp_path / "in", "a.jpg", "cam 1/a.jpg", "cam 2/b.PNG", "notes.txt")
    pairs = collect_images([tmp_path / "in"], tmp_path / "out")
    assert [(s.relative_to(tmp_path).as_posix(), d.relative_to(tmp_path).as_posix()) for s, d in pairs] == [
        ("in/a.jpg", "out/a.jpg"),
        ("in/cam 1/a.jpg", "out/cam 1/a.jpg"),
        ("in/cam 2/b.PNG", "out/cam 2/b.PNG"),
    ]


def test_an_output_folder_inside_the_input_is_skipped(tmp_path: Path) -> None:
    tree(tmp_path / "in", "a.jpg", "anonymized/a.jpg", "anonymized/old/b.jpg")
    pairs = collect_images([tmp_path / "in"], tmp_path / "in" / "anonymized")
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
        collect_images([tmp_path / name for name in inputs], tmp_path / out)


def test_the_same_file_named_twice_is_taken_once(tmp_path: Path) -> None:
    tree(tmp_path, "a.jpg")
    assert len(collect_images([tmp_path / "a.jpg", tmp_path / "./a.jpg"], tmp_path / "out")) == 1
