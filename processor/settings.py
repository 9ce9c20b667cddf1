"""The one settings root: every knob of the service, read from ``ANONYMIZER_*`` env vars and/or a file.

Nested sections use ``__``: ``ANONYMIZER_KAFKA__BOOTSTRAP_SERVERS=broker:9092``. Only ``cli.py`` builds
:class:`Settings` from the environment; every other part receives its own section. An optional setting is set
to None with the value ``none`` (``ANONYMIZER_VIDEO__MAX_DURATION_S=none``); list and dict settings take JSON
(``ANONYMIZER_STORAGE__SCHEMES='["s3", "file"]'``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal, get_origin

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    SecretStr,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from processor.inference.builtin.catalog import CATALOG

_section = ConfigDict(frozen=True, extra="forbid")


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


class LimitsSettings(BaseModel):
    model_config = _section

    max_pixels: int = Field(default=100_000_000, gt=0, description="refuse images with more pixels (bombs)")
    max_pixels_in_flight: int | None = Field(
        default=200_000_000,
        gt=0,
        description="decoded pixels held at once across a process's frames (3 bytes each); frames of up to an "
        "eighth of it never wait behind larger ones; None = no limit",
    )
    max_object_bytes: int = Field(default=200 * 1024 * 1024, gt=0, description="refuse larger source objects")


class OutputSettings(BaseModel):
    """How anonymized images are written."""

    model_config = _section

    jpeg_quality: int = Field(default=95, ge=1, le=100, description="JPEG/WebP output quality")
    keep_metadata: bool = Field(default=False, description="keep EXIF (GPS included); stripped by default")
    box_scale: dict[str, float] = Field(
        default_factory=lambda: {"face": 2.2},
        description="grow boxes of these labels about their centre (faces: a detector's face box x2.2 covers the head)",
    )
    ellipse_labels: frozenset[str] = Field(
        default=frozenset({"face"}), description="labels hidden as an ellipse inscribed in the box"
    )
    min_score: dict[str, Annotated[float, Field(ge=0.0, le=1.0)]] = Field(
        default_factory=dict,
        description="per label: hide boxes only from this score on (raising it hides less); JSON for the variable",
    )
    draw_regions: bool = Field(
        default=False, description="preview: also draw each found box with its label and score on the output"
    )


_FORMAT_DEFAULTS: dict[str, dict[str, object]] = {
    "yolo": {"resize": "letterbox", "scale": 1 / 255, "mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0)},
    "ssd": {"resize": "stretch", "scale": 1 / 255, "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)},
}
"""What each format's exports usually expect: Ultralytics YOLO letterboxes to 0..1 RGB; SSD exports (torchvision,
the ONNX model zoo) stretch and normalise with ImageNet's mean and deviation."""


class CustomModelSettings(BaseModel):
    """A user-supplied ONNX detector, one entry of ``builtin.custom_models``; checked (file, shapes) at start.

    The network gets ``((pixel * scale) - mean) / std`` per channel, NCHW float32, in ``channels`` order.
    """

    model_config = _section

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="the model name entries and /models use")
    path: Path = Field(description="the .onnx file")
    format: Literal["yolo", "ssd"] = Field(
        description="yolo: one output (1, 4+C, N) (v8/v11) or (1, N, 5+C) (v5, objectness), boxes cx,cy,w,h in "
        "input pixels; ssd: boxes (1, N, 4) x1,y1,x2,y2 0..1 + scores (1, N, C), or one (1, 1, N, 7) DetectionOutput"
    )
    input_size: tuple[Annotated[int, Field(ge=8)], Annotated[int, Field(ge=8)]] = Field(
        description="network input width, height"
    )
    labels: dict[Annotated[int, Field(ge=0)], Annotated[str, Field(min_length=1)]] = Field(
        min_length=1, description="class index -> label (face, license_plate, ... or any); other classes ignored"
    )
    resize: Literal["letterbox", "stretch"] | None = Field(default=None, description="None: the format's usual")
    score_threshold: float | dict[str, float] = Field(default=0.35, description="one, or per label (every label)")
    iou_threshold: float = Field(default=0.45, gt=0.0, le=1.0, description="NMS per class")
    tile: int | None = Field(
        default=None, ge=32, description="also run on tiles of this side (20% overlap) of larger frames"
    )
    channels: Literal["RGB", "BGR"] = "RGB"
    scale: float | None = Field(default=None, gt=0.0, description="None: the format's usual (1/255)")
    mean: tuple[float, float, float] | None = None
    std: (
        tuple[Annotated[float, Field(gt=0.0)], Annotated[float, Field(gt=0.0)], Annotated[float, Field(gt=0.0)]] | None
    ) = None

    @model_validator(mode="before")
    @classmethod
    def _format_defaults(cls, data: object) -> object:
        if isinstance(data, dict) and data.get("format") in _FORMAT_DEFAULTS:
            defaults = _FORMAT_DEFAULTS[data["format"]]
            return {**data, **{key: value for key, value in defaults.items() if data.get(key) is None}}
        return data

    @model_validator(mode="after")
    def _fits(self) -> CustomModelSettings:
        thresholds = self.score_threshold if isinstance(self.score_threshold, dict) else {}
        values = [*thresholds.values()] if thresholds else [self.score_threshold]
        if any(not 0.0 < float(value) <= 1.0 for value in values):  # type: ignore[arg-type]
            raise ValueError("score_threshold: every threshold is in (0, 1]")
        if thresholds and (missing := sorted(set(self.labels.values()) - set(thresholds))):
            raise ValueError(f"score_threshold has no threshold for label(s) {', '.join(missing)}")
        if not self.path.is_file():
            raise ValueError(f"path: no file {str(self.path)!r} (from {Path.cwd()})")
        from processor.inference.builtin.custom import shape_problem  # late: it imports this module

        if problem := shape_problem(self):
            raise ValueError(f"model {self.name!r} ({self.path}): {problem}")
        return self

    def threshold(self, label: str) -> float:
        """The minimum score of ``label``."""
        if isinstance(self.score_threshold, dict):
            return self.score_threshold[label]
        return self.score_threshold


def _known_providers(names: tuple[str, ...]) -> tuple[str, ...]:
    if names:
        import onnxruntime  # only when providers are set: importing it costs ~0.3 s

        known = onnxruntime.get_all_providers()
        if unknown := [name for name in names if name not in known]:
            raise ValueError(
                f"unknown onnxruntime execution provider(s) {', '.join(unknown)}; known: {', '.join(known)}"
            )
    return names


DETECTOR_PRESETS: dict[str, dict[str, object]] = {
    "fast": {
        "face_max_side": 960,
        "face_head_crops": False,
        "plate_whole_frame": False,
        "nanodet_stage_tile": None,
        "nanodet_tiling": False,
    },
    "balanced": {},
    "thorough": {"face_max_side": 1920, "nanodet_stage_tile": 960, "plate_crop_side": 800},
}
"""The built-in detectors' settings each preset changes from the defaults (``balanced`` is the defaults); a setting
given explicitly wins over its preset. Recall and cost of each, measured: README, "Detection quality"."""


class BuiltinSettings(BaseModel):
    """The bundled detectors (no external service needed)."""

    model_config = _section

    preset: Literal["fast", "balanced", "thorough"] = Field(
        default="balanced",
        description="fast: CenterFace at 960 px, no head crops, NanoDet on whole frames only, plates of its "
        "vehicles only; thorough: CenterFace at 1920 px, NanoDet's stage tiles 960 px, vehicles read at 800 px; "
        "settings given explicitly win",
    )
    face_max_side: int = Field(
        default=1440, ge=64, description="long side CenterFace sees, px (1440: faces of ~15 px in a 1080p frame)"
    )
    face_threshold: float = Field(
        default=0.2, gt=0.0, lt=1.0, description="960 px at 0.2 finds the faces 1280 px at 0.5 finds, at half the cost"
    )
    face_head_crops: bool = Field(
        default=True,
        description="also look for faces in upscaled head crops of the far persons NanoDet finds (far faces)",
    )
    onnx_threads: int = Field(default=1, ge=1, description="onnxruntime intra-op threads per inference")
    plate_downscale: float = Field(default=0.5, gt=0.0, le=1.0, description="the plate cascade sees the frame x this")
    plate_scale_factor: float = Field(
        default=1.1, gt=1.0, le=2.0, description="the cascade's step between window sizes; 1.2: 35% faster, misses"
    )
    plate_vehicles: bool = Field(
        default=True, description="the plate reader reads each vehicle NanoDet finds, upscaled (finds far plates)"
    )
    nanodet_stage_tile: int | None = Field(
        default=1080,
        ge=64,
        description="the vehicles the plate reader reads and the persons whose heads are searched for far faces "
        "are found by NanoDet in the whole frame and in tiles of this side, px (1080: 3 runs at 1080p); None = "
        "the whole frame only",
    )
    plate_crop_side: int = Field(
        default=640,
        ge=64,
        description="the plate reader reads each vehicle scaled to this long side, px (at most x8; 800: more "
        "plates of near cars, ~1.5x the cost)",
    )
    plate_whole_frame: bool = Field(
        default=True, description="the plate reader also reads the whole frame (plates of vehicles NanoDet misses)"
    )
    nanodet_tiling: bool = Field(
        default=True, description="NanoDet also sees 640 px tiles: finds far persons, ~8x the cost at 1080p"
    )
    workers: int = Field(default=2, ge=1, description="threads running built-in models at once")
    onnx_providers: Annotated[tuple[str, ...], AfterValidator(_known_providers)] = Field(
        default=(),
        description='JSON list, e.g. ["CUDAExecutionProvider"]: tried in order for every ONNX model, the ones this '
        "machine lacks skipped (one warning), CPU always last",
    )
    custom_models: tuple[CustomModelSettings, ...] = Field(
        default=(), description="JSON list of your own ONNX detectors (see Bring your own model)"
    )

    @model_validator(mode="after")
    def _apply_preset(self) -> BuiltinSettings:
        """The preset's values for the settings not given explicitly (they stay out of ``model_fields_set``, so a
        copy validated from ``model_dump(exclude_unset=True)`` with another preset takes that preset's)."""
        for name, value in DETECTOR_PRESETS[self.preset].items():
            if name not in self.model_fields_set:
                object.__setattr__(self, name, value)  # frozen model: set once, during validation
        return self

    @model_validator(mode="after")
    def _plates_read_somewhere(self) -> BuiltinSettings:
        if not (self.plate_vehicles or self.plate_whole_frame):
            raise ValueError("plate_vehicles and plate_whole_frame are both off: the plate reader would read nothing")
        return self

    @model_validator(mode="after")
    def _custom_names_unique(self) -> BuiltinSettings:
        names = [model.name for model in self.custom_models]
        if taken := sorted({name for name in names if name in CATALOG or names.count(name) > 1}):
            raise ValueError(f"custom_models: name(s) {', '.join(taken)} taken (bundled model or twice)")
        return self


class InferenceSettings(BaseModel):
    """HTTP inference services (the original detection/segmentation APIs)."""

    model_config = _section

    url_configuration: Path = Field(
        default=Path("jsonFiles/url_configuration.json"), description="the URL registry file; missing = builtin only"
    )
    url_registry_read_only: bool = Field(
        default=False,
        description="serve: /set_url, /remove_url, /remove_all_urls answer 409 (the file is managed elsewhere)",
    )
    per_url_concurrency: int = Field(default=8, ge=1, description="requests in flight per inference URL")
    total_concurrency: int = Field(default=64, ge=1, description="requests in flight over all URLs")
    timeout_s: float = Field(default=30.0, gt=0, description="one inference request")
    max_answer_bytes: int = Field(
        default=64 * 1024 * 1024, gt=0, description="a longer inference answer is refused (read no further)"
    )
    connect_timeout_s: float = Field(default=5.0, gt=0, description="one connection; also the start-up wait")
    max_attempts: int = Field(default=3, ge=1, description="tries of a request (5xx, timeouts, refused), per event try")
    backoff_base_s: float = Field(default=0.2, gt=0, description="first retry backoff (doubling, jittered)")
    backoff_max_s: float = Field(default=5.0, gt=0, description="backoff cap")
    unhealthy_after_failures: int = Field(default=5, ge=1, description="failures in a row that mark a URL unhealthy")
    probe_interval_s: float = Field(default=10.0, gt=0, description="an unhealthy URL is tried again after this")
    refresh_interval_s: float = Field(default=60.0, gt=0, description="capabilities rediscovery period")
    remote_builtin_models: bool = Field(
        default=False,
        description="entries without url may go to a registered URL serving a built-in model's name (centerface …)",
    )
    allowed_hosts: tuple[str, ...] = Field(
        default=(), description='JSON list of host names that may resolve to private addresses, e.g. ["inference"]'
    )
    allowed_networks: tuple[IPvAnyNetwork, ...] = Field(
        default=(), description='JSON list of networks reachable although not public, e.g. ["127.0.0.0/8"]'
    )


class StorageSettings(BaseModel):
    """Object storage (obstore): credentials and endpoints for s3://, gs://, az://; file:// and memory:// need none."""

    model_config = _section

    s3_endpoint: str | None = Field(default=None, description="e.g. http://minio:9000; None = AWS")
    s3_region: str = "us-east-1"
    s3_access_key_id: SecretStr | None = Field(default=None, description="None = AWS_* env / instance role")
    s3_secret_access_key: SecretStr | None = None
    s3_allow_http: bool = Field(default=False, description="allow http:// endpoints (MinIO in a private network)")
    s3_virtual_hosted_style: bool = Field(default=False, description="False = path-style (MinIO)")
    gcs_service_account_path: Path | None = Field(
        default=None, description="None = GOOGLE_* env; its gcs_base_url points at another endpoint (an emulator)"
    )
    gcs_allow_http: bool = Field(default=False, description="allow an http:// gcs_base_url (an emulator)")
    azure_account_name: str | None = Field(default=None, description="None = AZURE_* env")
    azure_account_key: SecretStr | None = None
    azure_endpoint: str | None = Field(
        default=None, description="account URL, e.g. http://azurite:10000/devstoreaccount1; None = Azure"
    )
    azure_allow_http: bool = Field(default=False, description="allow an http:// azure_endpoint (Azurite)")
    schemes: frozenset[Literal["s3", "gs", "az", "memory"]] = Field(
        default=frozenset({"s3", "gs", "az", "memory"}),
        description='object URL schemes events may name (JSON list, e.g. ["s3"]); file:// needs file_root',
    )
    file_root: Path | None = Field(
        default=None, description="the folder file:// URLs live in (keys never escape it); None = file:// refused"
    )
    output_prefix: str = Field(default="anonymized/", description="prefix of output keys in the source bucket")
    output_url: str | None = Field(default=None, description="write outputs here instead, e.g. s3://out-bucket/")
    timeout_s: float = Field(default=30.0, gt=0, description="one storage request, transfer included")
    connect_timeout_s: float = Field(default=5.0, gt=0, description="one storage connection")
    max_retries: int = Field(default=2, ge=0, description="obstore's own retries; the stream retries above that")


class SqsSettings(BaseModel):
    """An SQS queue as the source (S3 event notifications or FrameEvents); chosen when ``queue_url`` is set."""

    model_config = _section

    queue_url: str | None = Field(default=None, description="e.g. https://sqs.eu-west-1.amazonaws.com/123/frames")
    endpoint: str | None = Field(default=None, description="API endpoint; None = the queue URL's scheme and host")
    region: str = "us-east-1"
    access_key_id: SecretStr | None = Field(default=None, description="SigV4 credentials (required)")
    secret_access_key: SecretStr | None = None
    session_token: SecretStr | None = None
    wait_time_s: int = Field(default=1, ge=0, le=20, description="long polling of one receive")
    visibility_timeout_s: int = Field(
        default=60, ge=2, le=43_200, description="a received message stays hidden this long, extended while in flight"
    )
    request_timeout_s: float = Field(default=30.0, gt=0, description="one SQS request")


class KafkaSettings(BaseModel):
    model_config = _section

    bootstrap_servers: str | None = Field(default=None, description="None = embedded default (local inbox)")
    input_topic: str = Field(default="frames", description="frame events in")
    completion_topic: str = Field(default="frames.anonymized", description="completion events out")
    dead_letter_topic: str = Field(default="frames.dead-letter", description="dead letters out")
    group_id: str = Field(default="anonymizer", description="consumer group shared by all processors")
    replay_group_id: str = Field(
        default="anonymizer-replay",
        description="`replay`: prefix of the groups (one per error kind) that remember what was replayed",
    )
    client_id: str = "anonymizer"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        default=None, description="GSSAPI and OAUTHBEARER need code, not settings: not offered"
    )
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = Field(default=None, description="CA bundle for SSL")
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 3_000
    rebalance_timeout_ms: int | None = None
    max_poll_interval_ms: int = 300_000
    commit_timeout_s: float = Field(default=10.0, gt=0, description="an offset commit not answered by then fails")


class StreamSettings(BaseModel):
    """Backpressure, retries and shutdown of the stream processor."""

    model_config = _section

    max_in_flight: int = Field(default=32, ge=1, description="frames being processed at once")
    resume_below: int | None = Field(default=None, description="low watermark; default max_in_flight // 2")
    commit_interval_s: float = Field(default=1.0, gt=0, description="how often commit points are committed")
    max_attempts: int = Field(default=4, ge=1, description="tries of a transient failure before dead-lettering")
    retry_budget_s: float = Field(
        default=300.0,
        ge=0,
        description="and a transient failure is retried at least this long after it first failed, so outages of "
        "storage or inference shorter than this dead-letter nothing (0 = max_attempts alone)",
    )
    retry_backoff_s: float = Field(default=0.5, gt=0, description="first retry backoff (doubling, jittered)")
    retry_backoff_max_s: float = Field(default=15.0, gt=0, description="retry backoff cap")
    shutdown_timeout_s: float = Field(default=30.0, gt=0, description="drain time after SIGTERM")
    default_configuration: Path | None = Field(
        default=None, description="user configuration applied to events that name none; None = built-in default"
    )
    configurations_dir: Path = Field(default=Path("jsonFiles"), description="named configurations: <name>.json")
    inbox: Path = Field(default=Path("inbox"), description="embedded default: folder of frames or a .jsonl of events")
    completions_file: Path = Field(default=Path("completions.jsonl"), description="embedded default output")


class HttpSettings(BaseModel):
    model_config = _section

    host: str = Field(default="127.0.0.1", description="serve and run (health, metrics) listen here")
    port: int = Field(default=8080, ge=0, le=65535)
    max_upload_bytes: int = Field(default=50 * 1024 * 1024, gt=0, description="POST /anonymize/ body limit")
    max_video_upload_bytes: int = Field(default=2 * 1024**3, gt=0, description="POST /anonymize_video/, on disk")
    max_frames_in_flight: int = Field(default=8, ge=1, description="images anonymized at once by the API; more wait")
    body_timeout_s: float = Field(
        default=300.0, gt=0, description="a request body must arrive whole within this (408 after): slow uploads end"
    )
    api_token: SecretStr | None = Field(
        default=None, description="serve: bearer token for every endpoint but public_paths (the admin token works too)"
    )
    admin_token: SecretStr | None = Field(
        default=None,
        description="serve: bearer token for /set_url, /remove_url, /remove_all_urls; None = loopback only",
    )
    public_paths: frozenset[str] = Field(
        default=frozenset({"/", "/health", "/ready", "/docs", "/openapi.json"}),
        description='serve: paths answered without a token (JSON list; add "/metrics" for token-less scrapes)',
    )
    allow_unauthenticated: bool = Field(
        default=False, description="serve: listen on a non-loopback host without tokens (admin endpoints stay 403)"
    )


class VideoSettings(BaseModel):
    """Video anonymization: H.264 encoding, frames in flight, detection on keyframes and tracking."""

    model_config = _section

    crf: int = Field(default=20, ge=0, le=51, description="x264 constant rate factor: lower = better quality, larger")
    preset: Literal[
        "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo"
    ] = Field(default="veryfast", description="x264 preset: slower = smaller file at the same quality")
    frames_in_flight: int = Field(default=4, ge=1, description="frames being localized at once in one video")
    videos_in_flight: int = Field(
        default=1, ge=1, description="stream: videos processed at once (each holds its object and ~12 frames)"
    )
    keep_audio: bool = Field(default=True, description="copy the audio (re-encoded to AAC if needed); False = drop it")
    detect_every: int = Field(
        default=1,
        ge=1,
        le=30,
        description="N: the tracked labels' detectors run on every N-th frame (and on scene cuts, and between "
        "keyframes that disagree); the frames between get their tracks' boxes (1 = every frame; holds about "
        "frames_in_flight + 2N + smoothing_frames frames)",
    )
    smoothing_frames: int = Field(
        default=2,
        ge=0,
        description="k: a track is hidden k frames (plus detect_every - 1) before its first and after its last "
        "detection, and over misses (0 = off)",
    )
    smoothing_labels: frozenset[str] = Field(
        default=frozenset({"face", "license_plate"}),
        description="detection labels tracked over time; the others, and masks, are detected on every frame",
    )
    max_duration_s: float | None = Field(
        default=300.0, gt=0, description="stream and API: refuse longer videos (None = no limit; the CLI has none)"
    )
    max_bad_frame_ratio: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="frames that cannot be processed (corrupt, or a detector failed) are blackened or dropped; "
        "above this share of the frames, or when it is every frame, the video fails instead",
    )


class JobsSettings(BaseModel):
    """The asynchronous video job API of ``anonymizer serve`` (``POST /jobs/video``); jobs live in memory only."""

    model_config = _section

    max_jobs: int = Field(
        default=16, ge=1, description="jobs held at once (queued, running, or finished and not expired); more: 429"
    )
    concurrency: int = Field(default=1, ge=1, description="videos of jobs processed at once; the others wait queued")
    result_ttl_s: float = Field(default=3600.0, gt=0, description="a finished job and its result are deleted after")
    webhook_timeout_s: float = Field(default=10.0, gt=0, description="one completion notice to a callback_url")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ANONYMIZER_",
        env_nested_delimiter="__",
        env_parse_none_str="none",
        frozen=True,
        extra="forbid",
        env_file=None,
    )

    limits: LimitsSettings = LimitsSettings()
    output: OutputSettings = OutputSettings()
    builtin: BuiltinSettings = BuiltinSettings()
    inference: InferenceSettings = InferenceSettings()
    storage: StorageSettings = StorageSettings()
    kafka: KafkaSettings = KafkaSettings()
    sqs: SqsSettings = SqsSettings()
    stream: StreamSettings = StreamSettings()
    http: HttpSettings = HttpSettings()
    video: VideoSettings = VideoSettings()
    jobs: JobsSettings = JobsSettings()
    log_level: Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR"], BeforeValidator(_upper)] = Field(
        default="INFO", description="any case"
    )
    log_format: Literal["text", "json"] = Field(default="text", description="json: one JSON object per line")


def unparsable_settings(error: Exception, environ: Mapping[str, str]) -> str:
    """Name the variables behind pydantic-settings' ``SettingsError`` (it names only the top-level field): those
    whose setting is a list or dict and whose value is not JSON."""
    match = re.search(r'field "(\w+)"', str(error))
    field = match.group(1) if match else ""
    culprits = [
        name
        for name, value in sorted(environ.items())
        if name.upper().startswith(f"ANONYMIZER_{field.upper()}") and _takes_json(name) and not _is_json(value)
    ]
    named = ", ".join(culprits) or f"ANONYMIZER_{field.upper()}"
    return f'{named}: list and dict settings are JSON, e.g. \'["s3", "file"]\' or \'{{"face": 1.3}}\''


def _takes_json(variable: str) -> bool:
    model: type[BaseModel] | None = Settings
    annotation: object = None
    for part in variable.upper().removeprefix("ANONYMIZER_").lower().split("__"):
        if model is None or part not in model.model_fields:
            return False
        annotation = model.model_fields[part].annotation
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    return get_origin(annotation) in {list, set, frozenset, dict, tuple} or annotation in {list, set, frozenset, dict}


def _is_json(value: str) -> bool:
    try:
        orjson.loads(value)
    except orjson.JSONDecodeError:
        return False
    return True
