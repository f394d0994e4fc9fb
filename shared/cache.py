"""A small per-process TTL cache for lookups (a project's number, a company's code ...)."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Any


class TtlCache:
    def __init__(self, ttl_seconds: float, *, max_entries: int = 50_000, clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self._clock = clock
        self._items: dict[Hashable, tuple[float, Any]] = {}
        self.hits = 0
        self.misses = 0

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
