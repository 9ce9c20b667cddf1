"""Videos end to end: clips made here with PyAV (a real face photo moving over synthetic content, a sine tone)
go through the video path and come back with the same frames, timing, rotation and audio, the face hidden."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from processor.configuration import default_configuration
from processor.errors import InferenceUnavailable, VideoTooLong, VideoUndecodable
from processor.frames import BgrImage
from processor.inference.base import Localizer
from processor.inference.builtin.localizer import BuiltinLocalizer
from processor.settings import LimitsSettings, OutputSettings, Settings, VideoSettings
from processor.video import VideoProgress, VideoResult, anonymize_video, anonymize_video_file, anonymized_video
from tests.videos import Clip, ClipLocalizer, frame_index, write_audio_only, write_clip

CLIP = Clip()  # 48 frames, 640x360, 24 fps, a 110 px face sliding left to right
CONFIGURATION = default_configuration()  # faces and plates


@pytest.fixture(scope="module")
def clip_mp4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clips") / "clip.mp4"
    write_clip(path, CLIP)
    return path


@pytest.fixture
async def builtin() -> AsyncIterator[BuiltinLocalizer]:
    async with BuiltinLocalizer() as localizer:
        yield localizer


async def anonymize(
    src: Path, dst: Path, localizer: Localizer, video: VideoSettings | None = None, **options: object
) -> VideoResult:
    return await anonymize_video(
        src,
        dst,
        CONFIGURATION,
        localizer,
        video=video or VideoSettings(),
        output=OutputSettings(),
        limits=LimitsSettings(),
        **options,  # type: ignore[arg-type]
    )


def upright_frames(path: Path) -> list[BgrImage]:
    """Every frame of the video, turned upright by its display rotation."""
    with av.open(str(path)) as container:
        frames: list[BgrImage] = []
        for frame in container.decode(video=0):
            turns = round(frame.rotation / 90) % 4
            frames.append(np.ascontiguousarray(np.rot90(frame.to_ndarray(format="bgr24"), turns), np.uint8))
    return frames


def face_change(frame: BgrImage, clip: Clip, index: int) -> float:
    """Mean absolute difference between ``frame`` and the clip's original frame inside the face box."""
    x1, y1, x2, y2 = clip.face(index)
    return float(np.abs(frame[y1:y2, x1:x2].astype(np.int16) - clip.frame(index)[y1:y2, x1:x2]).mean())


def far_change(frame: BgrImage, clip: Clip, index: int) -> float:
    """The same, on a band of the frame away from the face (below the index marker)."""
    x1, _, x2, _ = clip.face(index)
    width = clip.size[0]
    band = slice(width - 60, width) if (x1 + x2) / 2 < width / 2 else slice(0, 60)
    original = clip.frame(index)[16:, band]
    return float(np.abs(frame[16:, band].astype(np.int16) - original).mean())


HIDDEN, UNCHANGED = 15.0, 8.0  # face_change above: hidden; far_change below: untouched (compression only)


def audio_packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as container:
        return [bytes(packet) for packet in container.demux(audio=0) if packet.size]


def stream_seconds(path: Path, kind: str) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.video[0] if kind == "video" else container.streams.audio[0]
        assert stream.duration is not None and stream.time_base is not None
        return float(stream.duration * stream.time_base)


async def test_the_face_is_hidden_in_every_frame_and_frames_rate_size_and_audio_are_kept(
    clip_mp4: Path, tmp_path: Path, builtin: BuiltinLocalizer
) -> None:
    out = tmp_path / "out.mp4"
    reports: list[VideoProgress] = []

    result = await anonymize(clip_mp4, out, builtin, progress=reports.append)

    frames = upright_frames(out)
    assert len(frames) == result.frames == CLIP.frames
    assert [frame_index(frame) for frame in frames] == list(range(CLIP.frames))  # in order
    assert all(change > HIDDEN for change in (face_change(frame, CLIP, i) for i, frame in enumerate(frames)))
    assert all(far_change(frame, CLIP, i) < UNCHANGED for i, frame in enumerate(frames))
    with av.open(str(out)) as container:
        video = container.streams.video[0]
        assert (video.codec_context.name, video.width, video.height) == ("h264", 640, 360)
        assert video.codec_context.pix_fmt == "yuv420p"
        assert video.average_rate == CLIP.fps
        assert [stream.codec_context.name for stream in container.streams.audio] == ["aac"]
    assert audio_packets(out) == audio_packets(clip_mp4)  # copied byte for byte
    assert abs(stream_seconds(out, "audio") - stream_seconds(clip_mp4, "audio")) < 1 / CLIP.fps
    assert abs(stream_seconds(out, "video") - stream_seconds(clip_mp4, "video")) < 1 / CLIP.fps
    assert result.counts["face"] >= CLIP.frames - 2 and result.frames_with["face"] >= CLIP.frames - 2
    assert result.audio == ["aac (copied)"] and result.frame_rate == CLIP.fps and result.container == "mp4"
    assert [r.frames_done for r in reports] == list(range(1, CLIP.frames + 1))
    assert {r.frames_total for r in reports} == {CLIP.frames}


async def test_frames_are_localized_several_at_once_and_written_in_order(clip_mp4: Path, tmp_path: Path) -> None:
    localizer = ClipLocalizer(CLIP, delay_s=lambda index: 0.02 * (3 - index % 4))  # later frames answer first
    video = VideoSettings(frames_in_flight=4, smoothing_frames=0)

    await anonymize(clip_mp4, tmp_path / "out.mp4", localizer, video=video)

    assert localizer.peak == 4 * len(CONFIGURATION.sensitive_info)  # 4 frames, every entry at once
    frames = upright_frames(tmp_path / "out.mp4")
    assert [frame_index(frame) for frame in frames] == list(range(CLIP.frames))
    assert all(face_change(frame, CLIP, i) > HIDDEN for i, frame in enumerate(frames))


async def test_frames_carry_a_jpeg_copy_only_when_a_localizer_may_upload_it(clip_mp4: Path, tmp_path: Path) -> None:
    unknown = ClipLocalizer(CLIP)  # not the built-in models: it might upload Frame.encoded, as HTTP clients do
    await anonymize(clip_mp4, tmp_path / "a.mp4", unknown)
    told = ClipLocalizer(CLIP)
    await anonymize(clip_mp4, tmp_path / "b.mp4", told, upload_jpeg=False)

    assert min(unknown.uploads) > 10_000
    assert told.uploads == {0}
    assert ClipLocalizer(CLIP).needs_encoded_frames(CONFIGURATION.sensitive_info)
    async with BuiltinLocalizer() as builtin:
        assert not builtin.needs_encoded_frames(CONFIGURATION.sensitive_info)


async def test_smoothing_hides_a_face_in_the_frames_the_detector_missed(clip_mp4: Path, tmp_path: Path) -> None:
    missed = {5, 6, 20, 33, 47}

    smoothed = await anonymize(clip_mp4, tmp_path / "smoothed.mp4", ClipLocalizer(CLIP, miss=missed))
    unsmoothed = await anonymize(
        clip_mp4, tmp_path / "raw.mp4", ClipLocalizer(CLIP, miss=missed), video=VideoSettings(smoothing_frames=0)
    )

    frames = upright_frames(tmp_path / "smoothed.mp4")
    assert all(face_change(frame, CLIP, i) > HIDDEN for i, frame in enumerate(frames))
    assert smoothed.counts["face"] == CLIP.frames - len(missed)
    assert smoothed.smoothed["face"] >= len(missed)
    leaked = [i for i, frame in enumerate(upright_frames(tmp_path / "raw.mp4")) if face_change(frame, CLIP, i) < HIDDEN]
    assert leaked == sorted(missed)  # what smoothing prevents
    assert unsmoothed.smoothed["face"] == 0


async def test_a_variable_frame_rate_keeps_every_timestamp(tmp_path: Path) -> None:
    clip = Clip(frames=30)
    steps = [40 if i % 3 else 120 for i in range(clip.frames)]  # ms: 25 fps with a stall every third frame
    pts = [sum(steps[:i]) for i in range(clip.frames)]
    write_clip(tmp_path / "vfr.mp4", clip, pts=pts, time_base=Fraction(1, 1000))

    await anonymize(tmp_path / "vfr.mp4", tmp_path / "out.mp4", ClipLocalizer(clip))

    def times(path: Path) -> list[float]:
        with av.open(str(path)) as container:
            return [round(float(frame.time), 3) for frame in container.decode(video=0)]

    assert times(tmp_path / "out.mp4") == times(tmp_path / "vfr.mp4") == [p / 1000 for p in pts]


async def test_rotation_is_kept_and_detectors_see_upright_frames(tmp_path: Path) -> None:
    clip = Clip(frames=12)
    write_clip(tmp_path / "portrait.mp4", clip, rotation=90)
    localizer = ClipLocalizer(clip)

    result = await anonymize(tmp_path / "portrait.mp4", tmp_path / "out.mov", localizer)

    assert localizer.shapes == {(360, 640, 3)}  # stored 360 wide and 640 high, upright for the detector
    assert sorted(localizer.seen) == sorted(list(range(12)) * 2)  # the index marker read upright, every frame
    with av.open(str(tmp_path / "out.mov")) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (360, 640)
        assert next(container.decode(video=0)).rotation == 90
    frames = upright_frames(tmp_path / "out.mov")
    assert all(face_change(frame, clip, i) > HIDDEN for i, frame in enumerate(frames))
    assert all(far_change(frame, clip, i) < UNCHANGED for i, frame in enumerate(frames))
    assert (result.rotation, result.width, result.height, result.container) == (90, 360, 640, "mov")


async def test_a_video_without_audio_works(tmp_path: Path) -> None:
    clip = Clip(frames=10)
    write_clip(tmp_path / "silent.mkv", clip, audio=None)

    result = await anonymize(tmp_path / "silent.mkv", tmp_path / "out.mkv", ClipLocalizer(clip))

    assert result.frames == 10 and result.audio == []
    with av.open(str(tmp_path / "out.mkv")) as container:
        assert not container.streams.audio
        assert sum(1 for _ in container.decode(video=0)) == 10


async def test_audio_longer_than_the_video_is_copied_whole(tmp_path: Path) -> None:
    clip = Clip(frames=12)  # half a second of video, 20 s of sound
    write_clip(tmp_path / "talk.mp4", clip, audio_seconds=20.0)

    await anonymize(tmp_path / "talk.mp4", tmp_path / "out.mp4", ClipLocalizer(clip))

    assert audio_packets(tmp_path / "out.mp4") == audio_packets(tmp_path / "talk.mp4")
    assert abs(stream_seconds(tmp_path / "out.mp4", "audio") - 20.0) < 0.05
    assert len(upright_frames(tmp_path / "out.mp4")) == 12


async def test_audio_the_container_cannot_hold_is_reencoded_as_aac(tmp_path: Path) -> None:
    clip = Clip(frames=24)
    write_clip(tmp_path / "camera.mov", clip, audio="pcm_mulaw")  # G.711, as IP cameras record it

    result = await anonymize(tmp_path / "camera.mov", tmp_path / "out.mp4", ClipLocalizer(clip))

    assert result.audio == ["pcm_mulaw re-encoded as aac (not allowed in mp4)"]
    with av.open(str(tmp_path / "out.mp4")) as container:
        assert container.streams.audio[0].codec_context.name == "aac"
    assert abs(stream_seconds(tmp_path / "out.mp4", "audio") - clip.frames / clip.fps) < 0.05


def listing(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir()) if folder.exists() else []


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def test_memory_stays_flat_on_a_long_video(tmp_path: Path) -> None:
    clip = Clip(frames=3000, size=(160, 120), face_height=40)  # 2 minutes; 165 MB of BGR frames if all were kept
    write_clip(tmp_path / "long.mp4", clip)
    localizer = ClipLocalizer(clip)
    samples: dict[int, int] = {}

    def sample(state: VideoProgress) -> None:
        if state.frames_done % 100 == 0:
            samples[state.frames_done] = rss_bytes()

    video = VideoSettings(preset="ultrafast", frames_in_flight=4)
    result = await anonymize(tmp_path / "long.mp4", tmp_path / "out.mp4", localizer, video=video, progress=sample)

    assert result.frames == 3000
    growth = max(samples.values()) - samples[500]
    assert growth < 20 * 2**20, f"RSS grew by {growth / 2**20:.1f} MB from frame 500 to the end"
    assert localizer.peak <= 4 * len(CONFIGURATION.sensitive_info)


def text_file(path: Path) -> None:
    path.write_text("just some words, no video here\n")


def empty_file(path: Path) -> None:
    path.write_bytes(b"")


def jpeg_image(path: Path) -> None:
    cv2.imwrite(str(path), CLIP.frame(0))


def audio_only(path: Path) -> None:
    write_audio_only(path)


def truncated_index(path: Path) -> None:
    """An MP4 cut in half whose index (moov) was at the end: nothing says where the frames are."""
    write_clip(path, Clip(frames=24))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def truncated_frames(path: Path) -> None:
    """An MP4 cut in half with its index at the front: the index promises frames the file no longer holds."""
    write_clip(path, Clip(frames=24), fast_start=True)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def truncated_matroska(path: Path) -> None:
    """A Matroska file cut at 70 %: it has no index to contradict, only its per-stream DURATION tag."""
    write_clip(path, Clip(frames=48))
    path.write_bytes(path.read_bytes()[: path.stat().st_size * 7 // 10])


def unknown_codec(path: Path) -> None:
    """A Matroska file whose video codec id names no codec ffmpeg knows."""
    write_clip(path.with_suffix(".tmp.mkv"), Clip(frames=6))
    data = path.with_suffix(".tmp.mkv").read_bytes()
    assert b"V_MPEG4/ISO/AVC" in data
    path.write_bytes(data.replace(b"V_MPEG4/ISO/AVC", b"V_MPEG4/ISO/XYZ"))


@pytest.mark.parametrize(
    ("name", "make", "message"),
    [
        ("notes.mp4", text_file, "not a readable video (31 bytes; not a video, or truncated)"),
        ("empty.mp4", empty_file, "not a readable video (an empty file"),
        ("photo.jpg", jpeg_image, "an image (jpeg), not a video"),  # ffmpeg's image demuxers are not allowed
        ("song.m4a", audio_only, "no video stream (streams: audio (aac))"),
        ("cut.mp4", truncated_index, "not a readable video"),
        ("cut-faststart.mp4", truncated_frames, "truncated or corrupt: an incomplete video packet"),
        ("cut.mkv", truncated_matroska, "truncated: the video stops at 1.33 s of the 2.00 s its header states"),
        ("odd.mkv", unknown_codec, "unsupported video codec"),
    ],
)
async def test_bad_input_is_refused_with_a_clear_message_and_leaves_no_output(
    tmp_path: Path, name: str, make: object, message: str
) -> None:
    source, out = tmp_path / "in" / name, tmp_path / "out" / "video.mp4"
    source.parent.mkdir()
    make(source)  # type: ignore[operator]

    with pytest.raises(VideoUndecodable) as failure:
        await anonymize(source, out, ClipLocalizer(CLIP))

    assert message in str(failure.value)
    assert str(failure.value).startswith(name)
    assert listing(out.parent) == []


async def test_a_failing_localizer_fails_the_video_and_leaves_no_output(clip_mp4: Path, tmp_path: Path) -> None:
    strict = VideoSettings(max_bad_frame_ratio=0)  # no frame may be blackened
    with pytest.raises(InferenceUnavailable, match="frame 20 fails"):
        await anonymize(clip_mp4, tmp_path / "out.mp4", ClipLocalizer(CLIP, fail_at={20}), video=strict)
    assert listing(tmp_path) == []


async def test_a_frame_a_detector_fails_on_is_written_black_and_counted(clip_mp4: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"

    result = await anonymize(clip_mp4, out, ClipLocalizer(CLIP, fail_at={20, 21}))

    frames = upright_frames(out)
    assert (result.frames, result.frames_blackened, result.frames_dropped) == (CLIP.frames, 2, 0)
    assert [i for i, frame in enumerate(frames) if frame.mean() < 3] == [20, 21]
    assert all(face_change(frame, CLIP, i) > HIDDEN for i, frame in enumerate(frames))


@pytest.mark.parametrize("failing", [range(CLIP.frames), range(10, 16)], ids=["every frame", "more than 10 %"])
async def test_a_detector_failing_on_too_many_frames_fails_the_video(
    clip_mp4: Path, tmp_path: Path, failing: range
) -> None:
    with pytest.raises(InferenceUnavailable, match="fails"):
        await anonymize(clip_mp4, tmp_path / "out.mp4", ClipLocalizer(CLIP, fail_at=failing))
    with pytest.raises(InferenceUnavailable, match="fails"):  # whatever the ratio allows, all bad is a failure
        await anonymize(
            clip_mp4,
            tmp_path / "out.mp4",
            ClipLocalizer(CLIP, fail_at=range(CLIP.frames)),
            video=VideoSettings(max_bad_frame_ratio=1),
        )
    assert listing(tmp_path) == []


CORRUPT = range(20, 23)  # packets overwritten in the middle of the file


def corrupt_clip(path: Path, clip: Clip) -> list[int]:
    """``clip`` (a keyframe every 12 frames) with the packets of frames CORRUPT overwritten with noise, in place;
    the indexes of its keyframes."""
    write_clip(path, clip, audio=None, fast_start=True, gop_size=12)
    with av.open(str(path)) as container:
        packets = [(p.pos, p.size, p.is_keyframe) for p in container.demux(video=0) if p.size]
    data = bytearray(path.read_bytes())
    noise = np.random.default_rng(7)
    for index in CORRUPT:
        position, size, _ = packets[index]
        start, length = position + size // 8, size - size // 8
        data[start : start + length] = noise.integers(0, 256, length, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    return [index for index, (_, _, key) in enumerate(packets) if key]


async def test_a_corrupt_stretch_is_blackened_or_dropped_never_written_in_the_clear(tmp_path: Path) -> None:
    clip = Clip(frames=60)
    source, out = tmp_path / "corrupt.mp4", tmp_path / "out.mp4"
    keyframes = corrupt_clip(source, clip)
    next_keyframe = min(k for k in keyframes if k > CORRUPT[-1])

    result = await anonymize(source, out, ClipLocalizer(clip))

    written = written_frames(out, clip.fps)
    black = [index for index, pixels in written if pixels.mean() < 3]
    shown = {index for index, _ in written}
    assert result.frames == len(written) and result.frames + result.frames_dropped == clip.frames
    assert result.frames_dropped >= len(CORRUPT) and not shown & set(CORRUPT)  # no picture: nothing written
    assert result.frames_blackened == len(black) > 0
    assert set(black) <= set(range(CORRUPT[0], next_keyframe))  # from the broken packets to the next keyframe
    assert sorted(shown - set(black)) == [i for i in range(clip.frames) if not CORRUPT[0] <= i < next_keyframe]
    assert all(face_change(pixels, clip, index) > HIDDEN for index, pixels in written)  # no face in the clear


async def test_a_video_with_more_corrupt_frames_than_allowed_fails_as_undecodable(tmp_path: Path) -> None:
    clip = Clip(frames=60)
    source = tmp_path / "corrupt.mp4"
    corrupt_clip(source, clip)
    strict = VideoSettings(max_bad_frame_ratio=0.05)  # 3 frames of 60

    with pytest.raises(VideoUndecodable, match=r"of 60 frames cannot be processed .*\(video.max_bad_frame_ratio\)"):
        await anonymize(source, tmp_path / "out.mp4", ClipLocalizer(clip), video=strict)
    assert not (tmp_path / "out.mp4").exists()


async def test_the_api_entry_refuses_videos_above_the_duration_limit(clip_mp4: Path, tmp_path: Path) -> None:
    settings = Settings(video=VideoSettings(max_duration_s=1.5))

    with pytest.raises(VideoTooLong, match=r"lasts 2 s, above the limit of 2 s \(video.max_duration_s\)"):
        await anonymize_video_file(clip_mp4, tmp_path / "out.mp4", CONFIGURATION, ClipLocalizer(CLIP), settings)
    assert listing(tmp_path) == []

    result = await anonymize_video_file(
        clip_mp4, tmp_path / "out.mp4", CONFIGURATION, ClipLocalizer(CLIP), Settings(video=VideoSettings())
    )
    assert result.frames == CLIP.frames


async def test_the_stream_entry_takes_bytes_and_gives_a_temporary_file_in_the_source_container(
    clip_mp4: Path,
) -> None:
    data = await asyncio.to_thread(clip_mp4.read_bytes)

    async with anonymized_video(data, "camera-7/clip.MOV", CONFIGURATION, ClipLocalizer(CLIP), Settings()) as video:
        assert video.path.suffix == ".mov" and video.content_type == "video/quicktime"
        assert video.result.frames == CLIP.frames
        assert video.result.frame_result().counts == {"face": CLIP.frames, "license_plate": 0}
        assert listing(video.path.parent) == [video.path.name]
        folder = video.path.parent
    assert not await asyncio.to_thread(folder.exists)

    async with anonymized_video(data, "clip.avi", CONFIGURATION, ClipLocalizer(CLIP), Settings()) as video:
        assert (video.path.suffix, video.content_type) == (".mp4", "video/mp4")


async def test_cancelling_stops_cleanly_and_leaves_no_output(clip_mp4: Path, tmp_path: Path) -> None:
    halfway = asyncio.Event()

    def progress(state: VideoProgress) -> None:
        if state.frames_done == CLIP.frames // 2:
            halfway.set()

    localizer = ClipLocalizer(CLIP, delay_s=lambda index: 0.01)
    job = asyncio.create_task(anonymize(clip_mp4, tmp_path / "out.mp4", localizer, progress=progress))
    await halfway.wait()

    job.cancel()

    with pytest.raises(asyncio.CancelledError):
        await job
    assert listing(tmp_path) == []


def test_the_command_line_prints_a_summary_and_fails_clearly(tmp_path: Path) -> None:
    write_clip(tmp_path / "clip.mp4", Clip(frames=12))
    anonymizer = [sys.executable, "-m", "processor", "video"]
    done = subprocess.run(
        [*anonymizer, str(tmp_path / "clip.mp4"), str(tmp_path / "out.mp4"), "--crf", "28", "--preset", "ultrafast"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "12/12" in done.stderr  # the progress bar
    assert "anonymized 12 frames (0.5 s)" in done.stderr and "audio: aac (copied)" in done.stderr
    assert "12 face" in done.stderr
    assert (tmp_path / "out.mp4").stat().st_size > 10_000

    (tmp_path / "notes.txt").write_text("hello")
    done = subprocess.run(
        [*anonymizer, str(tmp_path / "notes.txt"), str(tmp_path / "x.mp4"), "--no-progress"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert "video_undecodable: notes.txt: not a readable video" in done.stderr


async def test_kept_container_metadata_carries_no_picture(tmp_path: Path) -> None:
    """A picture tag (Vorbis-style METADATA_BLOCK_PICTURE, cover art) would show the clear first frame: dropped,
    like any tag long enough to be a blob; the plain tags stay."""
    frame_jpeg = base64.b64encode(cv2.imencode(".jpg", CLIP.frame(0))[1].tobytes()).decode()
    tags = {
        "title": "drive 12",
        "location": "+48.1371+011.5754/",
        "METADATA_BLOCK_PICTURE": frame_jpeg,
        "cover_art": frame_jpeg[:500],
        "comment": "x" * 5000,
    }
    source = tmp_path / "tagged.mkv"
    write_clip(source, CLIP, audio=None, tags=tags)
    with av.open(str(source)) as written:
        assert {name.lower() for name in written.metadata} >= {"title", "metadata_block_picture", "comment"}
    target = tmp_path / "out.mkv"
    settings = Settings(output=OutputSettings(keep_metadata=True))
    await anonymize_video_file(source, target, CONFIGURATION, ClipLocalizer(CLIP), settings)
    with av.open(str(target)) as output:
        kept = {name.lower(): value for name, value in output.metadata.items()}
    assert kept["title"] == "drive 12" and kept["location"] == "+48.1371+011.5754/"
    assert not {"metadata_block_picture", "cover_art", "comment"} & set(kept)
    assert all(len(value) <= 1024 for value in kept.values())


SLOW = Clip(frames=64, size=(400, 360))  # the head: 4 px per frame, 0.3 of its width in 6 frames
FACES_PLATES_PERSONS = default_configuration(persons=True)


@pytest.fixture(scope="module")
def slow_mp4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clips") / "slow.mp4"
    write_clip(path, SLOW, audio=None)
    return path


def keyframes_of(localizer: ClipLocalizer, label: str = "face") -> list[int]:
    return sorted({index for index, called in localizer.calls if called == label})


def hidden_everywhere(path: Path, clip: Clip) -> bool:
    return all(face_change(frame, clip, i) > HIDDEN for i, frame in enumerate(upright_frames(path)))


async def test_detecting_every_nth_frame_tracks_the_face_in_between(slow_mp4: Path, tmp_path: Path) -> None:
    localizer = ClipLocalizer(SLOW)
    out = tmp_path / "out.mp4"

    result = await anonymize(slow_mp4, out, localizer, video=VideoSettings(detect_every=6))

    assert keyframes_of(localizer) == list(range(0, SLOW.frames, 6))  # agreeing keyframes: nothing in between
    assert hidden_everywhere(out, SLOW)
    assert all(far_change(frame, SLOW, i) < UNCHANGED for i, frame in enumerate(upright_frames(out)))
    assert (result.keyframes, result.frames_tracked) == (11, SLOW.frames - 11)
    assert result.frames_detected == {"face": 11, "license_plate": 11}
    assert result.counts["face"] == 11 and result.smoothed["face"] == SLOW.frames - 11


async def test_fast_motion_between_keyframes_gets_the_frames_between_detected(clip_mp4: Path, tmp_path: Path) -> None:
    localizer = ClipLocalizer(CLIP)  # 10.6 px per frame: 64 px in 6 frames, more than half the face's size

    result = await anonymize(clip_mp4, tmp_path / "out.mp4", localizer, video=VideoSettings(detect_every=6))

    detected = keyframes_of(localizer)
    assert set(range(0, CLIP.frames, 6)) < set(detected)
    assert {3, 9} <= set(detected) and len(detected) < CLIP.frames
    assert result.keyframes == len(detected) and result.keyframes + result.frames_tracked == CLIP.frames
    assert hidden_everywhere(tmp_path / "out.mp4", CLIP)


class CutClip(Clip):
    """A clip whose picture below the index marker is inverted from frame ``cut`` on: a new scene."""

    cut = 29

    def frame(self, index: int) -> BgrImage:
        pixels = super().frame(index)
        if index >= self.cut:
            pixels[8:] = 255 - pixels[8:]
        return pixels


async def test_a_scene_cut_is_detected_on_both_sides(tmp_path: Path) -> None:
    clip = CutClip(frames=64, size=(400, 360))
    write_clip(tmp_path / "cut.mp4", clip, audio=None)
    localizer = ClipLocalizer(clip)

    await anonymize(tmp_path / "cut.mp4", tmp_path / "out.mp4", localizer, video=VideoSettings(detect_every=6))

    detected = keyframes_of(localizer)
    assert detected == [0, 6, 12, 18, 24, 28, 29, 35, 41, 47, 53, 59]
    assert hidden_everywhere(tmp_path / "out.mp4", clip)


async def test_masks_and_untracked_labels_are_detected_on_every_frame(slow_mp4: Path, tmp_path: Path) -> None:
    localizer = ClipLocalizer(SLOW)
    video = VideoSettings(detect_every=6, smoothing_labels=frozenset({"face"}))

    result = await anonymize_video(
        slow_mp4,
        tmp_path / "out.mp4",
        FACES_PLATES_PERSONS,
        localizer,
        video=video,
        output=OutputSettings(),
        limits=LimitsSettings(),
    )

    assert keyframes_of(localizer) == list(range(0, SLOW.frames, 6))
    assert keyframes_of(localizer, "license_plate") == keyframes_of(localizer, "person") == list(range(SLOW.frames))
    assert result.frames_detected == {"face": 11, "license_plate": SLOW.frames, "person": SLOW.frames}


async def test_a_keyframe_the_detector_missed_is_filled_from_the_track(slow_mp4: Path, tmp_path: Path) -> None:
    localizer = ClipLocalizer(SLOW, miss={12})

    result = await anonymize(slow_mp4, tmp_path / "out.mp4", localizer, video=VideoSettings(detect_every=6))

    assert keyframes_of(localizer) == list(range(0, SLOW.frames, 6))
    assert hidden_everywhere(tmp_path / "out.mp4", SLOW)  # frames 7 … 17 from the detections at 6 and 18
    assert result.counts["face"] == 10 and result.smoothed["face"] == SLOW.frames - 10


async def test_a_keyframe_a_detector_fails_on_is_blackened_and_its_neighbours_hidden(
    slow_mp4: Path, tmp_path: Path
) -> None:
    localizer = ClipLocalizer(SLOW, fail_at={12})

    result = await anonymize(slow_mp4, tmp_path / "out.mp4", localizer, video=VideoSettings(detect_every=6))

    frames = upright_frames(tmp_path / "out.mp4")
    assert [i for i, frame in enumerate(frames) if frame.mean() < 3] == [12]
    assert result.frames_blackened == 1
    assert hidden_everywhere(tmp_path / "out.mp4", SLOW)


async def test_a_corrupt_stretch_between_keyframes_is_blackened_and_the_rest_hidden(tmp_path: Path) -> None:
    clip = Clip(frames=60, size=(400, 360))
    source, out = tmp_path / "corrupt.mp4", tmp_path / "out.mp4"
    corrupt_clip(source, clip)
    localizer = ClipLocalizer(clip)

    result = await anonymize(source, out, localizer, video=VideoSettings(detect_every=6))

    written = written_frames(out, clip.fps)
    black = [index for index, pixels in written if pixels.mean() < 3]
    assert result.frames_blackened == len(black) > 0 and result.frames == len(written)
    assert not set(black) & set(keyframes_of(localizer))  # damaged frames are never detected
    assert max(black) + 1 in keyframes_of(localizer)  # the frame after a damaged stretch is a keyframe
    assert all(face_change(pixels, clip, index) > HIDDEN for index, pixels in written)


def written_frames(path: Path, fps: float) -> list[tuple[int, BgrImage]]:
    """The frames of the video at ``path`` as (source frame index from its timestamp, BGR pixels)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.time_base is not None
        return [
            (round(float(frame.pts * stream.time_base) * fps), frame.to_ndarray(format="bgr24"))
            for frame in container.decode(stream)
            if frame.pts is not None
        ]
