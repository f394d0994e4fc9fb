"""The request engine both clients share: one pooled httpx.AsyncClient, bearer tokens, correlation
ids, call counting, and bounded retries that honour Retry-After (DESIGN §5)."""

from __future__ import annotations

import asyncio
import functools
import math
import random
import uuid
from collections.abc import Awaitable, Callable
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from shared import telemetry
from shared.auth import TokenProvider
from shared.clients.batch import BatchRequest, BatchResponse, build_batch, parse_batch_response
from shared.clients.throttle import MAX_PAUSE_SECONDS, limiter_for
from shared.clients.transport import AiohttpPool
from shared.errors import AuthError, PermanentServiceError, ServiceError, TransientServiceError
from shared.jsonio import dump_bytes, loads
from shared.settings import Settings
from shared.values import utc_now

Sleep = Callable[[float], Awaitable[None]]
_DEFAULT_HEADERS = {"Accept": "*/*", "Accept-Encoding": "gzip, deflate", "User-Agent": "projops-sync"}
_SENDS_BODY = frozenset({"POST", "PUT", "PATCH"})  # an empty one still says Content-Length: 0, as httpx's
Classifier = Callable[[httpx.Response], ServiceError]
# Both services count their limits over five minutes and answer 429 with Retry-After in seconds
# (formats.md §3, §4.5). A longer ask is no throttle of theirs; taken as given, it would hold back
# every request of the process to that service, and schedule the retry past what a timedelta holds.
# The limiter holds back no longer than this either: one bound, the services' window.
MAX_RETRY_AFTER_SECONDS = MAX_PAUSE_SECONDS
# On a failed answer handed back (a $batch's): whether an earlier attempt of the call went unanswered.
AFTER_LOST_ATTEMPT = "projops.after_lost_attempt"


def retry_after_seconds(response: httpx.Response) -> float | None:
    """Retry-After as seconds from now, within [0, MAX_RETRY_AFTER_SECONDS]; None when it is absent or
    says no number (then our own backoff applies)."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = (parsedate_to_datetime(value) - utc_now()).total_seconds()
        except (TypeError, ValueError, OverflowError):
            return None
    if not math.isfinite(seconds):
        return None
    return min(max(0.0, seconds), MAX_RETRY_AFTER_SECONDS)


def member_object(value: Any, name: str) -> dict[str, Any]:
    """`value[name]` when both are JSON objects, else an empty one: an error answer's `error` or
    `innererror` of another shape (a gateway's `"error": "invalid_request"`) is read as no detail, so
    the status still decides and the raw text is what a person sees."""
    member = value.get(name) if isinstance(value, dict) else None
    return member if isinstance(member, dict) else {}


def succeeded(status: int) -> bool:
    """Only a 2xx is a result. A 3xx is not followed (a token goes only to the configured service
    URL, and a redirected POST says nothing of whether it was applied), and taken as success it left
    a write recorded as done that never was."""
    return 200 <= status < 300


def unfollowed(
    system: str, status: int, location: str | None, method: str | None = None, url: str | None = None
) -> TransientServiceError:
    """The error of an answer that is neither a result nor a refusal: tried again later, so a person
    sees where it pointed if it persists (then the configured URL is not where the service answers)."""
    where = f"to {location[:300]!r}" if location else "without a Location"
    return TransientServiceError(
        system,
        status,
        f"the answer was {status} {where}, not a result: redirects are not followed (the token goes only to "
        "the configured service URL), and whether the request was applied is not known, so it is tried again",
        method=method,
        url=url,
    )


def json_body(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return loads(response.content)
    except ValueError:
        return None


def json_object(response: httpx.Response, system: str) -> dict[str, Any]:
    """The JSON object a successful read answers. Anything else (a proxy's HTML page, JSON cut short,
    a list, text Dataverse could not have written) says nothing about the row: an error to retry and
    then park, never an answer taken to mean the row is gone."""
    try:
        body = loads(response.content) if response.content else None
    except ValueError as exc:
        problem = f"is not JSON ({str(exc)[:200]})"
    else:
        if isinstance(body, dict):
            return body
        problem = f"is a JSON {type(body).__name__}, not an object" if body is not None else "is empty"
    raise TransientServiceError(
        system,
        response.status_code,
        f"the answer {problem}",
        method=response.request.method,
        url=str(response.request.url)[:300],
    )


class HttpEngine:
    def __init__(
        self,
        system: str,
        base_url: str,
        resource: str,
        tokens: TokenProvider,
        settings: Settings,
        classify: Classifier,
        *,
        sleep: Sleep = asyncio.sleep,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.system = system
        self.resource = resource
        self._tokens = tokens
        self._classify = classify
        self._sleep = sleep
        self._max_retries = settings.http_max_retries
        self._max_wait = settings.http_max_retry_wait_seconds
        self._transport: httpx.AsyncBaseTransport | None = None
        if client is None:
            self._transport = telemetry.traced_transport(AiohttpPool(max_connections=100))
            client = httpx.AsyncClient(
                base_url=base_url, timeout=settings.http_timeout_seconds, transport=self._transport
            )
        self._client = client
        self._base = str(client.base_url)
        # Where a link a service sends may lead (_refuse_foreign): parsed once, not per page.
        self._base_url = httpx.URL(self._base)
        self._base_prefix = self._base_url.path if self._base_url.path.endswith("/") else self._base_url.path + "/"
        self._timeout = {name: settings.http_timeout_seconds for name in ("connect", "read", "write", "pool")}
        self.calls = 0
        # Shared by every client of the process that calls this service as this identity.
        identity = settings.client_id or settings.managed_identity_client_id or str(settings.auth_mode)
        self.throttle = limiter_for(system, base_url, identity)

    @property
    def timeout(self) -> float:
        return self._timeout["read"]

    @timeout.setter
    def timeout(self, seconds: float) -> None:
        self._timeout = dict.fromkeys(self._timeout, seconds)
        self._client.timeout = httpx.Timeout(seconds)

    def _backoff(self, attempt: int) -> float:
        # Full jitter keeps many instances from retrying in step after a shared 5xx.
        return random.uniform(0, min(8.0, 0.25 * (2**attempt)))

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        json: Any = None,
        content: bytes | None = None,
        correlation_id: str | None = None,
        multipart_errors: bool = False,
    ) -> httpx.Response:
        """Send one request; retries transient failures in-call, raises typed errors otherwise.

        With `multipart_errors` a failed answer whose body is multipart is returned, not raised: a failed
        $batch answers 400 with the failing part inside, and only that part says what went wrong."""
        if url.startswith(("http://", "https://")):
            self._refuse_foreign(method, url)
        request_headers = dict(headers or {})
        request_headers["x-ms-client-request-id"] = correlation_id or str(uuid.uuid4())
        if json is not None:
            content = dump_bytes(json)
            request_headers.setdefault("Content-Type", "application/json")
        attempt = 0
        refused: str | None = None  # the token the service answered 401 to, asked afresh once
        lost = False  # an attempt went unanswered: it may have been applied
        while True:
            attempt += 1
            try:
                async with self.throttle.slot() as sent_at:
                    # Taken once the request may go: a throttle pause does not run down the token's life.
                    if refused is None:
                        token = await self._tokens.token(self.resource)
                    else:
                        token = await self._tokens.token(self.resource, refused=refused)
                    request_headers["Authorization"] = f"Bearer {token}"
                    self.calls += 1
                    response = await self._send(method, url, request_headers, params, content)
                    if response.status_code == 429:
                        # Held back together no longer than one request waits in-call: a longer pause is
                        # handed back as retry-later anyway, and would hold every other message's
                        # request (and its lock) for it.
                        paused = retry_after_seconds(response)
                        self.throttle.throttled(sent_at, None if paused is None else min(paused, self._max_wait))
                    elif response.status_code < 500:
                        self.throttle.succeeded()
            # A body that is not the Content-Encoding it claims (DecodingError) says no more of the
            # row than a dropped connection does: tried again, then retry-later like it.
            except (httpx.TimeoutException, httpx.TransportError, httpx.DecodingError) as exc:
                if attempt > self._max_retries:
                    raise TransientServiceError(
                        self.system, 0, f"{type(exc).__name__}: {exc or 'no answer'}", method=method, url=url
                    ) from exc
                lost = True
                await self._sleep(self._backoff(attempt))
                continue
            if succeeded(response.status_code):
                return response
            if response.status_code < 400:
                raise unfollowed(self.system, response.status_code, response.headers.get("Location"), method, url)
            if response.status_code == 401:
                if refused is None:
                    # A token can be refused before it expires (revoked, the app's roles changed, a
                    # clock skewed): once, a token asked afresh.
                    refused = token
                    continue
                raise self._refused(response, method, url)
            if multipart_errors and response.headers.get("Content-Type", "").startswith("multipart/"):
                response.extensions[AFTER_LOST_ATTEMPT] = lost
                return response
            error = self._classify(response)
            error.after_lost_attempt = lost
            if not isinstance(error, TransientServiceError):
                raise error
            wait = retry_after_seconds(response)
            if attempt > self._max_retries or (wait is not None and wait > self._max_wait):
                error.retry_after = wait
                raise error
            await self._sleep(wait if wait is not None else self._backoff(attempt))

    def _refused(self, response: httpx.Response, method: str, url: str) -> AuthError:
        """401 to a token asked afresh: the identity, not the record. A retry-later naming what the
        service said, never a record parked as rejected (replaying it would fail the same way)."""
        challenge = response.headers.get("WWW-Authenticate") or "no WWW-Authenticate challenge"
        said = self._classify(response).service_message
        return AuthError(
            f"{self.system} refused a freshly acquired token for {self.resource} (401; {challenge[:300]}; "
            f"{said[:300]}) on {method} {url[:300]}: check that the application is registered in the environment "
            "(Dataverse: an application user with a security role; Finance: System administration > Microsoft "
            "Entra applications)"
        )

    async def _send(
        self, method: str, url: str, headers: dict[str, str], params: dict[str, str] | None, content: bytes | None
    ) -> httpx.Response:
        if self._transport is None:
            return await self._client.request(method, url, headers=headers, params=params, content=content)
        # Straight to the transport with an httpx.Request: the client's cookie jar (urllib's, run on every
        # answer although neither service authenticates by cookie), base-URL merge and header copies
        # were as much CPU per call as the connection itself. Built from a stream with its Host and
        # Content-Length given, as httpx's own transports receive it: from `content=` httpx normalizes
        # the headers twice and scans them once per default header, 25 µs a request against 15.
        target, host = self._url(url, tuple(params.items()) if params else ())
        body = content or b""
        request_headers = {**_DEFAULT_HEADERS, **headers, "Host": host}
        if body or method in _SENDS_BODY:
            request_headers["Content-Length"] = str(len(body))
        stream = httpx.ByteStream(body)
        request = httpx.Request(
            method, target, headers=request_headers, stream=stream, extensions={"timeout": self._timeout}
        )
        request.read()  # the body as `request.content`, as `content=` would have left it
        response = await self._transport.handle_async_request(request)
        try:
            await response.aread()
        finally:
            await response.aclose()
        return response

    def _refuse_foreign(self, method: str, url: str) -> None:
        """An absolute URL is one a service sent (a next or delta link, a cursor saved from one): it is
        followed, with the token, only under the configured service URL. A link to another host would
        hand that host the token and feed its rows to the flows; one to another path of the same host
        could read another entity set, or a part of the service the identity was not meant to use."""
        parsed, base = httpx.URL(url), self._base_url
        same_origin = (parsed.scheme, parsed.host, parsed.port) == (base.scheme, base.host, base.port)
        if same_origin and parsed.path.startswith(self._base_prefix) and not parsed.userinfo:
            return
        raise PermanentServiceError(
            self.system,
            0,
            f"the service linked to {url[:300]!r}, outside {self._base}: not followed (a link is followed only "
            "under the configured service URL, the only place the token is sent)",
            method=method,
            url=self._base,
        )

    @functools.lru_cache(maxsize=4096)  # noqa: B019 - one engine a service, for the process's life
    def _url(self, url: str, params: tuple[tuple[str, str], ...]) -> tuple[httpx.URL, str]:
        """The parsed URL and its Host header: httpx parses in Python, and a flow writes to the same
        few URLs all day."""
        absolute = url if url.startswith(("http://", "https://")) else self._base + url.lstrip("/")
        parsed = httpx.URL(absolute, params=dict(params)) if params else httpx.URL(absolute)
        return parsed, parsed.netloc.decode("ascii")

    def classify_part(
        self,
        status: int,
        body: Any,
        method: str = "POST",
        url: str = "$batch",
        headers: dict[str, str] | None = None,
    ) -> ServiceError:
        """The typed error of one $batch part that did not succeed, as if it had been its own request."""
        if status < 400:
            location = next((v for k, v in (headers or {}).items() if k.lower() == "location"), None)
            return unfollowed(self.system, status, location, method, url)
        request = httpx.Request(method, self._url(url, ())[0])
        return self._classify(httpx.Response(status, content=dump_bytes(body or {}), request=request))

    async def close(self) -> None:
        await self._client.aclose()


class ODataClient:
    """What both service clients share: the request engine, call counting, $metadata, closing."""

    system = ""
    api_path = ""  # under the environment URL: the base of every request and of $batch parts

    def __init__(
        self,
        settings: Settings,
        tokens: TokenProvider,
        *,
        sleep: Sleep | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        resource = self.environment_url(settings)
        self.http = HttpEngine(
            self.system,
            resource + self.api_path,
            resource,
            tokens,
            settings,
            self.classify_response,
            sleep=sleep or asyncio.sleep,
            client=client,
        )

    @staticmethod
    def environment_url(settings: Settings) -> str:
        raise NotImplementedError

    @staticmethod
    def classify_response(response: httpx.Response) -> ServiceError:
        raise NotImplementedError

    @property
    def calls(self) -> int:
        return self.http.calls

    async def batch(self, requests: list[BatchRequest]) -> list[BatchResponse]:
        """Send the requests as one atomic changeset; raises the failing part's error, typed."""
        body, content_type = build_batch([requests], self.api_path)
        response = await self.http.request(
            "POST",
            "$batch",
            headers={"Content-Type": content_type, "Accept": "application/json"},
            content=body,
            multipart_errors=True,
        )
        parts = self.batch_answers(response)
        for number, part in enumerate(parts):
            if not succeeded(part.status):
                error = self.http.classify_part(part.status, part.body, headers=part.headers)
                # A failed changeset answers with the failing part alone: its Content-ID (our 1-based request
                # number) says which request it was, so a person can find the row.
                index = int(part.content_id) - 1 if part.content_id and part.content_id.isdigit() else number
                failed = requests[min(index, len(requests) - 1)]
                error.method, error.url = failed.method, failed.url
                error.service_message = f"{failed.method} {failed.url}: {error.service_message}"
                error.after_lost_attempt = bool(response.extensions.get(AFTER_LOST_ATTEMPT))
                raise error
        if response.status_code >= 400:
            error = self.http.classify_part(response.status_code, None)
            error.after_lost_attempt = bool(response.extensions.get(AFTER_LOST_ATTEMPT))
            raise error
        return parts

    def batch_answers(self, response: httpx.Response) -> list[BatchResponse]:
        """The answers of a `$batch`. One that cannot be read leaves unknown which writes were applied:
        a transient failure, so the writes are tried again (each is an upsert, or a create whose
        repeat is answered "already exists"), never an error that escapes into redelivery."""
        try:
            return parse_batch_response(response.content, response.headers.get("Content-Type", ""))
        except (ValueError, UnicodeDecodeError) as exc:
            raise TransientServiceError(
                self.system,
                response.status_code,
                f"the $batch answer could not be read ({str(exc)[:300]}); whether its writes were applied is not "
                "known, so they are tried again",
                method="POST",
                url="$batch",
            ) from exc

    async def metadata(self) -> str:
        response = await self.http.request("GET", "$metadata", headers={"Accept": "application/xml"})
        return response.text

    async def close(self) -> None:
        await self.http.close()
