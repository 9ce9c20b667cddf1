"""The asynchronous video job API: ``POST /jobs/video`` (202 and a job id), ``GET /jobs/{job_id}`` (its state and
progress), ``GET /jobs/{job_id}/result`` (the anonymized video); the queue is :mod:`processor.api.jobs`.

For videos that take longer than a client (or a proxy, or a pod's grace period) waits on one request:
``/anonymize_video/`` answers when the video is done, a job answers at once and is polled (or calls back).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from processor.api.endpoints import Endpoint, FormField
from processor.api.forms import read_multipart
from processor.api.jobs import JobQueue, JobsFull
from processor.api.resources import LOCALIZER, SETTINGS
from processor.api.video import send_video
from processor.configuration import default_configuration, parse_configuration
from processor.envelope import answer, failure
from processor.errors import InvalidConfiguration
from processor.inference.http import outbound_policy
from processor.settings import Settings
from processor.video.objects import output_suffix
from processor.video.writer import CONTAINERS
from schemas.api import FailureDetail
from schemas.config import UserConfiguration
from schemas.jobs import JobState, JobStatus

JOBS = web.AppKey("jobs", JobQueue)


async def open_jobs(app: web.Application) -> AsyncIterator[None]:
    """The job queue, after the shared resources (its workers use the localizer); closed before them."""
    async with JobQueue(app[SETTINGS], app[LOCALIZER]) as queue:
        app[JOBS] = queue
        yield


async def submit_video_job(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    queue = request.app[JOBS]
    try:
        job = await queue.reserve()
    except JobsFull as full:
        headers = {"Retry-After": str(int(full.retry_after_s))} if full.retry_after_s is not None else None
        return failure(429, str(full), _detail("jobs_full", str(full)), headers)
    try:
        form = await read_multipart(
            request,
            ("video", "configuration"),
            settings.http.max_video_upload_bytes,
            spool={"video": job.folder},
            optional=("callback_url",),
        )
        configuration = parse_configuration(form.fields["configuration"])
        callback_url = _callback_url(form.fields.get("callback_url"), settings)
    except BaseException:
        await queue.discard(job)
        raise
    suffix = output_suffix(form.filenames.get("video", "video.mp4"))
    queue.submit(job, form.files["video"], configuration, suffix, callback_url)
    status = job.status(queue.ttl_s).model_dump(mode="json")
    return answer(status, status=202, headers={"Location": f"/jobs/{job.id}"})


async def job_status(request: web.Request) -> web.Response:
    queue = request.app[JOBS]
    job = queue.get(request.match_info["job_id"])
    if job is None:
        return _unknown(request.match_info["job_id"])
    return answer(job.status(queue.ttl_s).model_dump(mode="json"))


async def job_result(request: web.Request) -> web.StreamResponse:
    queue = request.app[JOBS]
    job = queue.get(request.match_info["job_id"])
    if job is None:
        return _unknown(request.match_info["job_id"])
    if job.state is JobState.failed and job.error is not None:
        problem = f"job {job.id} failed ({job.error.kind}): {job.error.message}"
        return failure(409, problem, _detail("job_failed", problem))
    if job.state is not JobState.done or job.result is None:
        problem = f"job {job.id} is {job.state.value}: poll /jobs/{job.id} until its state is done"
        return failure(409, problem, _detail("job_not_done", problem))
    return await send_video(request, job.output, job.content_type, job.result)


def _callback_url(value: bytes | None, settings: Settings) -> str | None:
    """The optional webhook: an http(s) URL whose host the outbound policy admits (names are checked again once
    resolved, when the notice is sent)."""
    if value is None or not value.strip():
        return None
    url = value.decode("utf-8", errors="replace").strip()
    if not url.lower().startswith(("http://", "https://")):
        raise InvalidConfiguration([f"callback_url {url[:100]!r} is not an http(s) URL"])
    outbound_policy(settings.inference).check_url(url)
    return url


def _unknown(job_id: str) -> web.Response:
    problem = f"no job {job_id[:64]!r}: unknown, or expired (a job is kept jobs.result_ttl_s after it ended)"
    return failure(404, problem, _detail("job_not_found", problem))


def _detail(kind: str, problem: str) -> dict[str, Any]:
    return FailureDetail(kind=kind, problems=[problem]).model_dump()


_JOB_ID = (("job_id", "the id `POST /jobs/video` answered"),)

JOB_ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "POST",
        "/jobs/video",
        submit_video_job,
        "Submit a video job",
        "Jobs",
        "Answers 202 at once with the job's status and `Location: /jobs/{job_id}`; the video is anonymized after "
        "the request (as `/anonymize_video/` would), one job after another. Poll `GET /jobs/{job_id}`, or give a "
        "`callback_url` that receives the final status as a JSON POST. Jobs live in this server process only: a "
        "restart forgets them, and a finished job is deleted `jobs.result_ttl_s` after it ended.",
        form=(
            FormField("video", "the video file", file=True),
            FormField(
                "configuration",
                "user configuration: JSON text or a .json file",
                json_model=UserConfiguration,
                example=default_configuration().model_dump(mode="json", exclude_none=True),
            ),
            FormField(
                "callback_url",
                "optional: http(s) URL to POST the final status to (the outbound policy applies)",
                required=False,
            ),
        ),
        form_type="multipart/form-data",
        answer=JobStatus,
        status=202,
        headers=(("Location", "the job's status URL"),),
        errors=(
            (400, "a field is missing"),
            (403, "the callback_url's host is refused by the outbound policy"),
            (413, "the upload is over http.max_video_upload_bytes"),
            (422, "the configuration (or callback_url) is invalid"),
            (429, "the server holds jobs.max_jobs jobs already (Retry-After when one will expire)"),
        ),
    ),
    Endpoint(
        "GET",
        "/jobs/{job_id}",
        job_status,
        "A video job's state and progress",
        "Jobs",
        "`state`: queued, running, done or failed; `progress`: frames done of the total; `error.kind` once failed; "
        "`result.url` once done.",
        parameters=_JOB_ID,
        answer=JobStatus,
        errors=((404, "no such job, or it expired"),),
    ),
    Endpoint(
        "GET",
        "/jobs/{job_id}/result",
        job_result,
        "The anonymized video of a done job",
        "Jobs",
        "The same answer as `/anonymize_video/`: the video (H.264) and what was done in headers.",
        parameters=_JOB_ID,
        content_types=tuple(dict.fromkeys(content_type for _, content_type in CONTAINERS.values())),
        headers=(
            ("X-Anonymizer-Counts", "JSON object: regions found per label, summed over frames"),
            ("X-Anonymizer-Frames", "frames written"),
            ("X-Anonymizer-Configuration-Hash", "short hash of the configuration used"),
        ),
        errors=((404, "no such job, or it expired"), (409, "the job is not done yet, or failed")),
    ),
)
