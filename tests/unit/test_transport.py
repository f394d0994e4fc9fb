"""The httpx-over-aiohttp transport against a real socket: answers, encodings and failures as httpx's."""

from __future__ import annotations

import asyncio
import gzip
import socket
from collections.abc import AsyncIterator

import httpx
import pytest

from shared.clients.transport import AiohttpPool


async def _serve(answer: bytes, delay: float = 0.0) -> tuple[asyncio.Server, str]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(delay)
        writer.write(answer)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}/data/Rows('a%20b')"


@pytest.fixture
async def pool() -> AsyncIterator[AiohttpPool]:
    transport = AiohttpPool(max_connections=4)
    yield transport
    await transport.aclose()


async def test_an_answer_arrives_whole_and_decoded(pool: AiohttpPool) -> None:
    body = gzip.compress(b'{"value": []}')
    head = f"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {len(body)}\r\nX-Id: 7\r\n\r\n"
    server, url = await _serve(head.encode() + body)
    async with server, httpx.AsyncClient(transport=pool) as client:
        response = await client.get(url)
    assert response.status_code == 200 and response.headers["X-Id"] == "7"
    assert response.json() == {"value": []}
    assert str(response.request.url).endswith("Rows('a%20b')")


async def test_a_refused_connection_is_httpx_connect_error(pool: AiohttpPool) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    with pytest.raises(httpx.ConnectError):
        await pool.handle_async_request(httpx.Request("GET", f"http://127.0.0.1:{port}/"))


async def test_no_answer_in_time_is_httpx_read_timeout(pool: AiohttpPool) -> None:
    server, url = await _serve(b"HTTP/1.1 204 No Content\r\n\r\n", delay=2.0)
    request = httpx.Request("GET", url, extensions={"timeout": {"connect": 1.0, "read": 0.2, "pool": 1.0}})
    async with server:
        with pytest.raises(httpx.ReadTimeout):
            await pool.handle_async_request(request)


async def test_a_connection_cut_mid_answer_is_httpx_read_error(pool: AiohttpPool) -> None:
    server, url = await _serve(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"partial"')
    async with server:
        with pytest.raises(httpx.ReadError):
            await pool.handle_async_request(httpx.Request("GET", url))
