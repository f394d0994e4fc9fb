"""One contract, two state stores: SQLite, and Azure Table Storage on a real Azurite."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared.state.base import OUTCOME_PURGE_ROWS, OutcomeRecord, ParkedEvent, StateStore, SyncRun, SyncState
from shared.state.sqlite_store import SqliteStateStore
from shared.state.table_store import TableStateStore

AWKWARD_KEYS = ["USMF|ACT-0001", "a/b\\c#d?e", "Grüße €", "x" * 300, "%41 literal percent", "tab\there"]


async def test_missing_state_is_none(store: StateStore) -> None:
    assert await store.get_state("actuals", "nope") is None


@pytest.mark.parametrize("key", AWKWARD_KEYS)
async def test_state_round_trip_with_awkward_keys(store: StateStore, key: str) -> None:
    when = datetime(2026, 11, 2, 8, 30, 15, 123456, tzinfo=UTC)
    await store.put_state(SyncState("actuals", key, 9_000_000_000_123, "h1", '{"k": 1}', False, when))
    got = await store.get_state("actuals", key)
    assert got == SyncState("actuals", key, 9_000_000_000_123, "h1", '{"k": 1}', False, when)
    assert got is not None and got.updated_at.tzinfo is not None


async def test_keys_do_not_collide(store: StateStore) -> None:
    await store.put_state(SyncState("f", "a/b", 1))
    await store.put_state(SyncState("f", "a%2Fb", 2))
    await store.put_state(SyncState("g", "a/b", 3))
    assert [(await store.get_state(f, k)).version for f, k in (("f", "a/b"), ("f", "a%2Fb"), ("g", "a/b"))] == [1, 2, 3]  # type: ignore[union-attr]


async def test_overwrite_and_tombstone_with_nones(store: StateStore) -> None:
    await store.put_state(SyncState("p", "k", 1, "h", "t"))
    await store.put_state(SyncState("p", "k", None, None, None, True))
    got = await store.get_state("p", "k")
    assert got is not None and got.tombstone and got.version is None and got.payload_hash is None


def parked(flow: str, key: str, reason: str, minutes: int, event: str = "{}") -> ParkedEvent:
    return ParkedEvent(
        id=uuid.uuid4().hex,
        flow=flow,
        key=key,
        reason=reason,
        error=f"error for {key}",
        attempts=3,
        event=event,
        parked_at=datetime(2026, 11, 2, tzinfo=UTC) + timedelta(minutes=minutes),
    )


async def test_parked_filters_and_order(store: StateStore) -> None:
    a = parked("actuals", "k1", "missing-dependency: ProjectsV2(...)", 1)
    b = parked("actuals", "k2", "rejected-by-target", 2)
    c = parked("projects-v2", "k1", "missing-dependency: CustomersV3(...)", 3)
    for item in (a, b, c):
        await store.park(item)
    assert [p.id for p in await store.list_parked()] == [c.id, b.id, a.id]
    assert [p.id for p in await store.list_parked(flow="actuals")] == [b.id, a.id]
    assert [p.id for p in await store.list_parked(reason="missing-dependency")] == [c.id, a.id]
    assert [p.id for p in await store.list_parked(key="k1")] == [c.id, a.id]
    assert [p.id for p in await store.list_parked(limit=1)] == [c.id]
    got = await store.get_parked(b.id)
    assert got == b


async def test_dismissed_are_kept_for_audit(store: StateStore) -> None:
    item = parked("actuals", "k", "rejected-by-target", 0)
    await store.park(item)
    item.status, item.closed_by, item.closed_reason = "dismissed", "finance.admin", "posted by hand"
    item.closed_at = datetime(2026, 11, 3, tzinfo=UTC)
    await store.update_parked(item)
    assert await store.list_parked() == []
    assert await store.list_parked(status=None) == [item]
    assert await store.get_parked(item.id) == item


@pytest.fixture(params=["sqlite", "tables"])
async def retaining(request: pytest.FixtureRequest) -> AsyncIterator[SqliteStateStore | TableStateStore]:
    """A store that keeps dismissed rows 90 days, as PROJOPS_PARKED_RETENTION_DAYS defaults to."""
    if request.param == "sqlite":
        sqlite = SqliteStateStore(":memory:", parked_retention_days=90)
        yield sqlite
        await sqlite.close()
        return
    connection = request.getfixturevalue("azurite_connection_string")
    tables = TableStateStore(
        connection_string=connection, table_prefix=f"t{uuid.uuid4().hex[:10]}", parked_retention_days=90
    )
    yield tables
    await tables.close()


async def test_dismissed_rows_are_purged_after_the_retention(retaining: SqliteStateStore | TableStateStore) -> None:
    now = datetime.now(UTC)
    rows = {}
    for name, status, closed_days_ago in [
        ("old-dismissed", "dismissed", 200),
        ("old-replayed", "replayed", 200),
        ("open", "parked", None),
        ("recent-dismissed", "dismissed", 10),
    ]:
        item = parked("actuals", name, "rejected-by-target", 0)
        item.status = status
        if closed_days_ago is not None:
            item.closed_by, item.closed_reason = "finance.admin", "checked"
            item.closed_at = now - timedelta(days=closed_days_ago)
        rows[name] = item
        # a dismissal purges (at most hourly): old-dismissed goes as soon as it is written
        await retaining.park(item)
    left = {p.key for p in await retaining.list_parked(status=None)}
    assert left == {"old-replayed", "open", "recent-dismissed"}
    assert await retaining.purge_dismissed(now - timedelta(days=5)) == 1
    assert {p.key for p in await retaining.list_parked(status=None)} == {"old-replayed", "open"}


async def test_without_a_retention_nothing_is_purged(store: StateStore) -> None:
    item = parked("actuals", "k", "rejected-by-target", 0)
    item.status, item.closed_by, item.closed_reason = "dismissed", "finance.admin", "checked"
    item.closed_at = datetime.now(UTC) - timedelta(days=3650)
    await store.park(item)
    await store.update_parked(item)
    assert await store.list_parked(status=None) == [item]


async def test_large_parked_event_round_trips(store: StateStore) -> None:
    body = '{"record": "' + ("€ lines " * 25_000) + '"}'
    assert len(body.encode()) > 200_000
    item = parked("vendor-invoice-lines", "k", "rejected-by-target", 0, body)
    await store.park(item)
    got = await store.get_parked(item.id)
    assert got is not None and got.event == body


async def test_parking_the_same_row_again_keeps_one_row(store: StateStore) -> None:
    # A delivery redelivered after it parked parks again under the same id (shared.settlement.parked_id).
    body = '{"record": "' + ("€ lines " * 25_000) + '"}'
    first = parked("vendor-invoice-lines", "k", "retry-budget-exhausted: throttled", 0, body)
    await store.park(first)
    again = dataclasses.replace(first, reason="retry-budget-exhausted: unexpected-error", parked_at=first.parked_at)
    await store.park(again)
    assert await store.list_parked(status=None) == [again]
    got = await store.get_parked(first.id)
    assert got is not None and got.event == body and got.reason == again.reason


async def test_runs(store: StateStore) -> None:
    run = SyncRun(
        id="r1",
        flow="actuals",
        cursor="https://next?$skiptoken=x",
        counts={"fed": 5000},
        errors=["page 3: 429"],
        options={"companies": ["USMF"]},
        started_at=datetime(2026, 11, 2, tzinfo=UTC),
        updated_at=datetime(2026, 11, 2, tzinfo=UTC),
    )
    other = SyncRun(id="r2", flow="projects-v2", started_at=datetime(2026, 11, 3, tzinfo=UTC))
    await store.put_run(run)
    await store.put_run(other)
    assert await store.get_run("r1") == run
    assert [r.id for r in await store.list_runs("actuals")] == ["r1"]
    assert [r.id for r in await store.list_runs()] == ["r2", "r1"]
    run.status, run.cursor = "completed", None
    await store.put_run(run)
    assert (await store.get_run("r1")) == run


# Table Storage holds at most 32K UTF-16 units in a string property (64 KiB): what a run row keeps
# must fit it, in either store, so the sandbox shows what production stores.
PROPERTY_UNITS = 32 * 1024


def _units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


async def test_a_runs_long_errors_and_report_are_stored_shortened_and_read_back(store: StateStore) -> None:
    """Errors were cut mid-JSON (the run then unreadable: get_run, list_runs, resume and status broke)
    and options stored whole (a reconcile's report over 64 KB: the run stayed "running" for ever)."""
    errors = ["PermanentServiceError: " + "x" * 31_000] + [f"page {n}: 429 Too Many Requests" for n in range(3000)]
    errors.append("the newest: Grüße " + "€" * 40_000)
    drift = {"key": {"CustomerAccount": "US-001"}, "fields": [{"field": "SalesMemo", "source": "s" * 5000}]}
    report = {"notes": ["n" * 40_000], "companies": {f"C{n:03d}": {"different": [drift] * 10} for n in range(50)}}
    run = SyncRun(
        id="big",
        flow="customers",
        status="completed",
        counts={"drift": 500},
        errors=errors,
        options={"kind": "reconcile", "company": "USMF", "repair": False, "report": report},
    )
    await store.put_run(run)
    got = await store.get_run("big")
    assert got is not None and [r.id for r in await store.list_runs("customers")] == ["big"]
    assert got.kind == "reconcile" and got.options["company"] == "USMF" and got.options["repair"] is False
    assert got.counts == {"drift": 500} and got.status == "completed"
    assert _units(json.dumps(got.errors)) < PROPERTY_UNITS and _units(json.dumps(got.options)) < PROPERTY_UNITS
    # Items are shortened, not the JSON text: every error is still a line to read, the newest kept.
    assert all(isinstance(e, str) for e in got.errors) and got.errors[-1].startswith("the newest: Grüße €€€")
    assert any("not kept" in e for e in got.errors)
    assert "shortened" in json.dumps(got.options)


async def test_a_runs_errors_cut_mid_json_by_an_earlier_version_read_as_a_note(store: StateStore) -> None:
    cut = json.dumps(["PermanentServiceError: " + "x" * 31_000])[:30_000]
    run = SyncRun(id="old", flow="actuals", status="failed", started_at=datetime(2026, 11, 2, tzinfo=UTC))
    await store.put_run(run)
    # The row as the earlier version left it: its errors JSON cut at 30,000 characters.
    if isinstance(store, SqliteStateStore):
        store._db.execute("UPDATE syncruns SET errors=? WHERE id='old'", (cut,))
    else:
        assert isinstance(store, TableStateStore)
        client = await store._table("syncruns")
        entity = await client.get_entity("actuals", "old")
        entity["errors"] = cut
        await client.upsert_entity(entity)
    await store.put_run(SyncRun(id="new", flow="actuals", started_at=datetime(2026, 11, 3, tzinfo=UTC)))
    assert [r.id for r in await store.list_runs("actuals")] == ["new", "old"]
    got = await store.get_run("old")
    assert got is not None and got.status == "failed"
    [note] = got.errors
    assert "cut short" in note and "PermanentServiceError: xxx" in note


async def test_a_dismissal_reason_and_name_longer_than_a_property_holds_are_kept_cut_to_fit(store: StateStore) -> None:
    item = parked("actuals", "k", "rejected-by-target", 0)
    await store.park(item)
    item.status, item.closed_by, item.closed_reason = "dismissed", "u" * 40_000, "posted by hand " + "€" * 40_000
    item.closed_at = datetime(2026, 11, 3, tzinfo=UTC)
    await store.update_parked(item)
    got = await store.get_parked(item.id)
    assert got is not None and got.status == "dismissed" and got.closed_reason and got.closed_by
    assert item.closed_reason.startswith(got.closed_reason) and got.closed_reason.startswith("posted by hand €")
    assert item.closed_by.startswith(got.closed_by)


async def test_sqlite_file_is_shared_between_stores(tmp_path: Path) -> None:
    first = SqliteStateStore(str(tmp_path / "state.db"))
    await first.put_state(SyncState("f", "k", 7))
    second = SqliteStateStore(str(tmp_path / "state.db"))
    assert (await second.get_state("f", "k")).version == 7  # type: ignore[union-attr]
    await first.close()
    await second.close()


async def test_outcome_tally_counts_by_scope_and_time(store: StateStore) -> None:
    now = datetime.now(UTC)
    old = now - timedelta(hours=3)
    for outcome, at in [("written", now), ("written", now), ("skipped", now), ("retry-later", now), ("written", old)]:
        await store.count_outcome("actuals", outcome, at)
    await store.count_outcome("run:r1", "parked", now)
    hour = await store.outcome_tally("actuals", now - timedelta(hours=1))
    assert hour.counts == {"written": 2, "skipped": 1, "retry-later": 1}
    assert hour.landed == 3
    assert hour.last_write is not None and abs((hour.last_write - now).total_seconds()) < 0.001
    day = await store.outcome_tally("actuals", now - timedelta(days=1))
    assert day.counts["written"] == 3
    run = await store.outcome_tally("run:r1", old)
    assert run.counts == {"parked": 1} and run.last_write is None
    assert (await store.outcome_tally("nothing", old)).counts == {}


@pytest.mark.parametrize("backend", ["sqlite", "tables"])
async def test_outcome_tally_is_shared_between_store_instances(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Two processes (two store objects on one backing store) add up, neither overwriting the other."""
    now = datetime.now(UTC)
    first: StateStore
    second: StateStore
    if backend == "sqlite":
        first, second = SqliteStateStore(str(tmp_path / "s.db")), SqliteStateStore(str(tmp_path / "s.db"))
    else:
        connection, prefix = request.getfixturevalue("azurite_connection_string"), f"t{uuid.uuid4().hex[:10]}"
        first = TableStateStore(connection_string=connection, table_prefix=prefix)
        second = TableStateStore(connection_string=connection, table_prefix=prefix)
    try:
        await first.count_outcome("projects", "written", now)
        await second.count_outcome("projects", "written", now)
        await second.count_outcome("projects", "written", now)
        assert (await first.outcome_tally("projects", now - timedelta(minutes=5))).counts == {"written": 3}
    finally:
        await first.close()
        await second.close()


async def test_a_records_outcomes_come_back_in_order_and_only_its_own(store: StateStore) -> None:
    now = datetime.now(UTC)
    for minutes, kind, key in ((3, "written", "USMF|E-1"), (1, "parked", "USMF|E-1"), (2, "written", "USMF|E-10")):
        await store.record_outcome(
            OutcomeRecord(
                "expenses",
                key,
                kind,
                reason="rejected" if kind == "parked" else None,
                at=now - timedelta(minutes=minutes),
                event_id=f"e{minutes}",
            )
        )
    await store.record_outcome(OutcomeRecord("actuals", "USMF|E-1", "skipped", "unchanged", at=now))
    got = await store.list_outcomes("expenses", "USMF|E-1")
    assert [(o.kind, o.reason, o.event_id) for o in got] == [("written", None, "e3"), ("parked", "rejected", "e1")]
    assert got[0].at == now - timedelta(minutes=3)


LONG_KEYS = [
    "USMF|" + "项目" * 15,  # 35 characters, 275 once percent-encoded
    "USMF|" + "PRJ/2024/" * 30,
    "Grüße € 😀 " * 8,
    "USMF|" + "ä" * 60,
    "Grüße € 😀 " * 40,
    "x" * 1000,
    "x" * 999 + "y",  # the same head as the one before
    "a%2Fb|c",
]


@pytest.mark.parametrize(
    "key", LONG_KEYS, ids=["cjk-35", "slashes-275", "emoji-80", "umlauts-65", "emoji-400", "x-1000", "y-1000", "pct"]
)
async def test_the_outcomes_of_a_record_with_a_long_or_non_ascii_key_come_back(store: StateStore, key: str) -> None:
    """trace found no history for such a key on Table Storage: its outcome row key was encoded twice,
    and hashed past 512 characters out of the range the lookup read."""
    now = datetime.now(UTC)
    ids = [str(uuid.uuid4()) for _ in LONG_KEYS]  # what settle records: the event's id
    for other, event_id in zip(LONG_KEYS, ids, strict=True):
        await store.record_outcome(OutcomeRecord("projects-v2", other, "written", event_id=event_id, at=now))
    later = now + timedelta(seconds=1)
    await store.record_outcome(OutcomeRecord("projects-v2", key, "parked", "rejected", event_id="e/2#?", at=later))
    await store.record_outcome(OutcomeRecord("projects", key, "skipped", "unchanged", event_id=ids[0], at=now))
    got = await store.list_outcomes("projects-v2", key)
    assert [(o.key, o.kind, o.event_id) for o in got] == [
        (key, "written", ids[LONG_KEYS.index(key)]),
        (key, "parked", "e/2#?"),
    ]


async def test_outcomes_older_than_their_retention_are_purged(azurite_connection_string: str) -> None:
    now = datetime.now(UTC)
    stores: list[StateStore] = [
        SqliteStateStore(":memory:", outcome_retention_days=2),
        TableStateStore(
            connection_string=azurite_connection_string,
            table_prefix=f"t{uuid.uuid4().hex[:10]}",
            outcome_retention_days=2,
        ),
    ]
    for store in stores:
        # The first write after start purges (then at most hourly): the old row goes, the new stays.
        await store.record_outcome(OutcomeRecord("f", "k", "written", at=now - timedelta(days=5)))
        await store.record_outcome(OutcomeRecord("f", "k", "skipped", "unchanged", at=now))
        await store.record_outcome(OutcomeRecord("f", "k", "written", at=now - timedelta(days=6)))
        kinds = [o.kind for o in await store.list_outcomes("f", "k")]
        await store.close()
        # The row written before the purge is gone; the one written after it waits for the next purge
        # but lies beyond what a trace reads.
        assert kinds == ["skipped"], type(store).__name__


async def _outcomes_before(store: StateStore, before: datetime) -> int:
    """How many outcome rows the store still holds from before `before` (what a trace no longer reads)."""
    if isinstance(store, SqliteStateStore):
        return int(store._db.execute("SELECT count(*) FROM outcomes WHERE at < ?", (before.isoformat(),)).fetchone()[0])
    assert isinstance(store, TableStateStore)
    client = await store._table("outcomes")
    old = client.query_entities("PartitionKey lt @day", parameters={"day": before.date().isoformat()})
    return len([entity async for entity in old])


@pytest.mark.parametrize("backend", ["sqlite", "tables"])
async def test_a_settle_purges_a_bounded_number_of_old_outcomes_and_later_settles_finish(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The purge runs inside a settle: after a large initial sync, the first settle of each new process
    deleted every outcome past the retention before its message could complete."""
    now = datetime.now(UTC)
    cutoff = now - timedelta(days=30)
    stores: list[StateStore]
    if backend == "sqlite":
        path = str(tmp_path / "s.db")
        stores = [
            SqliteStateStore(path, outcome_retention_days=3650),
            SqliteStateStore(path, outcome_retention_days=30),
        ]
    else:
        connection, prefix = request.getfixturevalue("azurite_connection_string"), f"t{uuid.uuid4().hex[:10]}"
        stores = [
            TableStateStore(connection_string=connection, table_prefix=prefix, outcome_retention_days=days)
            for days in (3650, 30)
        ]
    seed, live = stores
    try:
        old = 2 * OUTCOME_PURGE_ROWS + 30
        # Three past days (three partitions on Table Storage), written by a process keeping ten years.
        await asyncio.gather(
            *(
                seed.record_outcome(OutcomeRecord("f", f"k{i}", "written", at=now - timedelta(days=40 + i % 3)))
                for i in range(old)
            )
        )
        await seed.record_outcome(OutcomeRecord("f", "recent", "written", at=now - timedelta(days=1)))
        assert await _outcomes_before(live, cutoff) == old

        left = [old]
        for i in range(10):
            await live.record_settlement(OutcomeRecord("f", "live", "written", event_id=f"e{i}"), ["f"])
            left.append(await _outcomes_before(live, cutoff))
            if left[-1] == 0:
                break
        assert left[1] == old - OUTCOME_PURGE_ROWS, left  # the first settle deleted no more than its share
        assert all(a - b <= OUTCOME_PURGE_ROWS for a, b in itertools.pairwise(left)), left
        assert left[-1] == 0, left  # and the settles after it finished the purge
        assert [o.kind for o in await live.list_outcomes("f", "recent")] == ["written"]
        assert len(await live.list_outcomes("f", "live")) == len(left) - 1
    finally:
        for store in stores:
            await store.close()


async def test_an_event_with_a_key_longer_than_a_property_holds_can_still_be_parked(store: StateStore) -> None:
    """Table Storage refuses a string property over 32K UTF-16 units: the key shown is cut to fit, the
    event (kept whole, split) still holds the record."""
    key = "k" * 40_000
    item = parked("router", key, "undecodable", 0, event=json.dumps({"key": key}))
    await store.park(item)
    got = await store.get_parked(item.id)
    assert got is not None and key.startswith(got.key) and json.loads(got.event)["key"] == key


async def test_a_parked_event_over_an_entitys_megabyte_round_trips_and_is_purged_whole(
    retaining: SqliteStateStore | TableStateStore,
) -> None:
    """Table Storage holds 1 MiB per entity: a 256 KB message of control characters is 1.5 MB once
    escaped as JSON, and it must park (a park that fails raises the message into the dead-letter queue)."""
    body = json.dumps({"body": "\x01" * 420_000, "emoji": "😀" * 60_000})
    assert len(body) > 2_500_000
    item = parked("route-dataverse-changes", "m-1", "undecodable", 0, body)
    item.reason = "no flow for " + "x" * 40_000
    await retaining.park(item)
    got = await retaining.get_parked(item.id)
    assert got is not None and got.event == body
    [listed] = await retaining.list_parked()
    assert listed.event == body and item.reason.startswith(listed.reason)

    item.status, item.closed_by, item.closed_reason = "dismissed", "finance.admin", "checked"
    item.closed_at = datetime.now(UTC) - timedelta(days=200)
    await retaining.update_parked(item)
    assert await retaining.list_parked(status=None) == []
    if isinstance(retaining, TableStateStore):
        assert await retaining._overflow(item.id) == []


async def test_the_record_a_target_row_was_written_from_is_found_by_its_target_key(store: StateStore) -> None:
    await store.put_state(SyncState("projects-v2", "p-1", 3, "h1", '{"ProjectId": "PRJ-1"}'))
    await store.put_state(SyncState("projects-v2", "p-2", 4, "h2", '{"ProjectId": "PRJ-2"}', tombstone=True))
    await store.put_state(SyncState("project-tasks", "t-1", 5, "h3", '{"ProjectId": "PRJ-1"}'))
    found = await store.find_by_target_key("projects-v2", '{"ProjectId": "PRJ-1"}')
    assert found is not None and (found.key, found.version) == ("p-1", 3)
    assert await store.find_by_target_key("projects-v2", '{"ProjectId": "PRJ-2"}') is None  # deleted
    assert await store.find_by_target_key("projects-v2", '{"ProjectId": "PRJ-3"}') is None
