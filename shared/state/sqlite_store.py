"""The state store on SQLite: the sandbox's embedded default (one file, no service to run).

SQLite calls are short and local, so they run inline on the event loop: handing each to a thread
would cost more than the statement itself at sandbox volumes.

Writes go by group commit (shared/state/sqlite_commit.py): those asked for in one event-loop turn
are made in one transaction at the start of the next, and each writer returns once that transaction
is committed. Other processes on the file (the CLI, the console) see a whole turn's writes or none.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

from shared.state.base import (
    DEFAULT_OUTCOME_RETENTION_DAYS,
    OUTCOME_PURGE_ROWS,
    UNREAD,
    OutcomeRecord,
    OutcomeTally,
    ParkedEvent,
    Read,
    RetentionClock,
    StateConflictError,
    SyncRun,
    SyncState,
    tally_bucket,
)
from shared.state.bounded import errors_from, errors_text, options_text
from shared.state.sqlite_commit import Statement, TurnCommit
from shared.values import utc_now

_SCHEMA = """
CREATE TABLE IF NOT EXISTS syncstate (
  flow TEXT NOT NULL, key TEXT NOT NULL, version INTEGER, payload_hash TEXT, target_key TEXT,
  tombstone INTEGER NOT NULL, updated_at TEXT NOT NULL, revision TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (flow, key));
CREATE TABLE IF NOT EXISTS parked (
  id TEXT PRIMARY KEY, flow TEXT NOT NULL, key TEXT NOT NULL, reason TEXT NOT NULL, error TEXT NOT NULL,
  attempts INTEGER NOT NULL, event TEXT NOT NULL, parked_at TEXT NOT NULL, status TEXT NOT NULL,
  closed_by TEXT, closed_reason TEXT, closed_at TEXT);
CREATE INDEX IF NOT EXISTS parked_by_flow ON parked (flow, status, parked_at);
CREATE TABLE IF NOT EXISTS syncruns (
  id TEXT PRIMARY KEY, flow TEXT NOT NULL, status TEXT NOT NULL, cursor TEXT, counts TEXT NOT NULL,
  errors TEXT NOT NULL, options TEXT NOT NULL, started_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outcometally (
  scope TEXT NOT NULL, bucket TEXT NOT NULL, outcome TEXT NOT NULL, count INTEGER NOT NULL,
  PRIMARY KEY (scope, bucket, outcome));
CREATE TABLE IF NOT EXISTS lastwrite (scope TEXT PRIMARY KEY, at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outcomes (
  flow TEXT NOT NULL, key TEXT NOT NULL, at TEXT NOT NULL, kind TEXT NOT NULL, reason TEXT, detail TEXT,
  source TEXT, operation TEXT, event_id TEXT);
CREATE INDEX IF NOT EXISTS outcomes_by_record ON outcomes (flow, key, at);
CREATE INDEX IF NOT EXISTS outcomes_by_time ON outcomes (at);
"""

_STATE_COLUMNS = "flow, key, version, payload_hash, target_key, tombstone, updated_at, revision"
_PUT_STATE = f"INSERT OR REPLACE INTO syncstate ({_STATE_COLUMNS}) VALUES (?,?,?,?,?,?,?,?)"
# Written only if the row is still the revision read (NULL: there was none, so only an insert): a
# row changed since, or made since, is left as it is and the statement changes nothing.
_PUT_STATE_IF = (
    f"INSERT INTO syncstate ({_STATE_COLUMNS}) VALUES (?,?,?,?,?,?,?,?)"
    " ON CONFLICT (flow, key) DO UPDATE SET version=excluded.version, payload_hash=excluded.payload_hash,"
    " target_key=excluded.target_key, tombstone=excluded.tombstone, updated_at=excluded.updated_at,"
    " revision=excluded.revision WHERE syncstate.revision=?"
)


def _add_revision(db: sqlite3.Connection) -> None:
    """A file made before state writes were conditional has no revision column: added, its rows
    read as revision '' (what the first conditional write of each then expects)."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(syncstate)")}
    if "revision" in columns:
        return
    try:
        db.execute("ALTER TABLE syncstate ADD COLUMN revision TEXT NOT NULL DEFAULT ''")
    except sqlite3.OperationalError as exc:
        if "duplicate column" not in str(exc):  # another process on the file added it first
            raise


def _dt(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _if_written(outcome: str, at: datetime) -> datetime | None:
    """A settle's time moves its scopes' last write on only if it wrote to the target."""
    return at if outcome == "written" else None


def _outcome_row(outcome: OutcomeRecord) -> Statement:
    return (
        "INSERT INTO outcomes VALUES (?,?,?,?,?,?,?,?,?)",
        (
            outcome.flow,
            outcome.key,
            outcome.at.isoformat(),
            outcome.kind,
            outcome.reason,
            outcome.detail,
            outcome.source,
            outcome.operation,
            outcome.event_id,
        ),
    )


class SqliteStateStore:
    def __init__(
        self,
        path: str = ":memory:",
        *,
        parked_retention_days: int | None = None,
        outcome_retention_days: int = DEFAULT_OUTCOME_RETENTION_DAYS,
    ) -> None:
        self._retention = RetentionClock(parked_retention_days)
        self._outcome_retention = RetentionClock(outcome_retention_days)
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        _add_revision(self._db)
        self._commit = TurnCommit(self._db)
        # A revision names one write: this store's own prefix and a count, unique across the processes
        # on the file without asking the file, so a write knows the revision it made.
        self._revision_prefix = uuid.uuid4().hex[:12]
        self._revisions = itertools.count(1)

    async def get_state(self, flow: str, key: str) -> SyncState | None:
        row = self._db.execute(
            "SELECT version, payload_hash, target_key, tombstone, updated_at, revision FROM syncstate"
            " WHERE flow=? AND key=?",
            (flow, key),
        ).fetchone()
        if row is None:
            return None
        return SyncState(flow, key, row[0], row[1], row[2], bool(row[3]), datetime.fromisoformat(row[4]), row[5])

    async def find_by_target_key(self, flow: str, target_key: str) -> SyncState | None:
        row = self._db.execute(
            "SELECT key FROM syncstate WHERE flow=? AND target_key=? AND tombstone=0 LIMIT 1", (flow, target_key)
        ).fetchone()
        return None if row is None else await self.get_state(flow, row[0])

    async def put_state(self, state: SyncState, *, read: Read = UNREAD) -> None:
        revision = f"{self._revision_prefix}.{next(self._revisions)}"
        values = (
            state.flow,
            state.key,
            state.version,
            state.payload_hash,
            state.target_key,
            int(state.tombstone),
            state.updated_at.isoformat(),
            revision,
        )
        if read is UNREAD:
            await self._write(_PUT_STATE, values)
        else:
            # Through the turn's commit like every write: a conflict fails this writer alone.
            expected = None if read is None else read.revision
            try:
                await self._commit.submit(checked=((_PUT_STATE_IF, (*values, expected)),))
            except StateConflictError:
                raise StateConflictError(f"the state of {state.flow} {state.key} changed since it was read") from None
        state.revision = revision

    async def park(self, parked: ParkedEvent) -> None:
        await self.update_parked(parked)

    async def update_parked(self, parked: ParkedEvent) -> None:
        await self._write(
            "INSERT OR REPLACE INTO parked VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                parked.id,
                parked.flow,
                parked.key,
                parked.reason,
                parked.error,
                parked.attempts,
                parked.event,
                parked.parked_at.isoformat(),
                parked.status,
                parked.closed_by,
                parked.closed_reason,
                _iso(parked.closed_at),
            ),
        )
        if parked.status == "dismissed":
            await self._purge_now_and_then()

    async def _purge_now_and_then(self) -> None:
        cutoff = self._retention.cutoff_if_due()
        if cutoff is not None:
            await self.purge_dismissed(cutoff)

    async def purge_dismissed(self, before: datetime) -> int:
        """Delete the rows dismissed before `before`; the number deleted."""
        cursor = self._db.execute(
            "DELETE FROM parked WHERE status='dismissed' AND closed_at IS NOT NULL AND closed_at < ?",
            (before.isoformat(),),
        )
        return cursor.rowcount

    @staticmethod
    def _parked(row: tuple[object, ...]) -> ParkedEvent:
        return ParkedEvent(
            id=str(row[0]),
            flow=str(row[1]),
            key=str(row[2]),
            reason=str(row[3]),
            error=str(row[4]),
            attempts=int(row[5]),  # type: ignore[call-overload]
            event=str(row[6]),
            parked_at=datetime.fromisoformat(str(row[7])),
            status=str(row[8]),
            closed_by=row[9] if row[9] is None else str(row[9]),
            closed_reason=row[10] if row[10] is None else str(row[10]),
            closed_at=_dt(row[11] if row[11] is None else str(row[11])),
        )

    async def get_parked(self, parked_id: str) -> ParkedEvent | None:
        row = self._db.execute("SELECT * FROM parked WHERE id=?", (parked_id,)).fetchone()
        return None if row is None else self._parked(row)

    async def list_parked(
        self,
        *,
        flow: str | None = None,
        reason: str | None = None,
        key: str | None = None,
        status: str | None = "parked",
        limit: int | None = None,
    ) -> list[ParkedEvent]:
        clauses, params = [], []
        for column, value in (("flow", flow), ("key", key), ("status", status)):
            if value is not None:
                clauses.append(f"{column}=?")
                params.append(value)
        if reason is not None:
            clauses.append("substr(reason, 1, ?)=?")
            params += [len(reason), reason]  # type: ignore[list-item]
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT * FROM parked {where} ORDER BY parked_at DESC, id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [self._parked(row) for row in self._db.execute(sql, params).fetchall()]

    async def put_run(self, run: SyncRun) -> None:
        await self._write(
            "INSERT OR REPLACE INTO syncruns VALUES (?,?,?,?,?,?,?,?,?)",
            (
                run.id,
                run.flow,
                run.status,
                run.cursor,
                json.dumps(run.counts),
                errors_text(run.errors),
                options_text(run.options),
                run.started_at.isoformat(),
                run.updated_at.isoformat(),
            ),
        )

    @staticmethod
    def _run(row: tuple[object, ...]) -> SyncRun:
        return SyncRun(
            id=str(row[0]),
            flow=str(row[1]),
            status=str(row[2]),
            cursor=row[3] if row[3] is None else str(row[3]),
            counts=json.loads(str(row[4])),
            errors=errors_from(str(row[5])),
            options=json.loads(str(row[6])),
            started_at=datetime.fromisoformat(str(row[7])),
            updated_at=datetime.fromisoformat(str(row[8])),
        )

    async def get_run(self, run_id: str) -> SyncRun | None:
        row = self._db.execute("SELECT * FROM syncruns WHERE id=?", (run_id,)).fetchone()
        return None if row is None else self._run(row)

    async def list_runs(self, flow: str | None = None) -> list[SyncRun]:
        if flow is None:
            rows = self._db.execute("SELECT * FROM syncruns ORDER BY started_at DESC").fetchall()
        else:
            rows = self._db.execute("SELECT * FROM syncruns WHERE flow=? ORDER BY started_at DESC", (flow,)).fetchall()
        return [self._run(row) for row in rows]

    async def _write(self, sql: str, params: tuple[object, ...]) -> None:
        await self._commit.submit(((sql, params),))

    async def count_outcome(self, scope: str, outcome: str, at: datetime) -> None:
        await self._commit.submit(tallies=((scope, tally_bucket(at), outcome),), written_at=_if_written(outcome, at))

    async def outcome_tally(self, scope: str, since: datetime) -> OutcomeTally:
        rows = self._db.execute(
            "SELECT outcome, sum(count) FROM outcometally WHERE scope=? AND bucket>=? GROUP BY outcome",
            (scope, tally_bucket(since)),
        ).fetchall()
        last = self._db.execute("SELECT at FROM lastwrite WHERE scope=?", (scope,)).fetchone()
        return OutcomeTally({str(r[0]): int(r[1]) for r in rows}, _dt(last[0]) if last else None)

    async def record_outcome(self, outcome: OutcomeRecord) -> None:
        await self._commit.submit((_outcome_row(outcome),))
        self._purge_outcomes_now_and_then()

    async def record_settlement(self, outcome: OutcomeRecord, scopes: Sequence[str]) -> None:
        # One writer in one commit: the history row and the counts are stored together or not at all.
        bucket = tally_bucket(outcome.at)
        await self._commit.submit(
            (_outcome_row(outcome),),
            tuple((scope, bucket, outcome.kind) for scope in scopes),
            _if_written(outcome.kind, outcome.at),
        )
        self._purge_outcomes_now_and_then()

    def _purge_outcomes_now_and_then(self) -> None:
        cutoff = self._outcome_retention.cutoff_if_due()
        if cutoff is not None:
            # A bounded piece each settle, as on Table Storage (base.OUTCOME_PURGE_ROWS).
            deleted = self._db.execute(
                "DELETE FROM outcomes WHERE rowid IN (SELECT rowid FROM outcomes WHERE at < ? LIMIT ?)",
                (cutoff.isoformat(), OUTCOME_PURGE_ROWS),
            ).rowcount
            if deleted == OUTCOME_PURGE_ROWS:
                self._outcome_retention.due_again()

    async def list_outcomes(self, flow: str, key: str) -> list[OutcomeRecord]:
        rows = self._db.execute(
            "SELECT flow, key, kind, reason, detail, source, operation, event_id, at FROM outcomes"
            " WHERE flow=? AND key=? AND at >= ? ORDER BY at",
            (flow, key, (utc_now() - timedelta(days=self._outcome_retention.retention_days or 0)).isoformat()),
        ).fetchall()
        return [
            OutcomeRecord(
                flow=row[0],
                key=row[1],
                kind=row[2],
                reason=row[3],
                detail=row[4],
                source=row[5],
                operation=row[6],
                event_id=row[7],
                at=datetime.fromisoformat(row[8]),
            )
            for row in rows
        ]

    async def close(self) -> None:
        self._commit.flush()
        self._db.close()
