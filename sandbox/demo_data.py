"""What the demo's parts share: the ids people's apps use, HTTP calls as they make them, expectations."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from shared.jsonio import dumps

USMF_ID = "c0a1e000-0000-4000-8000-000000000001"
USPI_ID = "c0a1e000-0000-4000-8000-000000000002"
USD_ID = "c0a1e000-0000-4000-8000-0000000000d1"
CUSTOMER_ID = "c0a1e000-0000-4000-8000-0000000000a1"
CUSTOMER_GROUP_ID = "c0a1e000-0000-4000-8000-0000000000a2"
CATEGORY_ID = "c0a1e000-0000-4000-8000-0000000000c1"
RESOURCE_ID = "c0a1e000-0000-4000-8000-0000000000b1"
ROLE_ID = "c0a1e000-0000-4000-8000-0000000000e1"
PROJECT_ID = "c0a1e000-0000-4000-8000-000000000f01"
TIME_ACTUAL_ID = "c0a1e000-0000-4000-8000-0000000a0001"
EXPENSE_ACTUAL_ID = "c0a1e000-0000-4000-8000-0000000a0002"
SKIPPED_ACTUAL_ID = "c0a1e000-0000-4000-8000-0000000a0003"
ORDER_ID = "c0a1e000-0000-4000-8000-0000000c0d01"
ORDER_LINE_ID = "c0a1e000-0000-4000-8000-0000000c0d02"

Check = Callable[[], Awaitable[str | None]]


@dataclass
class Expectation:
    flow: str
    description: str
    check: Check
    problem: str | None = None


async def send(client: httpx.AsyncClient, method: str, url: str, body: dict[str, Any]) -> httpx.Response:
    # Money goes over the wire as exact JSON numbers, as the apps send it.
    return await client.request(method.upper(), url, content=dumps(body).encode())


async def ok(response: httpx.Response) -> httpx.Response:
    if response.status_code >= 400:
        raise RuntimeError(
            f"{response.request.method} {response.request.url} → {response.status_code}: {response.text}"
        )
    return response


async def call(client: httpx.AsyncClient, method: str, url: str, body: dict[str, Any] | None = None) -> httpx.Response:
    """One request that must succeed, as a person's app makes it."""
    return await ok(await client.request(method.upper(), url, content=None if body is None else dumps(body).encode()))
