"""Test doubles for unit tests of the engine alone: in-memory services that record what they got."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.clients.base import ChangePage, Key, KeyBinds, Page, Row, WriteMode, WriteResult
from shared.clients.batch import BatchRequest, BatchResponse
from shared.errors import NotFoundError, RecordExistsError
from shared.events import ChangeEvent
from shared.state.base import (
    UNREAD,
    OutcomeRecord,
    OutcomeTally,
    ParkedEvent,
    Read,
    StateConflictError,
    SyncRun,
    SyncState,
)


def _key(key: Key) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, str(v).lower()) for k, v in key.items()))


@dataclass
class FakeDataverse:
    tables: dict[str, dict[str, Row]] = field(default_factory=dict)
    writes: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = field(default_factory=list)
    deletes: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    gets: int = 0

    def add(self, entity_set: str, record_id: str, row: Row) -> None:
        self.tables.setdefault(entity_set, {})[record_id.lower()] = row

    async def get(self, entity_set: str, key: Key, select: Sequence[str] | None = None) -> Row | None:
        self.gets += 1
        rows = self.tables.get(entity_set, {})
        if len(key) == 1 and "id" in key:
            return rows.get(str(key["id"]).lower())
        for row in rows.values():
            if all(str(row.get(k, "")).lower() == str(v).lower() for k, v in key.items()):
                return row
        (value,) = key.values() if len(key) == 1 else (None,)
        return rows.get(str(value).lower()) if value is not None else None

    async def write(
        self, entity_set: str, key: Key, body: Row, mode: WriteMode = "upsert", key_binds: KeyBinds | None = None
    ) -> WriteResult:
        self.writes.append((entity_set, mode, dict(key), dict(body)))
        return WriteResult()

    async def write_many(
        self,
        entity_set: str,
        rows: Sequence[tuple[Key, Row]],
        changeset_size: int = 500,
        key_binds: Sequence[KeyBinds] | None = None,
    ) -> int:
        for key, body in rows:
            self.writes.append((entity_set, "upsert", dict(key), dict(body)))
        return -(-len(rows) // changeset_size)

    async def create(self, entity_set: str, body: Row) -> WriteResult:
        self.writes.append((entity_set, "create", {}, dict(body)))
        return WriteResult()

    async def delete(self, entity_set: str, key: Key) -> bool:
        self.deletes.append((entity_set, dict(key)))
        return True

    async def query(self, entity_set: str, **_: Any) -> AsyncIterator[list[Row]]:  # pragma: no cover
        yield list(self.tables.get(entity_set, {}).values())

    def pages(self, entity_set: str, **_: Any) -> AsyncIterator[Page]:  # pragma: no cover
        raise NotImplementedError("unit tests of the engine do not page")

    def changes(self, entity_set: str, **_: Any) -> AsyncIterator[ChangePage]:  # pragma: no cover
        raise NotImplementedError("unit tests of the engine track no changes")

    async def batch(self, requests: list[BatchRequest]) -> list[BatchResponse]:  # pragma: no cover
        raise NotImplementedError("unit tests of the engine do not batch")

    async def metadata(self) -> str:  # pragma: no cover
        raise NotImplementedError("unit tests of the engine read no $metadata")


@dataclass
class FakeFinance:
    tables: dict[str, dict[tuple[tuple[str, str], ...], Row]] = field(default_factory=dict)
    calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    key_fields: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def add(self, entity_set: str, row: Row) -> None:
        fields = self.key_fields[entity_set]
        self.tables.setdefault(entity_set, {})[_key({f: row[f] for f in fields})] = dict(row)

    async def get(self, entity_set: str, key: Key, select: Sequence[str] | None = None) -> Row | None:
        self.calls.append(("GET", entity_set, dict(key)))
        return self.tables.get(entity_set, {}).get(_key(key))

    async def create(self, entity_set: str, body: Row, key: Key | None = None) -> WriteResult:
        self.calls.append(("POST", entity_set, dict(body)))
        fields = self.key_fields[entity_set]
        row_key = _key({f: body[f] for f in fields})
        table = self.tables.setdefault(entity_set, {})
        if row_key in table:
            raise RecordExistsError("finance", 500, "The record already exists.")
        table[row_key] = dict(body)
        return WriteResult(created=True)

    async def update(self, entity_set: str, key: Key, body: Row) -> WriteResult:
        self.calls.append(("PATCH", entity_set, {**dict(key), **body}))
        table = self.tables.setdefault(entity_set, {})
        if _key(key) not in table:
            raise NotFoundError("finance", 404, "not found")
        table[_key(key)].update(body)
        return WriteResult()

    async def delete(self, entity_set: str, key: Key) -> bool:
        self.calls.append(("DELETE", entity_set, dict(key)))
        return self.tables.get(entity_set, {}).pop(_key(key), None) is not None

    async def query(self, entity_set: str, **_: Any) -> AsyncIterator[list[Row]]:  # pragma: no cover
        yield list(self.tables.get(entity_set, {}).values())

    def pages(self, entity_set: str, **_: Any) -> AsyncIterator[Page]:  # pragma: no cover
        raise NotImplementedError("unit tests of the engine do not page")

    def pages_by_key(
        self, entity_set: str, key_fields: Sequence[str], **_: Any
    ) -> AsyncIterator[Page]:  # pragma: no cover
        raise NotImplementedError("unit tests of the engine do not page")

    async def batch(self, requests: list[BatchRequest]) -> list[BatchResponse]:  # pragma: no cover
        raise NotImplementedError("unit tests of the engine do not batch")

    async def metadata(self) -> str:  # pragma: no cover
        raise NotImplementedError("unit tests of the engine read no $metadata")


@dataclass
class MemoryState:
    states: dict[tuple[str, str], SyncState] = field(default_factory=dict)
    parked: dict[str, ParkedEvent] = field(default_factory=dict)
    outcomes: list[OutcomeRecord] = field(default_factory=list)
    _revisions: Iterator[int] = field(default_factory=itertools.count, repr=False)

    # Copies in and out, as a real store: what a caller changes in a state it read is not stored
    # until it writes it, and a conditional write is refused as the real stores refuse it.
    async def get_state(self, flow: str, key: str) -> SyncState | None:
        stored = self.states.get((flow, key))
        return None if stored is None else dataclasses.replace(stored)

    async def put_state(self, state: SyncState, *, read: Read = UNREAD) -> None:
        stored = self.states.get((state.flow, state.key))
        if read is not UNREAD:
            expected = None if read is None else read.revision
            if (None if stored is None else stored.revision) != expected:
                raise StateConflictError(f"the state of {state.flow} {state.key} changed since it was read")
        state.revision = str(next(self._revisions))
        self.states[(state.flow, state.key)] = dataclasses.replace(state)

    async def find_by_target_key(self, flow: str, target_key: str) -> SyncState | None:
        found = (s for (f, _), s in self.states.items() if f == flow and s.target_key == target_key and not s.tombstone)
        stored = next(found, None)
        return None if stored is None else dataclasses.replace(stored)

    async def park(self, parked: ParkedEvent) -> None:
        self.parked[parked.id] = parked

    async def get_parked(self, parked_id: str) -> ParkedEvent | None:
        return self.parked.get(parked_id)

    async def list_parked(self, **_: Any) -> list[ParkedEvent]:
        return list(self.parked.values())

    async def update_parked(self, parked: ParkedEvent) -> None:
        self.parked[parked.id] = parked

    async def put_run(self, run: SyncRun) -> None:  # pragma: no cover
        pass

    async def get_run(self, run_id: str) -> SyncRun | None:  # pragma: no cover
        return None

    async def list_runs(self, flow: str | None = None) -> list[SyncRun]:  # pragma: no cover
        return []

    async def count_outcome(self, scope: str, outcome: str, at: datetime) -> None:
        pass

    async def outcome_tally(self, scope: str, since: datetime) -> OutcomeTally:  # pragma: no cover
        return OutcomeTally()

    async def record_outcome(self, outcome: OutcomeRecord) -> None:
        self.outcomes.append(outcome)

    async def record_settlement(self, outcome: OutcomeRecord, scopes: Sequence[str]) -> None:
        self.outcomes.append(outcome)

    async def list_outcomes(self, flow: str, key: str) -> list[OutcomeRecord]:
        return [o for o in self.outcomes if (o.flow, o.key) == (flow, key)]

    async def close(self) -> None:
        pass


@dataclass
class RecordingSender:
    sent: list[tuple[str, ChangeEvent, float]] = field(default_factory=list)
    raw: list[tuple[str, bytes, dict[str, str], str]] = field(default_factory=list)

    async def send_events(self, queue: str, events: Sequence[ChangeEvent], *, delay_seconds: float = 0.0) -> None:
        self.sent.extend((queue, event, delay_seconds) for event in events)

    async def send_raw(self, queue: str, body: bytes, properties: dict[str, str], content_type: str) -> None:
        self.raw.append((queue, body, properties, content_type))

    async def close(self) -> None:
        pass
