"""read_ahead alone, over a source that records when each item is asked for: one ahead, never two,
errors in their place, and a source closed when the caller stops early."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator

import pytest

from shared.operations.read_ahead import in_turn, read_ahead


class Source:
    """Items 0..n-1, each answered after the event loop has turned a few times (as a GET would be);
    `fail_at` raises instead of answering that item."""

    def __init__(self, n: int, fail_at: int | None = None) -> None:
        self.n = n
        self.fail_at = fail_at
        self.log: list[str] = []
        self.closed = False
        self.in_flight = 0
        self.most_in_flight = 0

    async def items(self) -> AsyncIterator[int]:
        try:
            for i in range(self.n):
                self.log.append(f"ask {i}")
                self.in_flight += 1
                self.most_in_flight = max(self.most_in_flight, self.in_flight)
                try:
                    for _ in range(3):
                        await asyncio.sleep(0)
                finally:
                    self.in_flight -= 1
                if i == self.fail_at:
                    raise ConnectionError(f"item {i} failed")
                yield i
        finally:
            self.closed = True


async def feed(items: AsyncIterator[int], log: list[str]) -> None:
    """What initial sync does with a page: work on it, with awaits in between (the bus's sends)."""
    async for i in items:
        for _ in range(10):
            await asyncio.sleep(0)
        log.append(f"fed {i}")


async def test_the_next_item_is_asked_for_while_this_one_is_fed_and_no_further() -> None:
    source = Source(4)
    await feed(read_ahead(source.items()), source.log)
    log = source.log
    assert log == ["ask 0", "ask 1", "fed 0", "ask 2", "fed 1", "ask 3", "fed 2", "fed 3"]
    assert source.most_in_flight == 1 and source.closed


async def test_in_turn_asks_only_after_each_item_is_fed() -> None:
    source = Source(3)
    await feed(in_turn(source.items()), source.log)
    assert source.log == ["ask 0", "fed 0", "ask 1", "fed 1", "ask 2", "fed 2"]


async def test_an_item_that_fails_ahead_fails_only_when_the_caller_asks_for_it() -> None:
    source = Source(4, fail_at=2)
    with pytest.raises(ConnectionError, match="item 2 failed"):
        await feed(read_ahead(source.items()), source.log)
    # Items 0 and 1 were fed whole although item 2 failed while item 1 was being fed.
    assert source.log == ["ask 0", "ask 1", "fed 0", "ask 2", "fed 1"]


async def test_a_caller_that_stops_early_leaves_no_read_running() -> None:
    source = Source(10)
    async with contextlib.aclosing(read_ahead(source.items())) as items:
        async for i in items:
            if i == 1:
                break
    # The read of item 2 had begun (item 1 was being fed); it was cancelled, not left running.
    assert "ask 2" in source.log and source.closed and source.in_flight == 0
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert not any("_next" in repr(t) for t in others)
    assert "ask 3" not in source.log


async def test_an_unread_failure_ahead_of_an_early_stop_is_dropped_quietly() -> None:
    loop = asyncio.get_running_loop()
    reported: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _, context: reported.append(context))
    try:
        source = Source(3, fail_at=1)
        async with contextlib.aclosing(read_ahead(source.items())) as items:
            async for _ in items:
                for _ in range(10):
                    await asyncio.sleep(0)  # item 1 fails meanwhile
                break
        # A task whose error nobody retrieved is reported when it is collected.
        gc.collect()
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(None)
    # Item 1 was asked for and failed ahead; nothing asked for item 2, and nothing was reported lost.
    assert source.log == ["ask 0", "ask 1"]
    assert reported == []
