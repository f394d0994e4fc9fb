"""GroupCommit alone, with a flush that records what each write carried; and how the Table Storage
store waits for the several writes of one settle."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
from azure.core.exceptions import HttpResponseError

from shared.state.group_commit import GroupCommit
from shared.state.table_store import TableStateStore


class Recorder:
    def __init__(self) -> None:
        self.writes: list[list[int]] = []
        self.release = asyncio.Event()
        self.refuse: set[int] = set()

    async def flush(self, items: list[int]) -> Sequence[BaseException | None] | None:
        self.writes.append(items)
        await self.release.wait()
        if not self.refuse:
            return None
        return [ValueError(f"refused {i}") if i in self.refuse else None for i in items]


async def test_items_of_one_turn_go_together_and_later_ones_wait_for_the_next_single_write() -> None:
    recorder = Recorder()
    commit = GroupCommit(recorder.flush)
    first = [asyncio.create_task(commit.submit(n)) for n in range(3)]
    await asyncio.sleep(0.01)
    assert recorder.writes == [[0, 1, 2]]  # one write in flight
    later = [asyncio.create_task(commit.submit(n)) for n in range(3, 8)]
    await asyncio.sleep(0.01)
    assert recorder.writes == [[0, 1, 2]] and not any(t.done() for t in first + later)
    recorder.release.set()
    await asyncio.gather(*first, *later)
    assert recorder.writes == [[0, 1, 2], [3, 4, 5, 6, 7]]
    assert commit.idle


async def test_a_failed_write_fails_every_caller_it_carried_and_only_those() -> None:
    async def flush(items: list[int]) -> None:
        if 0 in items:
            raise ConnectionError("table storage is away")

    commit = GroupCommit(flush)
    failed = await asyncio.gather(*(commit.submit(n) for n in range(4)), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in failed)
    await commit.submit(9)  # the next write is a write of its own


async def test_per_item_answers_go_to_their_own_callers() -> None:
    recorder = Recorder()
    recorder.refuse = {2}
    recorder.release.set()
    commit = GroupCommit(recorder.flush)
    results = await asyncio.gather(*(commit.submit(n) for n in range(4)), return_exceptions=True)
    assert [type(r).__name__ for r in results] == ["NoneType", "NoneType", "ValueError", "NoneType"]


async def test_one_caller_cancelled_does_not_cancel_the_write_or_the_others() -> None:
    recorder = Recorder()
    commit = GroupCommit(recorder.flush)
    callers = [asyncio.create_task(commit.submit(n)) for n in range(3)]
    await asyncio.sleep(0.01)
    callers[0].cancel()
    await asyncio.sleep(0)
    recorder.release.set()
    await asyncio.gather(*callers[1:])
    with pytest.raises(asyncio.CancelledError):
        await callers[0]
    assert recorder.writes == [[0, 1, 2]]


async def test_a_settle_reports_its_failure_only_once_every_write_it_carried_is_resolved() -> None:
    # The last-write row is refused at once while the tally row is still in flight. Had the settle
    # returned then, the tally could land after it and count a settle that is redelivered.
    store = TableStateStore(connection_string="UseDevelopmentStorage=true", table_prefix="unit")
    release, landed = asyncio.Event(), []

    async def put(table: str, partition: str, row: str, values: dict[str, object]) -> None:
        if row.startswith("~last-write|"):
            raise HttpResponseError("the last-write row is refused")
        await release.wait()
        landed.append(row)

    store._put = put  # type: ignore[method-assign]
    try:
        settling = asyncio.create_task(store.count_outcome("actuals", "written", datetime.now(UTC)))
        await asyncio.sleep(0.01)
        assert not settling.done()
        release.set()
        with pytest.raises(HttpResponseError, match="last-write row is refused"):
            await settling
        assert len(landed) == 1
    finally:
        await store.close()
