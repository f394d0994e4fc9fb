"""What both simulators share: OData key segments and $filter, $batch multipart, fault injection,
the request log, and serving a Starlette app with uvicorn on a loopback socket in the running loop."""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import unquote

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.jsonio import dumps, loads

Sink = Callable[[str, bytes, dict[str, str], str], Awaitable[None]]


class ODataError(Exception):
    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        super().__init__(str(body))
        self.status = status
        self.body = body
        self.headers = headers or {}


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(body), status_code=status, headers=headers, media_type="application/json")


def json_object(body: bytes, fail: Callable[[str], ODataError]) -> dict[str, Any]:
    """A request body as a JSON object, or the service's 400 saying what is wrong with it."""
    try:
        data = loads(body) if body else {}
    except ValueError as exc:
        raise fail(f"The request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise fail("The request body must be a JSON object.")
    return data


def request_path(request: Request, prefix: str) -> str:
    """The resource path after `prefix`, percent-decoded exactly once, as a web server decodes it.

    The ASGI `path` is already decoded; decoding it again would turn %2527 into a quote, which no
    real service does, and would let the sandbox accept what production refuses."""
    raw = request.scope.get("raw_path")
    text = raw.decode("latin-1") if isinstance(raw, bytes) else request.url.path
    return unquote(text.split("?", 1)[0][len(prefix) :])


# --- keys -----------------------------------------------------------------------------------------

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def is_guid(text: str) -> bool:
    return bool(_GUID.match(text))


_MOMENT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$")


def parse_literal(text: str) -> Any:
    text = text.strip()
    if text.startswith("'") and text.endswith("'"):
        return text[1:-1].replace("''", "'")
    if text in ("true", "false"):
        return text == "true"
    if text == "null":
        return None
    if is_guid(text):
        return text.lower()
    if _MOMENT.match(text):
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    enum = re.match(r"^[\w.]+'(.*)'$", text)
    if enum:
        return enum.group(1)
    try:
        return Decimal(text) if "." in text else int(text)
    except Exception:
        return text


def split_top(text: str, sep: str = ",") -> list[str]:
    """Split on `sep` outside quotes."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text:
        if char == "'":
            quoted = not quoted
        if char == sep and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def parse_key(segment: str) -> dict[str, Any] | str:
    """`(guid)` → the id; `(a='x',b=1)` → {"a": "x", "b": 1}."""
    inner = segment.strip()
    if inner.startswith("(") and inner.endswith(")"):
        inner = inner[1:-1]
    if "=" not in inner:
        value = parse_literal(inner)
        return str(value)
    key: dict[str, Any] = {}
    for part in split_top(inner):
        name, _, value = part.partition("=")
        key[name.strip()] = parse_literal(value)
    return key


def split_resource(path: str) -> tuple[str, str | None, str | None]:
    """`set(key)/prop` → (set, key segment or None, trailing part or None)."""
    match = re.match(r"^([^()/]+)(\((?:[^()']|'[^']*')*\))?(?:/(.*))?$", path)
    if not match:
        return path, None, None
    return match.group(1), match.group(2), match.group(3)


# --- $filter --------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<lp>\()|(?P<rp>\))|(?P<comma>,)|"
    # An Edm.DateTimeOffset literal is bare: 2026-12-02T05:04:22.2157Z (OData ABNF dateTimeOffsetValue).
    r"(?P<moment>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2}))|"
    r"(?P<word>[\w.$@/-]+(?:'(?:[^']|'')*')?))"
)


def _tokens(text: str) -> list[str]:
    position, tokens = 0, []
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            if text[position:].strip() == "":
                break
            raise ValueError(f"cannot parse $filter at: {text[position:]!r}")
        tokens.append(match.group(0).strip())
        position = match.end()
    return [t for t in tokens if t]


Getter = Callable[[dict[str, Any], str], Any]


class Filter:
    """$filter with eq ne gt ge lt le, and or not, parentheses, startswith/contains/endswith."""

    def __init__(self, text: str, *, wildcard: bool = False) -> None:
        # Finance reads `*` in a string compared with eq or ne as "any characters", not as itself.
        self.wildcard = wildcard
        # (operator, property, literal as written) of every comparison, for a service that checks types.
        self.comparisons: list[tuple[str, str, str]] = []
        self.tokens = _tokens(text)
        self.position = 0
        self.tree = self._or()
        if self.position != len(self.tokens):
            raise ValueError(f"unexpected {self.tokens[self.position]!r} in $filter")

    def _peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def _take(self) -> str:
        token = self._peek()
        if token is None:
            raise ValueError("$filter ends too early")
        self.position += 1
        return token

    def _or(self) -> Any:
        node = self._and()
        while self._peek() == "or":
            self._take()
            node = ("or", node, self._and())
        return node

    def _and(self) -> Any:
        node = self._not()
        while self._peek() == "and":
            self._take()
            node = ("and", node, self._not())
        return node

    def _not(self) -> Any:
        if self._peek() == "not":
            self._take()
            return ("not", self._not())
        return self._comparison()

    def _comparison(self) -> Any:
        if self._peek() == "(":
            self._take()
            node = self._or()
            if self._take() != ")":
                raise ValueError("missing ) in $filter")
            return node
        left = self._take()
        if self._peek() == "(":  # function call
            self._take()
            args = [self._take()]
            while self._peek() == ",":
                self._take()
                args.append(self._take())
            if self._take() != ")":
                raise ValueError("missing ) in $filter function")
            return ("call", left, args)
        operator = self._take()
        if operator not in ("eq", "ne", "gt", "ge", "lt", "le"):
            raise ValueError(f"unsupported operator {operator!r} in $filter")
        written = self._take()
        self.comparisons.append((operator, left, written))
        return (operator, left, parse_literal(written))

    def matches(self, row: dict[str, Any], get: Getter) -> bool:
        return bool(self._eval(self.tree, row, get))

    def fields(self) -> set[str]:
        """The property names the filter reads, for a service that refuses unknown ones."""
        found: set[str] = set()

        def walk(node: Any) -> None:
            if node[0] in ("or", "and"):
                walk(node[1])
                walk(node[2])
            elif node[0] == "not":
                walk(node[1])
            elif node[0] == "call":
                found.add(node[2][0])
            else:
                found.add(node[1])

        walk(self.tree)
        return found

    def _eval(self, node: Any, row: dict[str, Any], get: Getter) -> bool:
        kind = node[0]
        if kind == "or":
            return self._eval(node[1], row, get) or self._eval(node[2], row, get)
        if kind == "and":
            return self._eval(node[1], row, get) and self._eval(node[2], row, get)
        if kind == "not":
            return not self._eval(node[1], row, get)
        if kind == "call":
            function, args = node[1].lower(), node[2]
            value = str(get(row, args[0]) or "").lower()
            needle = str(parse_literal(args[1])).lower()
            return {"startswith": value.startswith, "endswith": value.endswith}.get(function, lambda n: n in value)(
                needle
            )
        operator, name, literal = node
        if self.wildcard and operator in ("eq", "ne") and isinstance(literal, str) and "*" in literal:
            value = get(row, name)
            pattern = ".*".join(re.escape(part) for part in literal.split("*"))
            found = value is not None and re.fullmatch(pattern, str(value), re.IGNORECASE) is not None
            return found if operator == "eq" else not found
        return compare(operator, get(row, name), literal)


def _comparable(value: Any) -> Any:
    if isinstance(value, datetime):
        # One length for every moment, so that moments with and without fractions order as times.
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        return value.lower()
    return value


def sort_key(value: Any) -> tuple[int, Any]:
    """A value's place in an ascending $orderby, consistent with `compare`: null first, as SQL sorts it."""
    return (0, "") if value is None else (1, _comparable(value))


def literal_type(written: str) -> str:
    """The EDM type family of a $filter literal as written: string, guid, datetime, number, enum, bool, null."""
    text = written.strip()
    if text.startswith("'") and text.endswith("'"):
        return "string"
    if text in ("true", "false"):
        return "bool"
    if text == "null":
        return "null"
    if is_guid(text):
        return "guid"
    if _MOMENT.match(text):
        return "datetime"
    if re.match(r"^[\w.]+'(.*)'$", text):
        return "enum"
    return "number"


def compare(operator: str, value: Any, literal: Any) -> bool:
    left, right = _comparable(value), _comparable(literal)
    if operator == "eq":
        return bool(left == right)
    if operator == "ne":
        return bool(left != right)
    if left is None or right is None:
        return False
    try:
        return bool({"gt": left > right, "ge": left >= right, "lt": left < right, "le": left <= right}[operator])
    except TypeError:
        return False


# --- $batch ---------------------------------------------------------------------------------------


@dataclass
class BatchPart:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    content_id: str | None = None
    changeset: str | None = None


def _boundary(content_type: str) -> str:
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not match:
        raise ValueError("multipart body without a boundary")
    return match.group(1)


def parse_batch(body: bytes, content_type: str) -> list[BatchPart]:
    parts: list[BatchPart] = []
    text = body.decode("utf-8")
    for chunk in _multipart_chunks(text, _boundary(content_type)):
        head, _, rest = chunk.partition("\r\n\r\n") if "\r\n\r\n" in chunk else chunk.partition("\n\n")
        headers = _headers(head)
        if headers.get("content-type", "").startswith("multipart/mixed"):
            changeset = _boundary(headers["content-type"])
            for inner in _multipart_chunks(rest, changeset):
                ihead, _, irest = inner.partition("\r\n\r\n") if "\r\n\r\n" in inner else inner.partition("\n\n")
                parts.append(_http_part(irest, _headers(ihead), changeset))
        else:
            parts.append(_http_part(rest, headers, None))
    return parts


def _multipart_chunks(text: str, boundary: str) -> list[str]:
    pieces = re.split(rf"--{re.escape(boundary)}(?:--)?\s*\r?\n?", text)
    return [p for p in pieces[1:] if p.strip()]


def _headers(block: str) -> dict[str, str]:
    headers = {}
    for line in block.splitlines():
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return headers


def _http_part(text: str, outer: dict[str, str], changeset: str | None) -> BatchPart:
    normalized = text.replace("\r\n", "\n")
    request_line, _, rest = normalized.lstrip("\n").partition("\n")
    method, url = request_line.split(" ")[:2]
    head, _, body = rest.partition("\n\n")
    return BatchPart(method, url, _headers(head), body.strip().encode(), outer.get("content-id"), changeset)


def build_batch_response(results: list[tuple[BatchPart, int, dict[str, str], bytes]]) -> tuple[bytes, str]:
    boundary = f"batchresponse_{uuid.uuid4()}"
    lines: list[str] = []
    current_changeset: str | None = None
    changeset_boundary = ""
    for part, status, headers, body in results:
        if part.changeset != current_changeset:
            if current_changeset is not None:
                lines.append(f"--{changeset_boundary}--")
            current_changeset = part.changeset
            if current_changeset is not None:
                changeset_boundary = f"changesetresponse_{uuid.uuid4()}"
                lines += [
                    f"--{boundary}",
                    f"Content-Type: multipart/mixed; boundary={changeset_boundary}",
                    "",
                ]
        lines.append(f"--{changeset_boundary if current_changeset else boundary}")
        lines += ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
        if part.content_id:
            lines.append(f"Content-ID: {part.content_id}")
        lines += ["", f"HTTP/1.1 {status} {'OK' if status < 400 else 'Error'}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        lines += ["", body.decode("utf-8")]
    if current_changeset is not None:
        lines.append(f"--{changeset_boundary}--")
    lines.append(f"--{boundary}--")
    return "\r\n".join(lines).encode(), f"multipart/mixed; boundary={boundary}"


# --- faults and the request log -------------------------------------------------------------------


@dataclass
class Faults:
    latency_ms: float = 0.0
    throttle_share: float = 0.0
    retry_after_seconds: int = 1
    error_share: float = 0.0
    drop_share: float = 0.0
    # The request is applied, then the connection drops before the answer arrives: the caller must
    # treat the outcome as unknown and its retry must not apply the change twice.
    drop_after_share: float = 0.0
    seed: int | None = None
    _random: random.Random = field(default_factory=random.Random, repr=False)

    def reseed(self) -> None:
        self._random = random.Random(self.seed)

    def roll(self, share: float) -> bool:
        return share > 0 and self._random.random() < share


@dataclass
class LoggedRequest:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: str
    status: int = 0
    at: float = field(default_factory=time.time)


class RequestLog(list[LoggedRequest]):
    """The requests a simulator received, newest last; past `limit` the oldest half is let go, so a long
    run's log stays bounded. `total` counts every request ever logged."""

    def __init__(self, limit: int = 50_000) -> None:
        super().__init__()
        self.limit = limit
        self.total = 0

    def append(self, entry: LoggedRequest) -> None:
        self.total += 1
        if len(self) >= self.limit:
            del self[: len(self) // 2]
        super().append(entry)

    def clear(self) -> None:
        self.total = 0
        super().clear()


NO_FAULTS_HEADER = b"x-sandbox-no-faults"


class FaultsAndLog:
    """ASGI middleware: record every request, and inject latency, 429s, 500s and dropped connections."""

    def __init__(
        self,
        app: ASGIApp,
        faults: Faults,
        log: list[LoggedRequest],
        throttled: Callable[[int], Response],
        failed: Callable[[], Response],
    ) -> None:
        self.app = app
        self.faults = faults
        self.log = log
        self.throttled = throttled
        self.failed = failed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        body = await request.body()
        entry = LoggedRequest(
            scope["method"],
            scope["path"],
            scope.get("query_string", b"").decode(),
            {k.decode().lower(): v.decode() for k, v in scope["headers"]},
            body.decode("utf-8", "replace"),
        )
        sandbox_control = scope["path"].startswith("/sandbox")
        if not sandbox_control:
            self.log.append(entry)
        # A person's own edits in a fault run are not what is under test: they may opt out of faults.
        exempt = sandbox_control or any(name == NO_FAULTS_HEADER for name, _ in scope["headers"])
        replayed = False

        async def replay_receive() -> Message:
            nonlocal replayed
            if replayed:
                return {"type": "http.disconnect"}
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def logging_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                entry.status = message["status"]
            await send(message)

        faults = self.faults
        if not exempt:
            if faults.latency_ms:
                await asyncio.sleep(faults.latency_ms / 1000)
            if faults.roll(faults.drop_share):
                entry.status = -1
                # Start a response and break off mid-body: the client sees the connection drop.
                await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1000")]})
                await send({"type": "http.response.body", "body": b"{", "more_body": True})
                raise ConnectionAbortedError("sandbox fault: dropped connection")
            if faults.roll(faults.throttle_share):
                await self.throttled(faults.retry_after_seconds)(scope, replay_receive, logging_send)
                return
            if faults.roll(faults.error_share):
                await self.failed()(scope, replay_receive, logging_send)
                return
            if faults.roll(faults.drop_after_share):
                entry.status = -2

                async def swallow(message: Message) -> None:
                    return None

                await self.app(scope, replay_receive, swallow)
                await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1000")]})
                await send({"type": "http.response.body", "body": b"{", "more_body": True})
                raise ConnectionAbortedError("sandbox fault: dropped the connection after applying the request")
        await self.app(scope, replay_receive, logging_send)


# --- serving --------------------------------------------------------------------------------------


class Served:
    """An ASGI app served by uvicorn on a loopback socket, inside the running event loop."""

    def __init__(self) -> None:
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self.port = 0

    async def start(self, app: ASGIApp, host: str = "127.0.0.1", port: int = 0) -> str:
        # IPPROTO_TCP named, not left 0: asyncio turns Nagle off only on sockets that say they are TCP,
        # and with it on every answer (headers, then body, in two writes) waited out the client's 40 ms
        # delayed ACK. TCP_NODELAY on the listener is inherited by each connection it accepts.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(512)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            app, lifespan="off", log_level="critical", access_log=False, loop="asyncio", timeout_graceful_shutdown=2
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)
        return f"http://{host}:{self.port}"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), 5)
            except TimeoutError:
                if self._server is not None:
                    self._server.force_exit = True
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task


# --- what both simulators share ------------------------------------------------------------------

Handler = Callable[[BatchPart, str, dict[str, str]], tuple[int, dict[str, str], bytes, list[Any]]]


class Simulator:
    """Serving, fault injection, the request log and $batch changesets, for both simulators."""

    def __init__(self, faults: Faults | None) -> None:
        self.faults = faults or Faults()
        self.requests = RequestLog()
        self._served = Served()
        self.url = ""

    def control_routes(self) -> list[Route]:
        return [
            Route("/sandbox/faults", self._faults_endpoint, methods=["POST"]),
            Route("/sandbox/requests", self._requests_endpoint, methods=["GET", "DELETE"]),
        ]

    async def serve(self, routes: list[Route], host: str, port: int) -> str:
        app = Starlette(routes=[*self.control_routes(), *routes])
        self.url = await self._served.start(
            FaultsAndLog(app, self.faults, self.requests, self.throttled, self.failed), host, port
        )
        return self.url

    async def stop(self) -> None:
        await self._served.stop()

    def set_faults(self, **values: Any) -> None:
        for name, value in values.items():
            setattr(self.faults, name, value)
        self.faults.reseed()

    def throttled(self, retry_after: int) -> Response:
        raise NotImplementedError

    def failed(self) -> Response:
        raise NotImplementedError

    async def _faults_endpoint(self, request: Request) -> Response:
        self.set_faults(**loads(await request.body()))
        return Response(status_code=204)

    async def _requests_endpoint(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.requests.clear()
            return Response(status_code=204)
        return json_response([entry.__dict__ for entry in self.requests])

    def snapshot(self) -> Any:
        raise NotImplementedError

    def restore(self, snapshot: Any) -> None:
        raise NotImplementedError

    def run_batch(
        self, parts: list[BatchPart], handle: Handler, *, continue_on_error: bool = False
    ) -> tuple[list[tuple[BatchPart, int, dict[str, str], bytes]], list[Any]]:
        """Run the parts in order; a changeset is atomic: on its first failure everything it did is undone."""
        results: list[tuple[BatchPart, int, dict[str, str], bytes]] = []
        effects: list[Any] = []
        ids: dict[str, str] = {}
        index = 0
        while index < len(parts):
            changeset = parts[index].changeset
            group = [parts[index]]
            while changeset and index + len(group) < len(parts) and parts[index + len(group)].changeset == changeset:
                group.append(parts[index + len(group)])
            index += len(group)
            saved = self.snapshot() if changeset else None
            group_results: list[tuple[BatchPart, int, dict[str, str], bytes]] = []
            group_effects: list[Any] = []
            failure = None
            for part in group:
                try:
                    status, headers, body, part_effects = handle(part, _resolve_ids(part.url, ids), ids)
                except ODataError as exc:
                    failure = (
                        part,
                        exc.status,
                        {"Content-Type": "application/json; odata.metadata=minimal"},
                        dumps(exc.body).encode(),
                    )
                    break
                group_effects.extend(part_effects)
                group_results.append((part, status, headers, body))
            if failure is not None and saved is not None:
                self.restore(saved)
                group_results, group_effects = [], []
            results.extend(group_results)
            effects.extend(group_effects)
            if failure is not None:
                # The failing part answers outside any changeset, as Dataverse does: the changeset it came
                # from was rolled back whole, so nothing of it is left to report.
                results.append((replace(failure[0], changeset=None), *failure[1:]))
                if not continue_on_error:
                    break
        return results, effects


def _resolve_ids(url: str, ids: dict[str, str]) -> str:
    for content_id, record in ids.items():
        url = url.replace(f"${content_id}", record)
    return url
