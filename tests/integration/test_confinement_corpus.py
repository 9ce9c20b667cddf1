"""The traversal and overwrite corpus, on the stream: one ``anonymizer run`` over an inbox of hostile events against
a real moto S3 bucket and a local ``file_root``. Each hostile event is dead-lettered with its stable kind, and a
listing of the storage before and after (S3 keys with ETags, local files with sha256) proves that nothing was
written beside the expected outputs and nothing was replaced. Colliding video names (clip.avi, clip.mp4,
clip.webm) complete to three different outputs. HLS, DASH and ffconcat objects are refused before a byte is
demuxed (``container_not_allowed``), and the same uploads to ``POST /anonymize_video/`` answer 400 with that kind.

The CLI's side of the corpus (in place, same-name inputs, ``video X X``) is
``tests/integration/test_cli_image.py::test_a_run_that_would_replace_its_inputs_is_refused_and_writes_nothing``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import boto3
import orjson
import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient

from processor.settings import Settings, StorageSettings
from schemas.events import CompletionEvent, DeadLetter
from tests.integration.api_support import api_on_loopback
from tests.integration.conftest import S3_ACCESS_KEY, S3_REGION, S3_SECRET_KEY
from tests.integration.stream_support import builtin_configuration, processor_settings, settings_env
from tests.videos import Clip, write_clip

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

# Each refers to local files by a path relative to the playlist: the demuxer would open them itself.
PLAYLISTS = {
    "list.m3u8": b"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\nsecret.mp4\n#EXT-X-ENDLIST\n",
    "manifest.mpd": (
        b'<?xml version="1.0"?>\n<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static">'
        b'<Period><AdaptationSet><Representation id="1" bandwidth="1"><BaseURL>secret.mp4</BaseURL>'
        b"</Representation></AdaptationSet></Period></MPD>\n"
    ),
    "parts.ffconcat": b"ffconcat version 1.0\nfile secret.mp4\n",
}


def s3_listing(client: Any, bucket: str) -> dict[str, str]:
    """Every key of ``bucket`` with its ETag."""
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return {item["Key"]: item["ETag"] for page in pages for item in page.get("Contents", [])}


def local_listing(root: Path) -> dict[str, str]:
    """Every file under ``root`` with its sha256."""
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def small_clip(path: Path) -> bytes:
    """A short H.264 clip (no audio) in ``path``'s container; .webm holds it as Matroska (the demuxer is shared)."""
    written = path.with_suffix(".mkv") if path.suffix == ".webm" else path
    write_clip(written, Clip(frames=4, size=(160, 120), face_height=40), audio=None)
    if written != path:
        written.rename(path)
    return path.read_bytes()


def run_inbox(workdir: Path, settings: Settings, events: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
    inbox = workdir / "events.jsonl"
    inbox.write_bytes(b"\n".join(orjson.dumps(event) for event in events))
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANONYMIZER_")}
    env |= settings_env(settings)
    env.pop("ANONYMIZER_KAFKA", None)
    argv = [sys.executable, "-m", "processor", "run", "--inbox", str(inbox)]
    return subprocess.run(argv, cwd=workdir, env=env, capture_output=True, text=True, timeout=200, check=False)


def test_hostile_events_are_dead_lettered_with_their_kind_and_nothing_is_written_or_replaced(
    tmp_path: Path,
    s3_endpoint: str,
    storage_settings: StorageSettings,
    s3_bucket: Callable[[], str],
    astronaut_jpeg: bytes,
) -> None:
    raw, other = s3_bucket(), s3_bucket()
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name=S3_REGION,
        aws_access_key_id=S3_ACCESS_KEY,
        aws_secret_access_key=S3_SECRET_KEY,
    )
    clips = tmp_path / "clips"
    clips.mkdir()
    objects = {"cam/a.jpg": astronaut_jpeg, "cam/secret.mp4": small_clip(clips / "secret.mp4")}
    for name in ("clip.avi", "clip.mp4", "clip.webm"):
        objects[f"cam/{name}"] = small_clip(clips / name)
    objects |= {f"cam/{name}": body for name, body in PLAYLISTS.items()}
    for key, body in objects.items():
        s3.put_object(Bucket=raw, Key=key, Body=body)
    s3.put_object(Bucket=other, Key="keep.jpg", Body=astronaut_jpeg)

    disk = tmp_path / "disk"
    root, outside = disk / "root", disk / "outside"
    (root / "cam").mkdir(parents=True)
    outside.mkdir()
    (root / "cam" / "b.jpg").write_bytes(astronaut_jpeg)
    (outside / "private.jpg").write_bytes(astronaut_jpeg)
    (outside / "notes.txt").write_text("not for events")

    workdir = tmp_path / "work"
    configuration = tmp_path / "builtin.json"
    configuration.write_bytes(orjson.dumps(builtin_configuration()))
    storage = storage_settings.model_copy(update={"file_root": root, "schemes": frozenset({"s3"})})
    settings = processor_settings(None, storage, workdir, default_configuration=configuration)
    source = f"s3://{raw}/cam/a.jpg"
    hostile = {
        "file-outside-root": ({"source": f"file://{outside}/private.jpg"}, "invalid_event"),
        "file-dot-dot": ({"source": f"file://{root}/cam/../../outside/private.jpg"}, "invalid_event"),
        "file-output-dot-dot": (
            {"source": f"file://{root}/cam/b.jpg", "output": f"file://{root}/../outside/private.jpg"},
            "invalid_event",
        ),
        "output-is-source": ({"source": source, "output": source}, "output_not_allowed"),
        "output-outside-prefix": ({"source": source, "output": f"s3://{raw}/cam/b.jpg"}, "output_not_allowed"),
        "output-other-bucket": ({"source": source, "output": f"s3://{other}/keep.jpg"}, "output_not_allowed"),
        "output-on-disk": ({"source": source, "output": f"file://{root}/cam/b.jpg"}, "output_not_allowed"),
        "memory-not-enabled": ({"source": "memory://frames/a.jpg"}, "scheme_not_allowed"),
        "bucket-as-host": ({"source": "s3://evil.example.com:9000/a.jpg"}, "bucket_name_invalid"),
        **{
            f"playlist-{name}": ({"source": f"s3://{raw}/cam/{name}", "kind": "video"}, "container_not_allowed")
            for name in PLAYLISTS
        },
    }
    fine = {f"video-{name}": {"source": f"s3://{raw}/cam/{name}"} for name in ("clip.avi", "clip.mp4", "clip.webm")}
    events = [{"id": event_id, **event} for event_id, (event, _) in hostile.items()]
    events += [{"id": event_id, **event} for event_id, event in fine.items()]
    before = {raw: s3_listing(s3, raw), other: s3_listing(s3, other)}, local_listing(disk)

    finished = run_inbox(workdir, settings, events)

    assert finished.returncode == 1, finished.stderr[-3000:]  # some events did not complete
    dead = [
        DeadLetter.model_validate_json(line)
        for line in (workdir / "completions.dead-letter.jsonl").read_bytes().splitlines()
    ]
    assert {letter.event_id: letter.error_kind for letter in dead} == {
        event_id: kind for event_id, (_, kind) in hostile.items()
    }
    done = [
        CompletionEvent.model_validate_json(line) for line in (workdir / "completions.jsonl").read_bytes().splitlines()
    ]
    outputs = {completion.id: completion.output for completion in done}
    assert sorted(outputs) == sorted(fine)
    assert len(set(outputs.values())) == 3  # the three clips keep apart
    written = {url.removeprefix(f"s3://{raw}/") for url in outputs.values()}
    assert all(key.startswith("anonymized/") for key in written)

    after = {raw: s3_listing(s3, raw), other: s3_listing(s3, other)}, local_listing(disk)
    assert after[1] == before[1]  # the disk: no file added, changed or removed, in the root or outside it
    assert after[0][other] == before[0][other]
    assert {key: etag for key, etag in after[0][raw].items() if key in before[0][raw]} == before[0][raw]
    assert set(after[0][raw]) - set(before[0][raw]) == written  # only the three video outputs are new


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    async with api_on_loopback(tmp_path, []) as opened:
        yield opened


@pytest.mark.parametrize("name", sorted(PLAYLISTS))
async def test_playlists_uploaded_to_the_api_are_refused_before_anything_is_demuxed(
    client: TestClient[Any, Any], name: str
) -> None:
    form = FormData()
    form.add_field("video", io.BytesIO(PLAYLISTS[name]), filename=name, content_type="application/octet-stream")
    form.add_field("configuration", json.dumps(builtin_configuration()).encode(), filename="user_configuration.json")
    response = await client.post("/anonymize_video/", data=form)
    assert response.status == 400
    answer = await response.json()
    assert answer["data"]["kind"] == "container_not_allowed", answer
    assert "secret" not in answer["error"]
