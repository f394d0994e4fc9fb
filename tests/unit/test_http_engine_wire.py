"""What the request engine puts on the socket: the head and body a service receives, byte for byte."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from shared import telemetry
from shared.auth import StaticToken
from shared.clients.http import HttpEngine
from shared.errors import PermanentServiceError, ServiceError
from shared.settings import Settings


@dataclass
class Received:
    head: list[tuple[str, str]] = field(default_factory=list)
    line: str = ""
    body: bytes = b""

    def values(self, name: str) -> list[str]:
        return [value for key, value in self.head if key.lower() == name.lower()]


@dataclass
class Server:
    url: str
    received: list[Received]


ANSWER = b'{"value": [{"Name": "a"}]}'


@contextlib.asynccontextmanager
async def _listening() -> AsyncIterator[Server]:
    received: list[Received] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                break
            line, *lines = head.decode("latin-1").split("\r\n")
            pairs = [header.partition(":") for header in lines if header]
            got = Received(line=line, head=[(name.strip(), value.strip()) for name, _, value in pairs])
            length = int((got.values("Content-Length") or ["0"])[0])
            got.body = await reader.readexactly(length)
            received.append(got)
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Id: 7\r\n"
                + f"Content-Length: {len(ANSWER)}\r\n\r\n".encode()
                + ANSWER
            )
            await writer.drain()
        writer.close()

    listening = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = listening.sockets[0].getsockname()[1]
    async with listening:
        yield Server(f"http://127.0.0.1:{port}/data/", received)


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    async with _listening() as listening:
        yield listening


def _classify(response: httpx.Response) -> ServiceError:
    return PermanentServiceError("finance", response.status_code, response.text)


def _engine(server: Server) -> HttpEngine:
    settings = Settings.model_validate(
        {
            "dataverse_url": "http://127.0.0.1:1",
            "finance_url": server.url.removesuffix("/data/"),
            "auth_mode": "none",
            "state_backend": "sqlite",
            "bus_backend": "local",
            "http_max_retries": 0,
        }
    )
    return HttpEngine("finance", server.url, server.url, StaticToken("t0ken"), settings, _classify)


@pytest.fixture
async def engine(server: Server) -> AsyncIterator[HttpEngine]:
    http = _engine(server)
    yield http
    await http.close()


async def test_a_body_arrives_whole_with_one_host_and_its_length(server: Server, engine: HttpEngine) -> None:
    row = {"ProjectId": "PRJ-1", "Description": "Müller & Ærø", "Amount": Decimal("12.50")}
    response = await engine.request("POST", "Projects", json=row, correlation_id="c-1")

    assert response.status_code == 200 and response.headers["X-Id"] == "7"
    assert response.json() == {"value": [{"Name": "a"}]}
    (got,) = server.received
    assert got.line == "POST /data/Projects HTTP/1.1"
    assert json.loads(got.body, parse_float=Decimal) == row
    assert b'"Amount":12.50' in got.body
    host = server.url.split("/")[2]
    assert got.values("Host") == [host]
    assert got.values("Content-Length") == [str(len(got.body))]
    assert got.values("Content-Type") == ["application/json"]
    assert got.values("Authorization") == ["Bearer t0ken"]
    assert got.values("x-ms-client-request-id") == ["c-1"]
    assert got.values("User-Agent") == ["projops-sync"]


async def test_a_get_says_no_length_and_an_empty_post_says_zero(server: Server, engine: HttpEngine) -> None:
    await engine.request("GET", "Projects", params={"$filter": "ProjectId eq 'a b'"})
    await engine.request("POST", "Projects/Microsoft.Dynamics.DataEntities.Touch")

    get, post = server.received
    assert get.line == "GET /data/Projects?%24filter=ProjectId+eq+%27a+b%27 HTTP/1.1"
    assert get.values("Content-Length") == [] and get.body == b""
    assert post.values("Content-Length") == ["0"]
    assert len(get.values("Host")) == len(post.values("Host")) == 1


async def test_a_traced_request_carries_its_trace_and_its_body(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """With Application Insights configured, requests go through OpenTelemetry's transport, which
    replaces the request's headers to add `traceparent`: the body and its length still arrive."""
    monkeypatch.setattr(telemetry, "_configured", True)
    http = _engine(server)
    tracer = TracerProvider().get_tracer("test")
    try:
        with trace.use_span(tracer.start_span("flow"), end_on_exit=True):
            await http.request("PATCH", "Projects(ProjectId='P-1')", json={"Name": "x"})
    finally:
        await http.close()

    (got,) = server.received
    assert len(got.values("traceparent")) == 1
    assert got.body == b'{"Name":"x"}' and got.values("Content-Length") == ["12"]


async def test_a_link_outside_the_service_is_not_followed_and_never_gets_the_token(
    server: Server, engine: HttpEngine
) -> None:
    """Next and delta links (and cursors saved from them) are absolute URLs a service sent: followed
    only under the configured service URL, or the token and the flows' input would come from elsewhere."""
    async with _listening() as elsewhere:
        links = [
            elsewhere.url + "Projects?$skip=2",  # another host or port
            server.url.removesuffix("data/") + "api/services/Other",  # the same host, outside the service
            server.url + "../metadata/Projects",  # climbs out of the service path
            server.url.replace("http://", "http://someone@") + "Projects",  # credentials of its own
            server.url.replace("http://", "https://") + "Projects",  # another scheme
        ]
        for link in links:
            with pytest.raises(PermanentServiceError, match="not followed"):
                await engine.request("GET", link)
        assert elsewhere.received == []
    assert server.received == []
    await engine.request("GET", server.url + "Projects?$skip=2")  # under the service: followed
    assert [got.line for got in server.received] == ["GET /data/Projects?$skip=2 HTTP/1.1"]
    assert server.received[0].values("Authorization") == ["Bearer t0ken"]
