"""The whole integration on loopback: both simulators, the local bus, the local host, the real functions."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from sandbox.environment import Sandbox, SandboxOptions
from sandbox.odata import LoggedRequest
from sandbox.scenario import seed_reference_data
from shared.jsonio import dumps
from shared.telemetry import FIGURES


@pytest.fixture
def options() -> SandboxOptions:
    return SandboxOptions()


@contextlib.asynccontextmanager
async def started(options: SandboxOptions) -> AsyncIterator[Sandbox]:
    """A running sandbox with the reference data both sides share, stopped afterwards."""
    environment = Sandbox(options)
    await environment.start()
    try:
        await seed_reference_data(environment)
        yield environment
    finally:
        await environment.stop()


@pytest.fixture
async def sandbox(options: SandboxOptions) -> AsyncIterator[Sandbox]:
    FIGURES.reset()
    async with started(options) as environment:
        yield environment


async def send(client: httpx.AsyncClient, method: str, url: str, body: dict[str, Any] | None = None) -> httpx.Response:
    response = await client.request(method, url, content=None if body is None else dumps(body).encode())
    assert response.status_code < 400, f"{method} {url}: {response.status_code} {response.text}"
    return response


def finance_write_requests(sandbox: Sandbox, collection: str) -> list[LoggedRequest]:
    """Every write Finance received for one collection, in order."""
    return [
        r
        for r in sandbox.finance.requests
        if r.method in ("POST", "PATCH", "DELETE") and r.path.startswith(f"/data/{collection}")
    ]


def finance_writes(sandbox: Sandbox, collection: str) -> list[tuple[str, str]]:
    """What Finance received for one collection: (method, path) of every write."""
    return [(r.method, r.path) for r in finance_write_requests(sandbox, collection)]


async def parked(sandbox: Sandbox) -> list[tuple[str, str, str]]:
    assert sandbox.runtime is not None
    return [(p.flow, p.reason, p.error) for p in await sandbox.runtime.engine.state.list_parked()]


async def until(condition: Callable[[], bool], limit_seconds: float = 30.0) -> None:
    deadline = time.monotonic() + limit_seconds
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"still waiting after {limit_seconds} s")
        await asyncio.sleep(0.01)
