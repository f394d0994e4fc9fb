"""Group commit for Dataverse upserts: rows that wait for the service go together as UpsertMultiple.

Each flow invocation still writes its own row and waits for its own answer, so every guard has run
on that record first and, with one session per record, a record never has two writes outstanding:
its order holds. What changes is how the rows reach Dataverse. A row that finds the service idle
goes alone, as the same PATCH it always was (a live change keeps its latency). Rows that arrive
while the adaptive limiter (shared/clients/throttle.py) has every place taken, which is what a
backlog looks like (initial sync, catch-up, replay, repairs, a burst), wait together and the next
free place takes all of them, up to `max_rows`, as one `UpsertMultiple` for their table: one request
against service protection instead of one per row (every row still counts toward the entitlement).

On a standard table one bad row fails the whole bulk request, and the answer does not say which row
it was (Use bulk operation messages). The group is halved and each half sent again until the bad
row stands alone; its own PATCH then fails with its own error, which goes to that row's flow to be
parked or retried, and every other row lands: about 2·log2(n) extra requests per bad row. A
throttle or server error that outlasts the in-call retries goes to every row of the group, each of
which is retried later through its own flow.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from shared.clients.base import Key, Row, WriteResult
from shared.clients.throttle import AdaptiveLimiter
from shared.errors import ServiceError, TransientServiceError

SendOne = Callable[[str, Key, Row], Awaitable[WriteResult]]
SendMany = Callable[[str, Sequence[tuple[Key, Row]]], Awaitable[None]]


@dataclass
class _Row:
    key: Key
    body: Row
    done: asyncio.Future[WriteResult]

    @property
    def identity(self) -> tuple[tuple[str, str], ...]:
        return tuple((name, str(value).lower()) for name, value in self.key.items())


@dataclass
class _Table:
    waiting: list[_Row] = field(default_factory=list)
    senders: int = 0


@dataclass
class BulkFigures:
    single: int = 0
    bulk_requests: int = 0
    bulk_rows: int = 0
    splits: int = 0


class BulkUpserts:
    def __init__(self, limiter: AdaptiveLimiter, send_one: SendOne, send_many: SendMany, max_rows: int) -> None:
        self.limiter = limiter
        self.send_one = send_one
        self.send_many = send_many
        self.max_rows = max(1, max_rows)
        # At 20 requests a second (6,000 per 5 minutes) requests of 50 rows allow 1,000 rows a second.
        self.min_rows = min(50, self.max_rows)
        self.figures = BulkFigures()
        self._tables: dict[str, _Table] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def upsert(self, entity_set: str, key: Key, body: Row) -> WriteResult:
        row = _Row(dict(key), body, asyncio.get_running_loop().create_future())
        table = self._tables.setdefault(entity_set, _Table())
        table.waiting.append(row)
        self._start_senders(entity_set, table)
        return await row.done

    def _start_senders(self, entity_set: str, table: _Table) -> None:
        # As many senders as the limiter lets requests run; each takes what has gathered when it may send.
        while table.waiting and table.senders < self.limiter.capacity:
            table.senders += 1
            task = asyncio.create_task(self._send_while_waiting(entity_set, table))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send_while_waiting(self, entity_set: str, table: _Table) -> None:
        try:
            while table.waiting:
                await self.limiter.ready()
                group = self._take(table)
                if group:
                    await self._send(entity_set, group)
        finally:
            table.senders -= 1
            if table.waiting:
                self._start_senders(entity_set, table)

    def _take(self, table: _Table) -> list[_Row]:
        """The oldest waiting rows, never one record twice in one request, and no more than this
        sender's share: the rows waiting spread over every request the limiter lets start now, so a
        backlog goes out as several requests at once instead of one long one (a row waits for the
        whole request it is in), though not in slivers: each request counts against the 6,000 in 5
        minutes whatever it holds."""
        free = max(1, self.limiter.capacity - self.limiter.in_flight)
        share = min(self.max_rows, max(-(-len(table.waiting) // free), self.min_rows))
        group: list[_Row] = []
        seen: set[tuple[tuple[str, str], ...]] = set()
        for row in table.waiting:
            if len(group) >= share or row.identity in seen:
                break
            seen.add(row.identity)
            group.append(row)
        del table.waiting[: len(group)]
        return group

    async def _send(self, entity_set: str, group: list[_Row]) -> None:
        if len(group) == 1:
            row = group[0]
            self.figures.single += 1
            try:
                result = await self.send_one(entity_set, row.key, row.body)
            except Exception as exc:  # the row's own flow decides what its error means
                _settle(row, exc)
            else:
                if not row.done.done():
                    row.done.set_result(result)
            return
        self.figures.bulk_requests += 1
        try:
            await self.send_many(entity_set, [(row.key, row.body) for row in group])
        except TransientServiceError as exc:
            for row in group:
                _settle(row, exc)
            return
        except ServiceError:
            # One row refused the whole request; which one, the answer does not say.
            self.figures.splits += 1
            middle = len(group) // 2
            await self._send(entity_set, group[:middle])
            await self._send(entity_set, group[middle:])
            return
        except Exception as exc:
            for row in group:
                _settle(row, exc)
            return
        self.figures.bulk_rows += len(group)
        for row in group:
            if not row.done.done():
                row.done.set_result(WriteResult())


def _settle(row: _Row, exc: BaseException) -> None:
    if not row.done.done():
        row.done.set_exception(exc)
