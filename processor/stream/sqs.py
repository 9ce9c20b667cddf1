"""A small SQS client over the shared aiohttp stack: the AWS JSON protocol, signed with Signature Version 4.

Only what the SQS source needs: receive, delete and change visibility (batched). Errors are translated here:
connection problems, timeouts, throttling and 5xx raise :class:`BrokerUnavailable` (transient); other answers
raise it too, naming the AWS error type (the source retries its requests, never a frame).
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

import aiohttp
import orjson

from processor.errors import BrokerUnavailable
from processor.settings import SqsSettings

_SERVICE = "sqs"
_BATCH = 10  # SQS's limit for receive, delete and change-visibility batches


class SqsClient:
    """Signed SQS requests for one queue; an async context manager (opens its session on enter)."""

    def __init__(self, settings: SqsSettings) -> None:
        if settings.queue_url is None:
            raise ValueError("sqs.queue_url is not set")
        if settings.access_key_id is None or settings.secret_access_key is None:
            raise ValueError("sqs.access_key_id and sqs.secret_access_key are required")
        self._settings = settings
        self.queue_url = settings.queue_url
        parts = urlsplit(settings.endpoint or settings.queue_url)
        self._endpoint = f"{parts.scheme}://{parts.netloc}/"
        self._host = parts.netloc
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._settings.request_timeout_s))
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def receive(self, max_messages: int, wait_time_s: int, visibility_timeout_s: int) -> list[dict[str, Any]]:
        """Up to ``max_messages`` (at most 10) messages, hidden for ``visibility_timeout_s``."""
        answer = await self._call(
            "ReceiveMessage",
            {
                "QueueUrl": self.queue_url,
                "MaxNumberOfMessages": max(1, min(_BATCH, max_messages)),
                "WaitTimeSeconds": wait_time_s,
                "VisibilityTimeout": visibility_timeout_s,
                "MessageSystemAttributeNames": ["ApproximateReceiveCount"],
                "MessageAttributeNames": ["All"],
            },
        )
        messages: list[dict[str, Any]] = answer.get("Messages") or []
        return messages

    async def delete(self, receipts: list[str]) -> list[str]:
        """Delete messages by receipt handle; the receipts that failed (to try again)."""
        return await self._batched("DeleteMessageBatch", receipts, {})

    async def extend(self, receipts: list[str], visibility_timeout_s: int) -> list[str]:
        """Hide messages ``visibility_timeout_s`` more from now; the receipts that failed."""
        return await self._batched(
            "ChangeMessageVisibilityBatch", receipts, {"VisibilityTimeout": visibility_timeout_s}
        )

    async def _batched(self, action: str, receipts: list[str], extra: dict[str, Any]) -> list[str]:
        failed: list[str] = []
        for start in range(0, len(receipts), _BATCH):
            chunk = receipts[start : start + _BATCH]
            entries = [{"Id": str(index), "ReceiptHandle": handle, **extra} for index, handle in enumerate(chunk)]
            answer = await self._call(action, {"QueueUrl": self.queue_url, "Entries": entries})
            failed.extend(chunk[int(entry["Id"])] for entry in answer.get("Failed") or [])
        return failed

    async def _call(self, action: str, body: dict[str, Any]) -> dict[str, Any]:
        if self._session is None:
            raise RuntimeError("SqsClient used outside 'async with'")
        payload = orjson.dumps(body)
        headers = self._signed_headers(action, payload, datetime.now(UTC))
        try:
            async with self._session.post(self._endpoint, data=payload, headers=headers) as response:
                raw = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as error:
            raise BrokerUnavailable(f"SQS {action}: {type(error).__name__}: {error}") from error
        try:
            answer: dict[str, Any] = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            answer = {}
        if status >= 300:
            kind = str(answer.get("__type", "")).rpartition("#")[2] or f"HTTP {status}"
            raise BrokerUnavailable(f"SQS {action} answered {status} {kind}: {str(answer.get('message', ''))[:200]}")
        return answer

    def _signed_headers(self, action: str, payload: bytes, now: datetime) -> dict[str, str]:
        """SigV4 for a JSON-protocol POST to ``/``."""
        settings = self._settings
        assert settings.access_key_id is not None and settings.secret_access_key is not None  # noqa: S101 - checked
        stamp, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
        headers = {
            "content-type": "application/x-amz-json-1.0",
            "host": self._host,
            "x-amz-date": stamp,
            "x-amz-target": f"AmazonSQS.{action}",
        }
        if settings.session_token is not None:
            headers["x-amz-security-token"] = settings.session_token.get_secret_value()
        names = sorted(headers)
        canonical = "\n".join(
            [
                "POST",
                "/",
                "",
                "".join(f"{name}:{headers[name]}\n" for name in names),
                ";".join(names),
                hashlib.sha256(payload).hexdigest(),
            ]
        )
        scope = f"{day}/{settings.region}/{_SERVICE}/aws4_request"
        to_sign = f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        key = ("AWS4" + settings.secret_access_key.get_secret_value()).encode()
        for part in (day, settings.region, _SERVICE, "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        credential = f"{settings.access_key_id.get_secret_value()}/{scope}"
        headers["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders={';'.join(names)}, Signature={signature}"
        )
        del headers["host"]  # aiohttp sends it (the same value)
        return headers
