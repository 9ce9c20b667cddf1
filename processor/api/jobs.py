"""The video job queue behind ``POST /jobs/video``: videos that take minutes are processed after the request.

A job owns a folder of its own (``anonymizer-job-*`` in the system temp dir, mode 0700; its files 0600): the
upload, then the anonymized video. At most ``jobs.max_jobs`` jobs are held at once — queued, running, or finished
and not yet expired — so the disk they take is bounded; ``reserve`` refuses more (:class:`JobsFull`, 429) before
the upload is read. ``jobs.concurrency`` workers process queued jobs in order. A finished job (done or failed)
and its folder are deleted ``jobs.result_ttl_s`` after it finished. Jobs live in this process only: a restart or
a shutdown deletes every folder and forgets every job (clients submit again).

When the job named a ``callback_url``, its final status is POSTed there once, through the outbound policy (no
private or metadata hosts unless allowed, no redirects).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Self

import aiohttp

from processor.errors import ProcessorError
from processor.inference.base import Localizer
from processor.inference.http import policy_session
from processor.inference.outbound import refused_by_policy
from processor.settings import Settings
from processor.video.objects import anonymize_video_file
from processor.video.result import VideoProgress, VideoResult
from processor.video.writer import CONTAINERS
from schemas.api import Answer
from schemas.config import UserConfiguration
from schemas.jobs import JobError, JobProgress, JobResult, JobState, JobStatus, JobWebhook

log = logging.getLogger(__name__)

_FILE_MODE = 0o600
_REAP_INTERVAL_S = 30.0


class JobsFull(Exception):
    """Every job slot is taken; ``retry_after_s``: when the next finished job expires, if one will."""

    def __init__(self, max_jobs: int, retry_after_s: float | None) -> None:
        super().__init__(
            f"the server holds its maximum of {max_jobs} video jobs (queued, running or finished and kept); "
            "try again later"
        )
        self.retry_after_s = retry_after_s


@dataclass
class Job:
    """One video job; mutated only by its queue (and the progress callback of its video)."""

    id: str
    folder: Path
    created: datetime
    suffix: str = ".mp4"
    source: Path | None = None
    configuration: UserConfiguration | None = None
    callback_url: str | None = None
    state: JobState = JobState.queued
    frames_done: int = 0
    frames_total: int | None = None
    started: datetime | None = None
    finished: datetime | None = None
    finished_monotonic: float | None = None
    result: VideoResult | None = None
    error: JobError | None = None
    webhook: JobWebhook | None = None
    submitted: bool = False

    @property
    def output(self) -> Path:
        return self.folder / f"anonymized{self.suffix}"

    @property
    def content_type(self) -> str:
        return CONTAINERS[self.suffix][1]

    def on_progress(self, progress: VideoProgress) -> None:
        self.frames_done, self.frames_total = progress.frames_done, progress.frames_total

    def status(self, ttl_s: float) -> JobStatus:
        result = None
        if self.result is not None and self.state is JobState.done:
            result = JobResult(
                url=f"/jobs/{self.id}/result",
                content_type=self.content_type,
                frames=self.result.frames,
                counts=self.result.counts,
                configuration_hash=self.result.configuration_hash,
            )
        return JobStatus(
            id=self.id,
            state=self.state,
            progress=JobProgress(frames_done=self.frames_done, frames_total=self.frames_total),
            created_at=self.created,
            started_at=self.started,
            finished_at=self.finished,
            expires_at=self.finished + timedelta(seconds=ttl_s) if self.finished is not None else None,
            result=result,
            error=self.error,
            webhook=self.webhook,
        )


class JobQueue:
    """Jobs by id, their workers and their expiry; an async context manager (workers start on enter; on exit they
    are cancelled, and every job folder is deleted)."""

    def __init__(self, settings: Settings, localizer: Localizer) -> None:
        self._settings = settings
        self._jobs_settings = settings.jobs
        self._localizer = localizer
        self._jobs: dict[str, Job] = {}
        self._queue: asyncio.Queue[Job] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        self._session = policy_session(self._settings.inference)
        workers = range(self._jobs_settings.concurrency)
        self._tasks = [asyncio.create_task(self._work(), name=f"video-job-{n}") for n in workers]
        self._tasks.append(asyncio.create_task(self._reap(), name="video-job-expiry"))
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
        for job in list(self._jobs.values()):
            await self._delete(job)

    @property
    def ttl_s(self) -> float:
        return self._jobs_settings.result_ttl_s

    async def reserve(self) -> Job:
        """A new job in its own folder, not yet queued; raises :class:`JobsFull` when every slot is taken."""
        self._expire()
        if len(self._jobs) >= self._jobs_settings.max_jobs:
            raise JobsFull(self._jobs_settings.max_jobs, self._next_expiry_s())
        folder = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="anonymizer-job-"))  # mode 0700
        job = Job(id=uuid.uuid4().hex, folder=folder, created=datetime.now(UTC))
        self._jobs[job.id] = job
        return job

    def submit(
        self, job: Job, source: Path, configuration: UserConfiguration, suffix: str, callback_url: str | None
    ) -> None:
        """Queue a reserved job whose upload is at ``source`` (inside its folder)."""
        os.chmod(source, _FILE_MODE)
        job.source, job.configuration, job.suffix, job.callback_url = source, configuration, suffix, callback_url
        job.webhook = JobWebhook(delivered=None) if callback_url else None
        job.submitted = True
        self._queue.put_nowait(job)

    async def discard(self, job: Job) -> None:
        """Forget a reserved job whose submission failed (bad upload, bad configuration)."""
        await self._delete(job)

    def get(self, job_id: str) -> Job | None:
        """The job, unless unknown, never submitted, or expired."""
        self._expire()
        job = self._jobs.get(job_id)
        return job if job is not None and job.submitted else None

    async def _work(self) -> None:
        while True:
            job = await self._queue.get()
            if job.id in self._jobs:
                await self._run(job)
                if job.callback_url is not None:
                    await self._notify(job, job.callback_url)

    async def _run(self, job: Job) -> None:
        job.state, job.started = JobState.running, datetime.now(UTC)
        assert job.source is not None and job.configuration is not None  # noqa: S101 - submit() set them
        try:
            job.result = await anonymize_video_file(
                job.source,
                job.output,
                job.configuration,
                self._localizer,
                self._settings,
                progress=job.on_progress,
            )
            await asyncio.to_thread(os.chmod, job.output, _FILE_MODE)
            job.state = JobState.done
        except ProcessorError as error:
            job.state, job.error = JobState.failed, JobError(kind=error.kind, message=str(error))
        except Exception:  # the outermost catch of a job: it fails, the workers go on
            log.exception("video job %s failed", job.id)
            job.state, job.error = JobState.failed, JobError(kind="internal", message="internal error")
        finally:
            await asyncio.to_thread(job.source.unlink, missing_ok=True)
            job.finished, job.finished_monotonic = datetime.now(UTC), time.monotonic()
        log.info("video job %s %s", job.id, job.state.value)

    async def _notify(self, job: Job, url: str) -> None:
        """POST the final status to the job's callback URL once; the outcome is kept in the status, never raised."""
        assert self._session is not None  # noqa: S101 - set on enter
        body = Answer[JobStatus](data=job.status(self.ttl_s)).model_dump(mode="json")
        timeout = aiohttp.ClientTimeout(total=self._jobs_settings.webhook_timeout_s)
        try:
            async with self._session.post(url, json=body, timeout=timeout, allow_redirects=False) as response:
                delivered = 200 <= response.status < 300
                job.webhook = JobWebhook(
                    delivered=delivered,
                    status=response.status,
                    error=None if delivered else f"the webhook answered HTTP {response.status}",
                )
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            job.webhook = JobWebhook(delivered=False, error=_delivery_error(error))

    async def _reap(self) -> None:
        while True:
            await asyncio.sleep(min(_REAP_INTERVAL_S, self.ttl_s))
            self._expire()

    def _expire(self) -> None:
        """Delete the jobs past their TTL and their folders (a few files: an unlink each, fast enough inline)."""
        now = time.monotonic()
        gone = [
            job
            for job in self._jobs.values()
            if job.finished_monotonic is not None and now - job.finished_monotonic >= self.ttl_s
        ]
        for job in gone:
            del self._jobs[job.id]
            shutil.rmtree(job.folder, ignore_errors=True)

    def _next_expiry_s(self) -> float | None:
        finished = [job.finished_monotonic for job in self._jobs.values() if job.finished_monotonic is not None]
        if not finished:
            return None
        return max(1.0, math.ceil(min(finished) + self.ttl_s - time.monotonic()))

    async def _delete(self, job: Job) -> None:
        self._jobs.pop(job.id, None)
        await asyncio.to_thread(shutil.rmtree, job.folder, ignore_errors=True)


def _delivery_error(error: BaseException) -> str:
    refused = refused_by_policy(error)
    if refused is not None:
        return f"outbound_refused: {refused}"
    return f"{type(error).__name__}: the webhook could not be reached"
