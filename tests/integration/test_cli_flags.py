"""The per-run flags and folder habits of `anonymizer image` and `video`, run as a user runs them (subprocesses on
real photos and videos, the built-in models): each flag changes the output pixels it claims to change."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import cv2
import numpy as np
import orjson
import pytest
from PIL import Image

from processor.frames import BgrImage
from tests.videos import Clip, write_clip

ANONYMIZER = [sys.executable, "-m", "processor"]


def run(*arguments: str, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ANONYMIZER, *arguments, "--no-progress"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def records(done: subprocess.CompletedProcess[str]) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in done.stdout.splitlines()]


def read(path: Path) -> BgrImage:
    pixels = cv2.imread(str(path))
    assert pixels is not None, path
    return pixels.astype(np.uint8)


def region(pixels: BgrImage, box: list[int] | tuple[int, ...]) -> BgrImage:
    left, top, right, bottom = box
    return pixels[top:bottom, left:right].astype(np.int16)


def change(a: BgrImage, b: BgrImage) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


@pytest.fixture
def photo(tmp_path: Path, grace_hopper_jpeg: bytes) -> Path:
    path = tmp_path / "in" / "hopper.jpg"
    path.parent.mkdir()
    path.write_bytes(grace_hopper_jpeg)
    return path


def anonymize(photo: Path, out: str, *flags: str) -> tuple[BgrImage, dict[str, object]]:
    done = run("image", str(photo), "--out", out, *flags, cwd=photo.parent.parent)
    assert done.returncode == 0, done.stderr
    (record,) = records(done)
    return read(photo.parent.parent / out / photo.name), record


def test_technique_degree_and_none_change_the_face_as_they_say(photo: Path) -> None:
    original = read(photo)
    blurred, record = anonymize(photo, "blur")
    (found,) = record["regions"]  # type: ignore[misc]
    box = found["box"]  # type: ignore[index]
    red, _ = anonymize(photo, "red", "--technique", "face=solid:ff0000", "--boxes")
    inner = region(red, box)[10:-10, 10:-10]
    assert np.abs(inner - np.array([0, 0, 255])).max() <= 12  # BGR red, up to JPEG's error
    half, _ = anonymize(photo, "half", "--technique", "blackening", "--degree", "0.5", "--boxes")
    assert abs(region(half, box)[10:-10, 10:-10].mean() - region(original, box)[10:-10, 10:-10].mean() / 2) < 4
    untouched, none_record = anonymize(photo, "none", "--technique", "none")
    assert none_record["counts"] == {"face": 1}  # found, left as is
    assert change(region(untouched, box), region(original, box)) < 2.0
    assert change(region(blurred, box), region(original, box)) > 8.0


def test_min_score_leaves_weaker_faces_and_thresh_is_its_alias(photo: Path) -> None:
    original = read(photo)
    kept, record = anonymize(photo, "strict", "--min-score", "face=0.99")
    assert record["counts"] == {} and record["regions"] == []
    assert change(kept, original) < 2.0
    _, alias = anonymize(photo, "alias", "--thresh", "0.5")
    assert alias["counts"] == {"face": 1}


def test_box_scale_boxes_and_preview_draw_what_they_say(photo: Path) -> None:
    _, default = anonymize(photo, "default")
    _, exact = anonymize(photo, "exact", "--mask-scale", "face=1")
    width = lambda record: record["regions"][0]["box"][2] - record["regions"][0]["box"][0]  # type: ignore[index]  # noqa: E731
    assert width(default) > 1.4 * width(exact)  # the default face scale, 2.2, against the detector's box
    original = read(photo)
    ellipse, record = anonymize(photo, "ellipse")
    rectangle, _ = anonymize(photo, "rectangle", "--boxes")
    left, top, _, _ = record["regions"][0]["box"]  # type: ignore[index]
    corner = (left, top, left + 12, top + 12)
    assert change(region(ellipse, corner), region(original, corner)) < 3.0  # outside the ellipse
    assert change(region(rectangle, corner), region(original, corner)) > 3.0
    preview, _ = anonymize(photo, "preview", "--preview")
    edge = preview[top + 40 : top + 80, left : left + 1]  # the left edge of the outline, drawn in green
    assert (edge[..., 1].astype(int) - edge[..., 2].astype(int)).mean() > 80


def test_face_max_side_is_checked_as_its_setting_is(photo: Path) -> None:
    done = run("image", str(photo), "--out", "out", "--scale", "10", cwd=photo.parent.parent)
    assert done.returncode == 2
    assert "builtin.face_max_side: Input should be greater than or equal to 64" in done.stderr
    assert not (photo.parent.parent / "out").exists()
    bad = run("image", str(photo), "--out", "out", "--technique", "swirl", cwd=photo.parent.parent)
    assert bad.returncode == 2 and "--technique: unknown technique 'swirl'" in bad.stderr


def test_keep_metadata_keeps_exif_and_the_default_drops_it(photo: Path) -> None:
    with Image.open(photo) as image:
        exif = Image.Exif()
        exif[0x010F] = "TestCam"  # Make
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", exif=exif.tobytes(), quality=95)
    photo.write_bytes(buffer.getvalue())
    for out, flags, kept in (("kept", ("--keep-metadata",), True), ("dropped", (), False)):
        done = run("image", str(photo), "--out", out, *flags, cwd=photo.parent.parent)
        assert done.returncode == 0, done.stderr
        with Image.open(photo.parent.parent / out / photo.name) as written:
            assert (written.getexif().get(0x010F) == "TestCam") is kept


def test_dry_run_writes_nothing_and_reports_every_file(photo: Path, astronaut_jpeg: bytes) -> None:
    (photo.parent / "astronaut.jpg").write_bytes(astronaut_jpeg)
    (photo.parent / "clip.mp4").write_bytes(b"not looked at")
    done = run("image", str(photo.parent), "--out", "out", "--dry-run", cwd=photo.parent.parent)
    assert done.returncode == 0, done.stderr
    by_status = {(Path(str(r["source"])).name, r["status"]) for r in records(done)}
    assert by_status == {("hopper.jpg", "ok"), ("astronaut.jpg", "ok"), ("clip.mp4", "skipped")}
    assert all(r.get("output") is None for r in records(done))
    assert not (photo.parent.parent / "out").exists()
    assert "dry run, nothing written" in done.stderr and "clip.mp4 (a video: use anonymizer video)" in done.stderr


def test_skip_existing_resumes_an_interrupted_run(tmp_path: Path, astronaut_jpeg: bytes) -> None:
    inbox = tmp_path / "in"
    inbox.mkdir()
    for index in range(3):
        (inbox / f"{index}.jpg").write_bytes(astronaut_jpeg)
    assert run("image", "in", "--out", "out", cwd=tmp_path).returncode == 0
    (tmp_path / "out" / "1.jpg").unlink()
    before = {name: (tmp_path / "out" / name).stat().st_mtime_ns for name in ("0.jpg", "2.jpg")}
    done = run("image", "in", "--out", "out", "--skip-existing", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert [(Path(str(r["source"])).name, r["status"]) for r in records(done)] == [
        ("0.jpg", "skipped"),
        ("2.jpg", "skipped"),
        ("1.jpg", "ok"),
    ]
    assert {name: (tmp_path / "out" / name).stat().st_mtime_ns for name in before} == before
    assert (tmp_path / "out" / "1.jpg").stat().st_size > 10_000


def test_outputs_get_the_usual_permissions(photo: Path) -> None:
    done = subprocess.run(
        ["sh", "-c", f"umask 022 && exec {sys.executable} -m processor image {photo} --out out --no-progress"],
        cwd=photo.parent.parent,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert (photo.parent.parent / "out" / photo.name).stat().st_mode & 0o777 == 0o644


def test_an_unknown_label_is_refused_once_before_the_first_file(tmp_path: Path, astronaut_jpeg: bytes) -> None:
    (tmp_path / "in").mkdir()
    for index in range(3):
        (tmp_path / "in" / f"{index}.jpg").write_bytes(astronaut_jpeg)
    configuration = tmp_path / "c.json"
    configuration.write_text(
        '{"sensitive_info": [{"model_name": "centerface", "class_name": "cat", "inference_type": "detection",'
        ' "anonymization_technique": "blurring", "anonymization_degree": 1}]}'
    )
    done = run("image", "in", "--out", "out", "--config", str(configuration), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.count("has no label 'cat'") == 1 and "sensitive_info[0]" in done.stderr
    assert done.stdout == "" and not (tmp_path / "out").exists()


def test_ctrl_c_exits_130_with_one_line_and_no_partial_file(tmp_path: Path, astronaut_jpeg: bytes) -> None:
    (tmp_path / "in").mkdir()
    for index in range(200):
        (tmp_path / "in" / f"{index:03}.jpg").write_bytes(astronaut_jpeg)
    process = subprocess.Popen(
        [*ANONYMIZER, "image", "in", "--out", "out", "--jobs", "2", "--no-progress"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir()):
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130
    assert stderr.strip().splitlines() == ["anonymizer: interrupted"]
    written = sorted((tmp_path / "out").iterdir())
    assert 0 < len(written) < 200
    assert all(not path.name.startswith(".") for path in written)  # no temporary file left
    assert all(cv2.imread(str(path)) is not None for path in written)  # every file whole


def test_video_takes_several_files_and_folders_and_drops_audio_when_asked(tmp_path: Path) -> None:
    (tmp_path / "cams" / "b").mkdir(parents=True)
    write_clip(tmp_path / "cams" / "a.mp4", Clip(frames=6))
    write_clip(tmp_path / "cams" / "b" / "c.mkv", Clip(frames=6))
    write_clip(tmp_path / "single.mov", Clip(frames=6))
    (tmp_path / "cams" / "still.jpg").write_bytes(b"an image")
    done = run("video", "cams", "single.mov", "--out", "out", "--no-keep-audio", "--preset", "ultrafast", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    outputs = sorted(path.relative_to(tmp_path / "out").as_posix() for path in (tmp_path / "out").rglob("*"))
    assert outputs == ["a.mp4", "b", "b/c.mkv", "single.mov"]
    for name in ("a.mp4", "b/c.mkv", "single.mov"):
        with av.open(str(tmp_path / "out" / name)) as container:
            assert len(container.streams.video) == 1 and len(container.streams.audio) == 0
    assert "anonymized 3 of 3 video(s); skipped 1 file(s): cams/still.jpg (an image: use anonymizer image)" in (
        done.stderr
    )
    again = run("video", "cams", "--out", "out", "--skip-existing", cwd=tmp_path)
    assert again.returncode == 2 and "no videos to anonymize" in again.stderr and "done before" in again.stderr


def test_video_keeps_the_one_file_to_one_file_form(tmp_path: Path) -> None:
    write_clip(tmp_path / "a.avi", Clip(frames=4))
    done = run("video", "a.avi", "b.mkv", "--preset", "ultrafast", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    with av.open(str(tmp_path / "b.mkv")) as container:
        assert container.streams.video[0].frames in (0, 4) and len(container.streams.audio) == 1
    colliding = tmp_path / "clips"
    colliding.mkdir()
    write_clip(colliding / "x.avi", Clip(frames=2))
    (colliding / "x.webm").write_bytes(b"refused before it is read")
    refused = run("video", "clips", "--out", "out", cwd=tmp_path)
    assert refused.returncode == 2 and "would both be written to out/x.mp4" in refused.stderr


def test_enqueue_takes_a_plain_folder_with_videos_and_never_overwrites(tmp_path: Path, astronaut_jpeg: bytes) -> None:
    (tmp_path / "frames").mkdir()
    (tmp_path / "frames" / "a.jpg").write_bytes(astronaut_jpeg)
    write_clip(tmp_path / "frames" / "clip.mp4", Clip(frames=2))
    (tmp_path / "frames" / "notes.txt").write_text("left out")
    environment = {key: value for key, value in os.environ.items() if not key.startswith("ANONYMIZER_")}
    enqueue = [*ANONYMIZER, "enqueue", "frames", "--no-progress"]
    done = subprocess.run(
        enqueue, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False, env=environment
    )
    assert done.returncode == 0, done.stderr
    sources = sorted(orjson.loads(line)["source"] for line in (tmp_path / "events.jsonl").read_text().splitlines())
    root = (tmp_path / "frames").resolve().as_uri()
    assert sources == [f"{root}/a.jpg", f"{root}/clip.mp4"]
    assert f"ANONYMIZER_STORAGE__FILE_ROOT={(tmp_path / 'frames').resolve()}" in done.stderr
    again = subprocess.run(
        enqueue, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False, env=environment
    )
    assert again.returncode == 2 and "events.jsonl exists: --force replaces it" in again.stderr
    forced = subprocess.run(
        [*enqueue, "--force", "--images-only"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=environment,
    )
    assert forced.returncode == 0, forced.stderr
    assert [orjson.loads(line)["source"] for line in (tmp_path / "events.jsonl").read_text().splitlines()] == [
        f"{root}/a.jpg"
    ]


def test_ctrl_c_during_a_video_leaves_no_partial_output(tmp_path: Path) -> None:
    write_clip(tmp_path / "long.mp4", Clip(frames=240))
    process = subprocess.Popen(
        [*ANONYMIZER, "video", "long.mp4", "--out", "out", "--no-progress"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir()):  # the partial file appears
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert stderr.strip().splitlines() == ["anonymizer: interrupted"]
    assert list((tmp_path / "out").iterdir()) == []
