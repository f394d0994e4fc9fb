"""Settles made together by group commit: exact under concurrency, and a failed write fails the
settles it carried. Both stores, SQLite on a file and Table Storage on a real Azurite."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from azure.core.exceptions import HttpResponseError
from azure.data.tables.aio import TableServiceClient

from shared.events import ChangeEvent, Operation, Source
from shared.outcomes import Outcome
from shared.settings import AuthMode, BusBackend, Settings, StateBackend
from shared.settlement import settle
from shared.state.base import OutcomeRecord, ParkedEvent, StateStore, SyncState, run_scope
from shared.state.sqlite_store import SqliteStateStore
from shared.state.table_store import TableStateStore
from tests.unit.fakes import RecordingSender

SETTINGS = Settings.model_validate(
    {
        "dataverse_url": "http://127.0.0.1:1",
        "finance_url": "http://127.0.0.1:2",
        "auth_mode": AuthMode.NONE,
        "state_backend": StateBackend.SQLITE,
        "bus_backend": BusBackend.LOCAL,
    }
)


async def outcome_rows(store: StateStore) -> Counter[tuple[str, str | None]]:
    """Every outcome row the store holds, by record and event: read from the table itself."""
    if isinstance(store, SqliteStateStore):
        rows = store._db.execute("SELECT key, event_id FROM outcomes").fetchall()
        return Counter((str(key), event_id) for key, event_id in rows)
    assert isinstance(store, TableStateStore)
    client = await store._table("outcomes")
    return Counter([(e["key"], e.get("event_id")) async for e in client.list_entities()])


def event(n: int, run_id: str | None = None) -> ChangeEvent:
    return ChangeEvent(
        event_id=f"e{n}",
        source=Source.INITIAL_SYNC if run_id else Source.DATAVERSE,
        entity="msdyn_actual",
        operation=Operation.CREATE,
        key=f"ACT-{n:04d}",
        correlation_id=run_id,
    )


def outcome_of(n: int) -> Outcome:
    if n % 10 == 0:
        return Outcome.parked("rejected-by-target", f"Finance answered 400 for {n}")
    if n % 3 == 0:
        return Outcome.skipped("unchanged")
    return Outcome.written(1, (f"ACT-{n:04d}",))


async def test_500_concurrent_settles_count_exactly_and_keep_one_outcome_each(store: StateStore) -> None:
    sender = RecordingSender()
    since = datetime.now(UTC) - timedelta(minutes=5)
    # Half live, half an initial-sync run (counted in its run scope too), all settled at once.
    events = [event(n, "r7" if n % 2 else None) for n in range(500)]
    finals = await asyncio.gather(
        *(settle(SETTINGS, store, sender, "actuals", e, outcome_of(n)) for n, e in enumerate(events))
    )
    expected = Counter(final.kind.value for final in finals)
    assert expected == {"written": 300, "skipped": 150, "parked": 50}
    tally = await store.outcome_tally("actuals", since)
    assert tally.counts == dict(expected)
    assert tally.last_write is not None
    run = await store.outcome_tally(run_scope("r7"), since)
    assert run.counts == dict(Counter(f.kind.value for e, f in zip(events, finals, strict=True) if e.correlation_id))
    assert await outcome_rows(store) == {(e.key, e.event_id): 1 for e in events}
    # A sample through trace's own read (each reads every day of the retention).
    for e in events[::50]:
        assert [o.event_id for o in await store.list_outcomes("actuals", e.key)] == [e.event_id]
    assert len(await store.list_parked(flow="actuals")) == 50


async def test_state_writes_made_together_each_land(store: StateStore) -> None:
    await asyncio.gather(*(store.put_state(SyncState("actuals", f"k{n}", n, f"h{n}")) for n in range(200)))
    got = await asyncio.gather(*(store.get_state("actuals", f"k{n}") for n in range(200)))
    assert [(s.version, s.payload_hash) for s in got if s is not None] == [(n, f"h{n}") for n in range(200)]


async def test_two_processes_settling_at_once_add_up(tmp_path: Path) -> None:
    """Two store objects on one file, as two host processes are, each settling 250 at once."""
    path = str(tmp_path / "shared.db")
    first, second = SqliteStateStore(path), SqliteStateStore(path)
    sender, since = RecordingSender(), datetime.now(UTC) - timedelta(minutes=5)
    try:
        await asyncio.gather(
            *(
                settle(SETTINGS, first if n % 2 else second, sender, "actuals", event(n), Outcome.written(1))
                for n in range(500)
            )
        )
        assert (await first.outcome_tally("actuals", since)).counts == {"written": 500}
    finally:
        await first.close()
        await second.close()


async def test_another_process_sees_a_turns_writes_all_or_none(tmp_path: Path) -> None:
    path = str(tmp_path / "state.db")
    store = SqliteStateStore(path)
    reader = sqlite3.connect(path)  # as the CLI or the console reads the file
    try:
        writes = asyncio.gather(
            *(store.record_outcome(OutcomeRecord("actuals", f"k{n}", "written")) for n in range(50))
        )
        # The writers have asked (their tasks ran first), the commit is due in the next turn.
        await asyncio.sleep(0)
        assert reader.execute("SELECT count(*) FROM outcomes").fetchone() == (0,)
        await writes
        assert reader.execute("SELECT count(*) FROM outcomes").fetchone() == (50,)
    finally:
        reader.close()
        await store.close()


async def test_a_refused_tally_fails_the_settles_it_carried_and_no_other_write(tmp_path: Path) -> None:
    path = str(tmp_path / "state.db")
    store = SqliteStateStore(path)
    other = sqlite3.connect(path, isolation_level=None)
    sender, since = RecordingSender(), datetime.now(UTC) - timedelta(minutes=5)
    try:
        await settle(SETTINGS, store, sender, "actuals", event(0), Outcome.written(1))
        # A real refusal from SQLite, for every count of this flow's tally.
        other.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON outcometally WHEN NEW.scope = 'actuals'"
            " BEGIN SELECT RAISE(ABORT, 'the tally is refused'); END"
        )
        results = await asyncio.gather(
            *(settle(SETTINGS, store, sender, "actuals", event(n), Outcome.written(1)) for n in range(1, 21)),
            *(store.put_state(SyncState("actuals", f"k{n}", n)) for n in range(20)),
            return_exceptions=True,
        )
        settles, states = results[:20], results[20:]
        assert all(isinstance(r, sqlite3.IntegrityError) and "the tally is refused" in str(r) for r in settles)
        assert states == [None] * 20
        assert [s.version for s in await asyncio.gather(*(store.get_state("actuals", f"k{n}") for n in range(20)))] == [  # type: ignore[union-attr]
            *range(20)
        ]
        # Nothing of a failed settle was kept: its history row went with its count.
        assert await store.list_outcomes("actuals", event(5).key) == []
        other.execute("DROP TRIGGER refuse")
        await settle(SETTINGS, store, sender, "actuals", event(21), Outcome.written(1))
        assert (await store.outcome_tally("actuals", since)).counts == {"written": 2}
    finally:
        other.close()
        await store.close()


async def test_a_failed_tally_write_fails_the_settles_it_carried_on_table_storage(
    azurite_connection_string: str,
) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    store = TableStateStore(connection_string=azurite_connection_string, table_prefix=prefix)
    service = TableServiceClient.from_connection_string(azurite_connection_string)
    sender, since = RecordingSender(), datetime.now(UTC) - timedelta(minutes=5)
    try:
        await settle(SETTINGS, store, sender, "actuals", event(0), Outcome.written(1))
        # The tally table goes away under the running store: every tally write now fails for real.
        await service.delete_table(f"{prefix}outcometally")
        results = await asyncio.gather(
            *(settle(SETTINGS, store, sender, "actuals", event(n), Outcome.written(1)) for n in range(1, 21)),
            return_exceptions=True,
        )
        assert all(isinstance(r, HttpResponseError) for r in results), results
        await service.create_table(f"{prefix}outcometally")
        await settle(SETTINGS, store, sender, "actuals", event(21), Outcome.written(1))
        # The table came back empty: the next write carries this instance's absolute count, which
        # holds only the settles whose writes succeeded (the 20 failed ones are redelivered).
        assert (await store.outcome_tally("actuals", since)).counts == {"written": 2}
    finally:
        await service.close()
        await store.close()


async def test_outcomes_of_one_day_go_in_transactions_of_at_most_100(azurite_connection_string: str) -> None:
    posts: list[str] = []

    def seen(request: object) -> None:
        http = request.http_request  # type: ignore[attr-defined]
        if http.method == "POST" or http.method == "PUT":
            posts.append(http.url)

    store = TableStateStore(
        connection_string=azurite_connection_string,
        table_prefix=f"t{uuid.uuid4().hex[:10]}",
        client_options={"raw_request_hook": seen},
    )
    try:
        await store.record_outcome(OutcomeRecord("actuals", "warm", "written"))
        posts.clear()
        now = datetime.now(UTC)
        await asyncio.gather(
            *(store.record_outcome(OutcomeRecord("actuals", f"k{n}", "written", at=now)) for n in range(250))
        )
        batches = [url for url in posts if url.endswith("/$batch")]
        assert len(batches) == 3 and len(posts) == 3, posts
        rows = await outcome_rows(store)
        assert rows == {("warm", None): 1} | {(f"k{n}", None): 1 for n in range(250)}
    finally:
        await store.close()


async def test_a_row_refused_in_a_days_transaction_fails_only_its_own_settle(azurite_connection_string: str) -> None:
    store = TableStateStore(connection_string=azurite_connection_string, table_prefix=f"t{uuid.uuid4().hex[:10]}")
    try:
        await store.record_outcome(OutcomeRecord("actuals", "warm", "written"))
        # A string property of more than 32K UTF-16 units: Table Storage refuses that entity, and so
        # the whole transaction it is in.
        keys = [f"k{n}" if n != 7 else "x" * 40_000 for n in range(20)]
        results = await asyncio.gather(
            *(store.record_outcome(OutcomeRecord("actuals", key, "written")) for key in keys), return_exceptions=True
        )
        assert [n for n, r in enumerate(results) if r is not None] == [7]
        assert "PropertyValueTooLarge" in str(results[7])
        assert set(await outcome_rows(store)) == {("warm", None)} | {(k, None) for k in keys if k[0] == "k"}
    finally:
        await store.close()


async def test_text_beyond_the_basic_plane_fits_table_storage(store: StateStore) -> None:
    """Emoji are two UTF-16 units each, which is what Table Storage's 32K limit counts."""
    detail = "Finance answered 400: 😀 " * 10_000
    await store.record_settlement(OutcomeRecord("expenses", "USMF|E-1", "parked", "rejected", detail), ["expenses"])
    [got] = await store.list_outcomes("expenses", "USMF|E-1")
    assert got.detail is not None and detail.startswith(got.detail) and len(got.detail) >= 10_000
    body = '{"record": "' + "😀 €" * 40_000 + '"}'
    item = ParkedEvent(uuid.uuid4().hex, "expenses", "USMF|E-1", "rejected", detail, 1, body)
    await store.park(item)
    parked = await store.get_parked(item.id)
    assert parked is not None and parked.event == body and detail.startswith(parked.error)
