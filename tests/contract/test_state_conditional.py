"""A state write conditional on what was read: refused once another instance has written the row
since. Both stores, SQLite on a file and Table Storage on a real Azurite."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest

from shared.state.base import OutcomeRecord, StateConflictError, StateStore, SyncState
from shared.state.sqlite_store import SqliteStateStore
from shared.state.table_store import TableStateStore


async def test_a_write_after_another_instances_write_is_refused_and_changes_nothing(store: StateStore) -> None:
    await store.put_state(SyncState("f", "k", 1152, "h-1152", "t"))
    a = await store.get_state("f", "k")
    b = await store.get_state("f", "k")
    assert a is not None and b is not None and a.revision is not None
    b.version, b.payload_hash = 1154, "h-1154"
    await store.put_state(b, read=b)  # B, after the lock moved to it
    a.version, a.payload_hash = 1153, "h-1153"
    with pytest.raises(StateConflictError):
        await store.put_state(a, read=a)  # A, resumed
    got = await store.get_state("f", "k")
    assert got is not None and (got.version, got.payload_hash) == (1154, "h-1154")


async def test_a_first_write_after_another_instance_made_the_row_is_refused(store: StateStore) -> None:
    assert await store.get_state("f", "new") is None  # both instances read: no row
    await store.put_state(SyncState("f", "new", 2, "h-2"), read=None)
    with pytest.raises(StateConflictError):
        await store.put_state(SyncState("f", "new", 1, "h-1"), read=None)
    assert (await store.get_state("f", "new")).version == 2  # type: ignore[union-attr]


async def test_a_write_names_the_revision_it_made(store: StateStore) -> None:
    """The next conditional write of a state needs no read first: the write answers the revision."""
    state = SyncState("f", "k", 1)
    await store.put_state(state, read=None)
    first = state.revision
    state.version = 2
    await store.put_state(state, read=state)
    assert state.revision not in (None, first)
    got = await store.get_state("f", "k")
    assert got is not None and got.version == 2 and got.revision == state.revision


async def test_a_conflict_fails_only_its_own_write_among_a_bursts(store: StateStore) -> None:
    """SQLite makes a turn's writes in one transaction: the one refused must not take the others'."""
    for n in range(10):
        await store.put_state(SyncState("f", f"k{n}", n))
    reads = [await store.get_state("f", f"k{n}") for n in range(10)]
    moved = await store.get_state("f", "k3")
    assert moved is not None
    moved.version = 100
    await store.put_state(moved, read=moved)

    writes: list[Any] = []
    for state in reads:
        assert state is not None
        new = SyncState("f", state.key, (state.version or 0) + 1000)
        writes.append(store.put_state(new, read=state))
    writes.append(store.put_state(SyncState("f", "fresh", 1), read=None))
    writes.append(store.record_settlement(OutcomeRecord("f", "k3", "written"), ["f"]))
    results = await asyncio.gather(*writes, return_exceptions=True)

    assert [type(r).__name__ for r in results] == ["NoneType"] * 3 + ["StateConflictError"] + ["NoneType"] * 8
    versions = [(await store.get_state("f", f"k{n}")).version for n in range(10)]  # type: ignore[union-attr]
    assert versions == [1000, 1001, 1002, 100, 1004, 1005, 1006, 1007, 1008, 1009]
    assert (await store.get_state("f", "fresh")) is not None
    assert [o.kind for o in await store.list_outcomes("f", "k3")] == ["written"]


async def test_a_read_and_a_conditional_write_are_two_requests(azurite_connection_string: str) -> None:
    """The ETag comes with the read and with the write: no request more than an unconditional write."""
    requests: list[str] = []
    store = TableStateStore(
        connection_string=azurite_connection_string,
        table_prefix=f"t{uuid.uuid4().hex[:10]}",
        client_options={"raw_request_hook": lambda r: requests.append(r.http_request.method)},
    )
    try:
        await store.put_state(SyncState("f", "k", 1))
        requests.clear()
        state = await store.get_state("f", "k")
        assert state is not None
        state.version = 2
        await store.put_state(state, read=state)
        state.version = 3
        await store.put_state(state, read=state)
        assert requests == ["GET", "PUT", "PUT"]
    finally:
        await store.close()


async def test_a_sqlite_file_from_before_revisions_is_read_and_written_conditionally(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    old = sqlite3.connect(path)
    old.execute(
        "CREATE TABLE syncstate (flow TEXT NOT NULL, key TEXT NOT NULL, version INTEGER, payload_hash TEXT,"
        " target_key TEXT, tombstone INTEGER NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY (flow, key))"
    )
    old.execute("INSERT INTO syncstate VALUES ('f', 'k', 7, 'h', 't', 0, '2026-11-02T08:30:00+00:00')")
    old.commit()
    old.close()

    store = SqliteStateStore(str(path))
    other = SqliteStateStore(str(path))  # a second process opening the file: the column is there
    try:
        a = await store.get_state("f", "k")
        b = await other.get_state("f", "k")
        assert a is not None and b is not None and (a.version, a.payload_hash, a.target_key) == (7, "h", "t")
        b.version = 9
        await other.put_state(b, read=b)
        a.version = 8
        with pytest.raises(StateConflictError):
            await store.put_state(a, read=a)
        assert (await store.get_state("f", "k")).version == 9  # type: ignore[union-attr]
    finally:
        await store.close()
        await other.close()
