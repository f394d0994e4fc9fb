"""A small per-process TTL cache for lookups (a project's number, a company's code ...)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any


class TtlCache:
    def __init__(self, ttl_seconds: float, *, max_entries: int = 50_000, clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self._clock = clock
        self._items: dict[Hashable, tuple[float, Any]] = {}
        self._inflight: dict[Hashable, asyncio.Future[Any]] = {}
        self.hits = 0
        self.misses = 0
        self.fetches = 0

    def get(self, key: Hashable) -> Any | None:
        item = self._items.get(key)
        if item is None or item[0] < self._clock():
            if item is not None:
                del self._items[key]
            self.misses += 1
            return None
        self.hits += 1
        return item[1]

    def put(self, key: Hashable, value: Any) -> None:
        if self.ttl <= 0:
            return
        if len(self._items) >= self.max_entries:
            # Dropping everything is crude but bounded; lookups repopulate within one TTL.
            self._items.clear()
        self._items[key] = (self._clock() + self.ttl, value)

    def clear(self) -> None:
        self._items.clear()

    async def get_or_fetch(self, key: Hashable, fetch: Callable[[], Awaitable[Any]]) -> Any:
        """The cached value, or the one `fetch` returns, fetched once however many callers miss the
        same key at the same moment (many sessions starting together would otherwise each ask)."""
        cached = self.get(key)
        if cached is not None:
            return cached
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        self.fetches += 1
        try:
            value = await fetch()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            # Retrieved here so an error no other caller waited for is not reported as unhandled.
            future.exception()
            raise
        else:
            future.set_result(value)
            self.put(key, value)
            return value
        finally:
            del self._inflight[key]
