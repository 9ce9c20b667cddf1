"""`anonymizer image` as a user runs it: a real subprocess on a folder of good and bad files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson

from tests.conftest import encode_png
from tests.frames import compose_crowd_frame
from tests.unit.test_media import png_header_only

ANONYMIZER = [sys.executable, "-m", "processor"]


def run(*arguments: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ANONYMIZER, *arguments, "--no-progress"], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def test_folder_with_bad_files_does_the_good_ones_and_reports_the_bad(
    tmp_path: Path, astronaut_jpeg: bytes, grace_hopper_jpeg: bytes
) -> None:
    inbox = tmp_path / "frames"
    (inbox / "nested").mkdir(parents=True)
    (inbox / "astronaut.jpg").write_bytes(astronaut_jpeg)
    (inbox / "nested" / "hopper.jpg").write_bytes(grace_hopper_jpeg)
    (inbox / "empty.jpg").write_bytes(b"")
    (inbox / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    (inbox / "bomb.png").write_bytes(png_header_only(30_000, 30_000))
    (inbox / "notes.txt").write_text("not an image, and not picked from a folder")

    done = run("image", str(inbox), "--out", str(tmp_path / "out"), cwd=tmp_path)

    assert done.returncode == 1, done.stderr
    records = {Path(r["source"]).name: r for r in map(orjson.loads, done.stdout.splitlines())}
    assert set(records) == {"astronaut.jpg", "hopper.jpg", "empty.jpg", "corrupt.png", "bomb.png", "notes.txt"}
    assert records["notes.txt"] == {"source": str(inbox / "notes.txt"), "status": "skipped", "reason": "not an image"}
    assert records["astronaut.jpg"]["counts"] == {"face": 1}
    assert records["hopper.jpg"]["counts"] == {"face": 1}
    assert (tmp_path / "out" / "nested" / "hopper.jpg").stat().st_size > 10_000
    assert records["empty.jpg"]["error_kind"] == "image_undecodable"
    assert "0 bytes" in records["empty.jpg"]["error"]
    assert records["corrupt.png"]["error_kind"] == "image_undecodable"
    assert records["bomb.png"]["error_kind"] == "image_too_large"
    assert "30000×30000" in records["bomb.png"]["error"]
    assert "anonymized 2 file(s)" in done.stderr and "3 failed" in done.stderr
    assert f"skipped 1 file(s): {inbox / 'notes.txt'} (not an image)" in done.stderr


def test_default_run_on_the_bundled_samples(tmp_path: Path) -> None:
    done = run("image", "--out", "anonymized", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    outputs = sorted(p.name for p in (tmp_path / "anonymized").iterdir())
    assert outputs == ["astronaut.jpg", "grace_hopper.jpg"]
    found = [orjson.loads(line) for line in done.stdout.splitlines()]
    assert [record["counts"] for record in found if record["status"] == "ok"] == [{"face": 1}, {"face": 1}]


def test_invalid_configuration_is_refused_before_any_work(tmp_path: Path) -> None:
    configuration = tmp_path / "bad.json"
    configuration.write_text(
        '{"sensitive_info": [{"model_name": "centerface", "class_name": "face", "inference_type": "detection",'
        ' "anonymization_technique": "swirl", "anonymization_degree": 1.5}]}'
    )
    frame = tmp_path / "frame.png"
    frame.write_bytes(encode_png(compose_crowd_frame([80], size=(320, 240))[0]))
    done = run("image", str(frame), "--config", str(configuration), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert done.returncode == 2
    assert "sensitive_info[0].anonymization_degree" in done.stderr
    assert "sensitive_info[0].anonymization_technique: unknown technique 'swirl'" in done.stderr
    assert not (tmp_path / "out").exists()


def test_a_bad_setting_is_refused_naming_the_variable(tmp_path: Path) -> None:
    done = subprocess.run(
        [*ANONYMIZER, "image", "--no-progress"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "ANONYMIZER_BUILTIN__FACE_THRESHOLD": "2"},
    )
    assert done.returncode == 2
    assert "invalid settings: ANONYMIZER_BUILTIN__FACE_THRESHOLD: Input should be less than 1" in done.stderr


def listing(root: Path) -> dict[str, bytes]:
    return {path.relative_to(root).as_posix(): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def test_a_run_that_would_replace_its_inputs_is_refused_and_writes_nothing(
    tmp_path: Path, astronaut_jpeg: bytes
) -> None:
    (tmp_path / "in" / "cam").mkdir(parents=True)
    (tmp_path / "in" / "a.jpg").write_bytes(astronaut_jpeg)
    (tmp_path / "in" / "cam" / "a.jpg").write_bytes(astronaut_jpeg)
    before = listing(tmp_path)

    in_place = run("image", "in", "--out", "in", cwd=tmp_path)
    same_names = run("image", "in/a.jpg", "in/cam/a.jpg", "--out", "out", cwd=tmp_path)
    video_in_place = run("video", "in/a.mp4", "in/a.mp4", cwd=tmp_path)

    assert (in_place.returncode, same_names.returncode, video_in_place.returncode) == (2, 2, 2)
    assert "the outputs would replace it" in in_place.stderr
    assert "would both be written to out/a.jpg" in same_names.stderr
    assert "is the input" in video_in_place.stderr
    assert listing(tmp_path) == before
