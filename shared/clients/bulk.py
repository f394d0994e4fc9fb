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

The gathering (GroupCommit) is shared with Finance's `$batch` writes (shared/clients/finance_batch.py);
what a group is sent as, and how its answer settles each row, is each service's own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from shared.clients.base import Key, Row, WriteResult
from shared.clients.throttle import AdaptiveLimiter
from shared.errors import ServiceError, TransientServiceError

SendOne = Callable[[str, Key, Row], Awaitable[WriteResult]]
SendMany = Callable[[str, Sequence[tuple[Key, Row]]], Awaitable[None]]
W = TypeVar("W")


@dataclass
class Pending(Generic[W]):
    """One row's write waiting to be sent, and the future its flow awaits."""

    write: W
    identity: Hashable  # the record: never twice in one request
    done: asyncio.Future[WriteResult]

    def settle(self, result: WriteResult | BaseException) -> None:
        if self.done.done():
            return
        if isinstance(result, BaseException):
            self.done.set_exception(result)
        else:
            self.done.set_result(result)


@dataclass
class _Group(Generic[W]):
    waiting: list[Pending[W]] = field(default_factory=list)
    senders: int = 0


def key_identity(key: Key) -> tuple[tuple[str, str], ...]:
    return tuple((name, str(value).lower()) for name, value in key.items())


@dataclass
class GroupFigures:
    """What the benchmarks report: rows sent alone, and groups halved after a refusal."""

    single: int = 0
    splits: int = 0


class GroupCommit(Generic[W]):
    """Writes that find the limiter full wait per group; the next free place sends what has gathered."""

    figures: GroupFigures

    def __init__(self, limiter: AdaptiveLimiter, max_rows: int, min_rows: int) -> None:
        self.limiter = limiter
        self.max_rows = max(1, max_rows)
        self.min_rows = max(1, min(min_rows, self.max_rows))
        self._groups: dict[str, _Group[W]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, group_name: str, identity: Hashable, write: W) -> WriteResult:
        row = Pending(write, identity, asyncio.get_running_loop().create_future())
        group = self._groups.setdefault(group_name, _Group())
        group.waiting.append(row)
        self._start_senders(group_name, group)
        try:
            return await row.done
        except asyncio.CancelledError:
            # Its invocation was stopped and its message will come again: a row not yet taken is not
            # sent, or it could land after the newer write the redelivery makes.
            if row in group.waiting:
                group.waiting.remove(row)
            raise

    async def _send_alone(self, group_name: str, write: W) -> WriteResult:
        """One row as the single request it always was."""
        raise NotImplementedError

    async def _send_together(self, group_name: str, rows: list[Pending[W]]) -> None:
        """Several rows as one request; settles each row from the answer. Raises only when the
        request failed as a whole."""
        raise NotImplementedError

    async def _send(self, group_name: str, rows: list[Pending[W]]) -> None:
        if len(rows) == 1:
            row = rows[0]
            self.figures.single += 1
            try:
                result = await self._send_alone(group_name, row.write)
            except Exception as exc:  # the row's own flow decides what its error means
                row.settle(exc)
            else:
                row.settle(result)
            return
        try:
            await self._send_together(group_name, rows)
        except TransientServiceError as exc:
            for row in rows:
                row.settle(exc)
        except ServiceError:
            # Refused as a whole, and the answer does not say for which row: halve until the rows go
            # alone, each with its own answer.
            await self._halve(group_name, rows)
        except Exception as exc:
            for row in rows:
                row.settle(exc)

    async def _halve(self, group_name: str, rows: list[Pending[W]]) -> None:
        self.figures.splits += 1
        middle = len(rows) // 2
        await self._send(group_name, rows[:middle])
        await self._send(group_name, rows[middle:])

    def _start_senders(self, group_name: str, group: _Group[W]) -> None:
        # As many senders as the limiter lets requests run; each takes what has gathered when it may send.
        while group.waiting and group.senders < self.limiter.capacity:
            group.senders += 1
            task = asyncio.create_task(self._send_while_waiting(group_name, group))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send_while_waiting(self, group_name: str, group: _Group[W]) -> None:
        try:
            while group.waiting:
                await self.limiter.ready()
                rows = self._take(group)
                if rows:
                    await self._send(group_name, rows)
        finally:
            group.senders -= 1
            if group.waiting:
                self._start_senders(group_name, group)

    def _take(self, group: _Group[W]) -> list[Pending[W]]:
        """The oldest waiting rows, never one record twice in one request, and no more than this
        sender's share: the rows waiting spread over every request the limiter lets start now, so a
        backlog goes out as several requests at once instead of one long one (a row waits for the
        whole request it is in), though not in slivers below `min_rows`."""
        free = max(1, self.limiter.capacity - self.limiter.in_flight)
        share = min(self.max_rows, max(-(-len(group.waiting) // free), self.min_rows))
        rows: list[Pending[W]] = []
        seen: set[Hashable] = set()
        for row in group.waiting:
            if len(rows) >= share or row.identity in seen:
                break
            seen.add(row.identity)
            rows.append(row)
        del group.waiting[: len(rows)]
        return rows


@dataclass
class BulkFigures(GroupFigures):
    bulk_requests: int = 0
    bulk_rows: int = 0


class BulkUpserts(GroupCommit[tuple[Key, Row]]):
    figures: BulkFigures

    def __init__(self, limiter: AdaptiveLimiter, send_one: SendOne, send_many: SendMany, max_rows: int) -> None:
        # At 20 requests a second (6,000 per 5 minutes) requests of 50 rows allow 1,000 rows a second:
        # each request counts against the 6,000 in 5 minutes whatever it holds.
        super().__init__(limiter, max_rows, min_rows=50)
        self.send_one = send_one
        self.send_many = send_many
        self.figures = BulkFigures()

    async def upsert(self, entity_set: str, key: Key, body: Row) -> WriteResult:
        return await self.submit(entity_set, key_identity(key), (dict(key), body))

    async def _send_alone(self, group_name: str, write: tuple[Key, Row]) -> WriteResult:
        return await self.send_one(group_name, *write)

    async def _send_together(self, group_name: str, rows: list[Pending[tuple[Key, Row]]]) -> None:
        self.figures.bulk_requests += 1
        await self.send_many(group_name, [row.write for row in rows])
        self.figures.bulk_rows += len(rows)
        for row in rows:
            row.settle(WriteResult())
