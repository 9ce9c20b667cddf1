"""Answers of the asynchronous video job API (``POST /jobs/video``, ``GET /jobs/{job_id}``), in the API's
``{data, error, success}`` envelope, and the body a completion webhook receives."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

_answer = ConfigDict(frozen=True)


class JobState(StrEnum):
    queued = "queued"
    running = "running"
    done = "done"
    failed = "failed"


class JobProgress(BaseModel):
    model_config = _answer

    frames_done: int = Field(ge=0, description="frames anonymized and written so far")
    frames_total: int | None = Field(description="from the container's header; null when it does not say")


class JobError(BaseModel):
    model_config = _answer

    kind: str = Field(description="the stable error kind: video_undecodable, video_too_long, inference_unavailable, …")
    message: str


class JobWebhook(BaseModel):
    """The completion notice's delivery (the URL itself is never echoed: it may carry a token)."""

    model_config = _answer

    delivered: bool | None = Field(description="null until the job finished and the notice was sent")
    status: int | None = Field(default=None, description="the HTTP status the webhook answered")
    error: str | None = Field(default=None, description="why it was not delivered")


class JobResult(BaseModel):
    model_config = _answer

    url: str = Field(description="path of the anonymized video on this server (GET it)")
    content_type: str
    frames: int
    counts: dict[str, int] = Field(description="regions found per label, summed over frames")
    configuration_hash: str


class JobStatus(BaseModel):
    """One video job. Jobs live in the serving process only: a restart forgets them (submit again)."""

    model_config = _answer

    id: str
    state: JobState
    progress: JobProgress
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    expires_at: datetime | None = Field(
        default=None, description="when the job and its result are deleted (jobs.result_ttl_s after it finished)"
    )
    result: JobResult | None = Field(default=None, description="once done")
    error: JobError | None = Field(default=None, description="once failed")
    webhook: JobWebhook | None = Field(default=None, description="when a callback_url was given")
