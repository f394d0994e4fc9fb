"""The state store interface (DESIGN §6, §7): sync state per record, parked events, sync runs.

Two implementations stand behind it: Azure Table Storage (production, Azurite in tests) and SQLite
(the sandbox). One contract test suite runs against both.
"""

from __future__ import annotations

import enum
import functools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal, Protocol, TypeAlias

from shared.values import utc_now


@dataclass
class SyncState:
    """What was last applied for one source record in one flow (or one fan-out target row of it)."""

    flow: str
    key: str
    version: int | None = None
    payload_hash: str | None = None
    target_key: str | None = None
    tombstone: bool = False
    updated_at: datetime = field(default_factory=utc_now)
    # Which write of the row this is, as the store names it (Table Storage's ETag, SQLite's revision
    # column): set by get_state and by a successful put_state, and what a put_state given it as
    # `read` is conditional on. Not part of the state's value: two reads of one row compare equal.
    revision: str | None = field(default=None, compare=False)


class StateConflictError(Exception):
    """A conditional put_state found the row no longer what was read: another instance applied an
    event of the record in between (its session lock expired while this one worked, and Service Bus
    gave the session to another). Nothing was written."""


class _Unread(enum.Enum):
    UNREAD = "unread"


# put_state's `read` when the write follows no read: it replaces whatever is stored (tests, tools).
UNREAD: Final = _Unread.UNREAD
Read: TypeAlias = SyncState | Literal[_Unread.UNREAD] | None


@dataclass
class ParkedEvent:
    """An event that could not be applied, with everything a person needs to act on it.

    `event` is the ChangeEvent JSON (or, for undecodable input, a JSON object holding the raw body
    and properties), so a replay sends exactly what failed.
    """

    id: str
    flow: str
    key: str
    reason: str
    error: str
    attempts: int
    event: str
    parked_at: datetime = field(default_factory=utc_now)
    status: str = "parked"  # parked | replayed | dismissed
    closed_by: str | None = None
    closed_reason: str | None = None
    closed_at: datetime | None = None


@dataclass
class SyncRun:
    """An initial-sync or reconciliation run: its cursor lets a run that died resume."""

    id: str
    flow: str
    status: str = "running"  # running | completed | failed
    cursor: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    started_at: datetime = field(default_factory=utc_now)
    updated_at: datetime = field(default_factory=utc_now)

    @property
    def kind(self) -> str:
        """initial-sync, reconcile or changes (a catch-up's delta link): one runs table holds all three."""
        return str(self.options.get("kind", "initial-sync"))


@dataclass
class OutcomeTally:
    """How many events of one scope (a flow, or `run:<id>` for an initial-sync run) settled each way
    since a time, and when the scope last wrote to its target (whenever that was)."""

    counts: dict[str, int] = field(default_factory=dict)
    last_write: datetime | None = None

    @property
    def landed(self) -> int:
        """Settled for good: written, skipped or parked (a retry-later comes back and lands later)."""
        return sum(self.counts.get(kind, 0) for kind in ("written", "skipped", "parked"))


# Outcomes are counted in buckets of this many seconds: "the last hour" reads the buckets that began
# in it, so it covers up to one bucket more than an hour.
TALLY_BUCKET_SECONDS = 600


def tally_bucket(at: datetime) -> str:
    """The bucket an outcome at `at` falls in, as a sortable UTC string."""
    return _bucket_name(int(at.timestamp()) // TALLY_BUCKET_SECONDS)


@functools.lru_cache(maxsize=64)
def _bucket_name(bucket: int) -> str:
    # Every outcome of ten minutes names the same bucket: formatted once, not once per outcome
    # (strftime was 1.6% of the functions' CPU end to end).
    return datetime.fromtimestamp(bucket * TALLY_BUCKET_SECONDS, tz=UTC).strftime("%Y-%m-%dT%H:%M")


def run_scope(run_id: str) -> str:
    return f"run:{run_id}"


@dataclass
class OutcomeRecord:
    """One outcome the integration recorded for one record: kept for a bounded time, for `trace`."""

    flow: str
    key: str
    kind: str  # written | skipped | retry-later | parked
    reason: str | None = None
    detail: str | None = None
    source: str | None = None
    operation: str | None = None
    event_id: str | None = None
    at: datetime = field(default_factory=utc_now)


# Outcomes are kept this long when no retention is set; trace reads no further back.
DEFAULT_OUTCOME_RETENTION_DAYS = 30


class StateStore(Protocol):
    async def get_state(self, flow: str, key: str) -> SyncState | None: ...

    async def find_by_target_key(self, flow: str, target_key: str) -> SyncState | None:
        """The record this flow last wrote to the target row `target_key` names (a scan: reconcile asks
        it of the few rows it finds orphaned, never the flows)."""
        ...

    async def put_state(self, state: SyncState, *, read: Read = UNREAD) -> None:
        """Store `state`. Given `read`, what get_state answered before (None: no row), the write is
        made only if the row is still that one, else StateConflictError; it is one request either
        way. On success `state.revision` names the row just written."""
        ...

    async def park(self, parked: ParkedEvent) -> None: ...

    async def get_parked(self, parked_id: str) -> ParkedEvent | None: ...

    async def list_parked(
        self,
        *,
        flow: str | None = None,
        reason: str | None = None,
        key: str | None = None,
        status: str | None = "parked",
        limit: int | None = None,
    ) -> list[ParkedEvent]: ...

    async def update_parked(self, parked: ParkedEvent) -> None: ...

    async def put_run(self, run: SyncRun) -> None: ...

    async def get_run(self, run_id: str) -> SyncRun | None: ...

    async def list_runs(self, flow: str | None = None) -> list[SyncRun]: ...

    async def count_outcome(self, scope: str, outcome: str, at: datetime) -> None:
        """Count one settled event of `scope`; shared by every process, so status is the same anywhere."""
        ...

    async def outcome_tally(self, scope: str, since: datetime) -> OutcomeTally: ...

    async def record_outcome(self, outcome: OutcomeRecord) -> None: ...

    async def record_settlement(self, outcome: OutcomeRecord, scopes: Sequence[str]) -> None:
        """What settle stores: the outcome in the record's history, and counted (its kind, at its
        time) in each scope. Returns once all of it is stored; raises if any part was not. Stores
        group these writes with other settles' (one commit, one request per row), never skip them."""
        ...

    async def list_outcomes(self, flow: str, key: str) -> list[OutcomeRecord]:
        """The record's outcomes within the retention, oldest first."""
        ...

    async def close(self) -> None: ...


# An outcome purge runs inside a settle (the stores purge as they record an outcome), so it deletes at
# most this many rows: the first settle of a process after a large initial sync would otherwise delete
# every row past the retention, one request each, before its message completes. A purge that found
# rows is due again at the next settle, so a backlog goes a bounded piece per settle, many times faster
# than settles add rows; one that found none waits PURGE_INTERVAL_SECONDS.
OUTCOME_PURGE_ROWS = 200

# Purging is done by the stores when a row is dismissed, at most this often: no timer function is
# needed, and dismissed rows older than the retention only exist after someone dismissed something.
PURGE_INTERVAL_SECONDS = 3600


class RetentionClock:
    """When dismissed parked rows are next due for purging: at most once per PURGE_INTERVAL_SECONDS,
    so a dismissal costs a delete query now and then, not every time."""

    def __init__(self, retention_days: int | None) -> None:
        self.retention_days = retention_days
        self._last: float | None = None

    def cutoff_if_due(self) -> datetime | None:
        """The dismissal time before which rows go, if a purge is due now; else None."""
        if self.retention_days is None:
            return None
        now = time.monotonic()
        if self._last is not None and now - self._last < PURGE_INTERVAL_SECONDS:
            return None
        self._last = now
        return utc_now() - timedelta(days=self.retention_days)

    def due_again(self) -> None:
        """The purge just made left rows behind (it deletes a bounded number): the next call is due."""
        self._last = None
