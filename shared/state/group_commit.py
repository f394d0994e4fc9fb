"""Group commit for state-store writes that many settles make to one place (a tally row, a day's
partition of outcomes): one write of that place is in flight at a time, and whatever arrives while it
is goes together in the next one.

Every caller awaits the write that carries its item, and gets that write's error if it fails, so a
settle never returns before what it counted is stored: a crash after the message is completed
loses nothing, and a failed write fails exactly the settles it carried. The first item after a quiet
spell waits only for the next event-loop turn, so items submitted in the same turn go together too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

T = TypeVar("T")

# What a flush answers: None when every item was stored, else one entry per item (None = stored).
Flush = Callable[[list[T]], Awaitable[Sequence[BaseException | None] | None]]


class GroupCommit(Generic[T]):
    def __init__(self, flush: Flush[T]) -> None:
        self._flush = flush
        self._items: list[T] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._task: asyncio.Task[None] | None = None

    @property
    def idle(self) -> bool:
        return self._task is None and not self._items

    async def submit(self, item: T) -> None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._items.append(item)
        self._waiters.append(done)
        if self._task is None:
            self._task = loop.create_task(self._drain())
        # Each caller has a future of its own: one caller cancelled does not cancel the others.
        await done

    async def _drain(self) -> None:
        try:
            while self._items:
                # Taken in one step with no await: an item is either in this write or in the next.
                items, waiters = self._items, self._waiters
                self._items, self._waiters = [], []
                try:
                    answers = await self._flush(items)
                except Exception as exc:  # whatever the write raised goes to every caller it carried
                    answers = [exc] * len(items)
                except BaseException as exc:
                    _answer(waiters, [exc] * len(items))
                    raise
                _answer(waiters, answers or [None] * len(items))
        except BaseException as exc:
            # Cancelled (the loop is closing): nobody may wait for a write that will not come.
            _answer(self._waiters, [exc] * len(self._waiters))
            self._items, self._waiters = [], []
            raise
        finally:
            self._task = None


def _answer(waiters: list[asyncio.Future[None]], answers: Sequence[BaseException | None]) -> None:
    for done, error in zip(waiters, answers, strict=True):
        if done.done():
            continue
        if error is None:
            done.set_result(None)
        else:
            done.set_exception(error)


async def all_settled(*writes: Awaitable[Any]) -> None:
    """Await every write, then raise the first error, if any. `asyncio.gather` raises at the first
    failure while the others are still in flight: a settle would report failure (and be redelivered)
    while a write it carried could still land after, and be counted twice."""
    results = await asyncio.gather(*writes, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
