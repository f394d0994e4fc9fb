"""Concurrent misses of one lookup key make one request (32 sessions starting together asked 98 times)."""

from __future__ import annotations

import asyncio

import pytest

from shared.cache import TtlCache
from shared.errors import MissingDependencyError


async def test_concurrent_misses_of_one_key_fetch_once() -> None:
    cache = TtlCache(60)
    calls = 0

    async def fetch() -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        return "PRJ-1001"

    values = await asyncio.gather(*(cache.get_or_fetch(("dv", "msdyn_projects", "p1"), fetch) for _ in range(32)))
    assert values == ["PRJ-1001"] * 32 and calls == 1
    assert await cache.get_or_fetch(("dv", "msdyn_projects", "p1"), fetch) == "PRJ-1001" and calls == 1


async def test_a_failed_fetch_fails_every_waiter_and_is_not_cached() -> None:
    cache = TtlCache(60)
    calls = 0

    async def fetch() -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        raise MissingDependencyError("msdyn_projects(p1) does not exist in Dataverse")

    results = await asyncio.gather(*(cache.get_or_fetch("k", fetch) for _ in range(5)), return_exceptions=True)
    assert calls == 1 and all(isinstance(r, MissingDependencyError) for r in results)
    with pytest.raises(MissingDependencyError):
        await cache.get_or_fetch("k", fetch)
    assert calls == 2  # asked again: a missing record may exist by now
