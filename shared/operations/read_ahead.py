"""One page ahead: fetch the next page of a read while the caller works on the current one.

An initial sync alternates two waits that need not be taken in turn: the source answering a page
(its latency, and its own work rendering thousands of rows) and the bus taking that page's events.
`read_ahead` asks for page N+1 as soon as it hands out page N, so the two overlap.

Bounded: never more than one fetch in flight, so the caller's page and the one arriving are all
that is held (two pages, whatever the read's length). In order: a fetch that fails keeps its
error until the caller asks for that page, so the caller finishes (and records) the page it has
first, exactly as if it had fetched after it. A caller that stops early loses only the page read
ahead, which it never saw: the source read is cancelled or closed, not left running.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, TypeVar

T = TypeVar("T")

_END: Any = object()


async def _next(source: AsyncIterator[T]) -> T:
    # anext's default turns the end into a value: a task that raised StopAsyncIteration would
    # stand for both "no more pages" and a fault of the read itself.
    result: T = await anext(source, _END)
    return result


async def read_ahead(source: AsyncIterator[T]) -> AsyncGenerator[T, None]:
    """The items of `source`, each next one already being fetched while the caller holds this one.

    Close it (contextlib.aclosing) when stopping before the end: that cancels the fetch ahead."""
    fetch: asyncio.Task[T] = asyncio.create_task(_next(source))
    try:
        while True:
            item = await fetch
            if item is _END:
                return
            fetch = asyncio.create_task(_next(source))
            # Let the fetch send its request before the caller's work, which may not give way soon.
            await asyncio.sleep(0)
            yield item
            # Nothing of `item` is kept here: when the caller asks again it holds only what it chose to.
            del item
    finally:
        await _abandon(fetch)
        await _close(source)


async def in_turn(source: AsyncIterator[T]) -> AsyncGenerator[T, None]:
    """The same items fetched only when asked for (what reading ahead is measured against), closed alike."""
    try:
        async for item in source:
            yield item
    finally:
        await _close(source)


async def _close(source: AsyncIterator[Any]) -> None:
    aclose = getattr(source, "aclose", None)
    if aclose is not None:
        await aclose()


async def _abandon(fetch: asyncio.Task[Any]) -> None:
    """Stop a fetch nobody will read; its outcome, error included, belongs to a page never used."""
    if not fetch.done():
        fetch.cancel()
    # wait, not await: the caller's own cancellation still reaches it, the fetch's error does not.
    await asyncio.wait([fetch])
    if not fetch.cancelled():
        fetch.exception()  # retrieved, so asyncio does not log it as lost
