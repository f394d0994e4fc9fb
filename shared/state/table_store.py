"""The state store on Azure Table Storage (production; Azurite in tests).

PartitionKey = flow, RowKey = record key (or parked / run id). Table keys may not contain / \\ # ?
or control characters and are at most 1 KiB, so keys are percent-encoded (and hashed when long),
with the original kept in a property. A string property holds at most 32K UTF-16 characters, so
a parked event's text is split across properties.

Outcomes (for `trace`) are partitioned by day: PartitionKey = the UTC date, RowKey = record|time|event,
where record is a fixed-length hash of flow and key (kept whole in properties, and checked on read),
so a key of any length or script falls in its record's range.
A record's history is one RowKey-range query per day of the retention, each inside one partition,
and the purge reads past days only, deleting a bounded piece of them per settle (_purge_outcomes).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any
from urllib.parse import quote

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import EdmType, EntityProperty, TableEntity, UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient

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
from shared.state.group_commit import GroupCommit, all_settled
from shared.values import utc_now

_log = logging.getLogger(__name__)

CHUNK = 30_000
MAX_KEY = 512
_SAFE = " -_.~|:@!$&'()*+,;="
# A key whose encoding is longer than MAX_KEY is stored under its head and hash, joined by "^": a
# character the percent-encoding always escapes (to %5E), so no key's own encoding holds one and no
# key, however crafted, can take a long key's row. Rows were hashed with "~" before, which the
# encoding keeps: a short key of that shape had the long key's RowKey (get_state reads those rows
# still, see _OLD_HASH_MARK).
_HASH_MARK = "^"
_OLD_HASH_MARK = "~"


def _hashed(encoded: str, key: str, mark: str) -> str:
    return encoded[:200] + mark + hashlib.sha256(key.encode()).hexdigest()


def encode_key(key: str) -> str:
    encoded = quote(key, safe=_SAFE)
    if len(encoded) > MAX_KEY:
        return _hashed(encoded, key, _HASH_MARK)
    return encoded


def _fit(text: str, limit: int = CHUNK) -> str:
    """The longest head of `text` whose UTF-16 length is at most `limit`: Table Storage measures a
    string property in UTF-16 units (32K at most), where a character beyond the BMP (an emoji) is two."""
    if len(text) <= limit // 2:
        return text
    encoded = text.encode("utf-16-le", "surrogatepass")
    if len(encoded) <= 2 * limit:
        return text
    head = encoded[: 2 * limit].decode("utf-16-le", "surrogatepass")
    n = len(head)
    if "\ud800" <= head[-1] <= "\udbff" and text[n - 1] != head[-1]:
        n -= 1  # the cut went through a character's surrogate pair: it goes whole to the next part
    return text[:n]


def _split(text: str) -> list[str]:
    parts = []
    while text:
        part = _fit(text)
        parts.append(part)
        text = text[len(part) :]
    return parts or [""]


# An entity holds at most 1 MiB (Understanding the Table service data model): 14 parts of 60 KB leave
# room for the row's other properties. A longer event (a 256 KB message of escaped control characters
# is 1.5 MB of JSON) goes on in rows of its own, PartitionKey = the parked id, in order.
ROW_EVENT_PARTS = 14
PARTS_TABLE = "parkedparts"


def _event_properties(parts: Sequence[str], first: int = 0) -> dict[str, str]:
    return {f"event_{first + i}": part for i, part in enumerate(parts)}


def _int(value: Any) -> int | None:
    if isinstance(value, EntityProperty):
        value = value.value
    return None if value is None else int(value)


def _count_property(outcome: str) -> str:
    # Property names are identifiers: "retry-later" is stored as n_retry_later.
    return "n_" + outcome.replace("-", "_")


def _counts_of(entity: Mapping[str, Any]) -> dict[str, int]:
    return {name[2:].replace("_", "-"): int(value) for name, value in entity.items() if name.startswith("n_")}


@dataclass(eq=False)
class _TallyRow:
    """This instance's counts for one scope and bucket, as last stored."""

    scope: str
    bucket: str
    reread: bool
    stored: dict[str, int] = field(default_factory=dict)
    commit: GroupCommit[str] = field(init=False)


@dataclass(eq=False)
class _LastWriteRow:
    scope: str
    stored: datetime | None = None
    commit: GroupCommit[datetime] = field(init=False)


# A transaction's payload may be at most 4 MiB; an entity's size is reckoned from its text at six
# bytes a character (the widest a JSON escape makes one), so a full chunk always fits.
TRANSACTION_ENTITIES = 100
TRANSACTION_BYTES = 4 * 1024 * 1024 - 64 * 1024


def _transaction_chunks(entities: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    size = 0
    for entity in entities:
        weight = 6 * sum(len(name) + len(str(value)) for name, value in entity.items()) + 256
        if chunk and (len(chunk) == TRANSACTION_ENTITIES or size + weight > TRANSACTION_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(entity)
        size += weight
    if chunk:
        yield chunk


def _not_about_an_entity(exc: HttpResponseError) -> bool:
    """Throttled, timed out, the service or the table away: sending each row alone would only
    multiply the requests (the SDK has retried already), so every settle of the chunk fails."""
    status = exc.status_code or 0
    return status >= 500 or status in (404, 408, 429)


class TableStateStore:
    def __init__(
        self,
        *,
        connection_string: str | None = None,
        account_url: str | None = None,
        credential: Any = None,
        table_prefix: str = "",
        parked_retention_days: int | None = None,
        outcome_retention_days: int = DEFAULT_OUTCOME_RETENTION_DAYS,
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        """`client_options` go to the Azure SDK client as they are (a request hook, a transport)."""
        self._retention = RetentionClock(parked_retention_days)
        self._outcome_retention = RetentionClock(outcome_retention_days)
        options = dict(client_options or {})
        if connection_string:
            self._service = TableServiceClient.from_connection_string(connection_string, **options)
        elif account_url:
            if credential is None:
                from azure.identity.aio import DefaultAzureCredential

                credential = DefaultAzureCredential()
            self._service = TableServiceClient(endpoint=account_url, credential=credential, **options)
        else:
            raise ValueError("a connection string or an account URL is required")
        self._prefix = table_prefix
        self._tables: dict[str, TableClient] = {}
        self._creating: dict[str, asyncio.Future[TableClient]] = {}
        # Each process counts outcomes in rows of its own (bucket|instance), so instances never
        # contend for one row: a count is one upsert, and a tally sums the instances' rows.
        self._instance = uuid.uuid4().hex[:12]
        # Tally, last-write and outcome writes go by group commit (shared/state/group_commit.py):
        # a burst of settles makes one write per row or partition in flight, not one per settle.
        self._tally_rows: dict[tuple[str, str], _TallyRow] = {}
        self._newest_bucket: dict[str, str] = {}
        self._last_writes: dict[str, _LastWriteRow] = {}
        self._outcome_days: dict[str, GroupCommit[dict[str, Any]]] = {}

    async def _table(self, name: str) -> TableClient:
        client = self._tables.get(name)
        if client is not None:
            return client
        # The first burst of settles would otherwise send one create-table each.
        creating = self._creating.get(name)
        if creating is None:
            creating = self._creating[name] = asyncio.ensure_future(self._create_table(name))
        try:
            return await asyncio.shield(creating)
        finally:
            if creating.done():
                self._creating.pop(name, None)

    async def _create_table(self, name: str) -> TableClient:
        full = f"{self._prefix}{name}"
        with contextlib.suppress(ResourceExistsError):
            await self._service.create_table(full)
        client = self._service.get_table_client(full)
        self._tables[name] = client
        return client

    async def _get(self, table: str, partition: str, row: str) -> dict[str, Any] | None:
        client = await self._table(table)
        try:
            return dict(await client.get_entity(partition_key=encode_key(partition), row_key=encode_key(row)))
        except ResourceNotFoundError:
            return None

    async def _put(self, table: str, partition: str, row: str, values: dict[str, Any]) -> None:
        client = await self._table(table)
        entity = {"PartitionKey": encode_key(partition), "RowKey": encode_key(row), **values}
        await client.upsert_entity(entity, mode=UpdateMode.REPLACE)

    async def _state_entity(self, flow: str, key: str, row_key: str) -> TableEntity | None:
        client = await self._table("syncstate")
        try:
            entity = await client.get_entity(partition_key=encode_key(flow), row_key=row_key)
        except ResourceNotFoundError:
            return None
        # The row under a key's RowKey is that key's only if it says so: another key's (under a hash,
        # or an old row's, _OLD_HASH_MARK) is no state of this one.
        return entity if entity.get("key") == key and entity.get("flow") == flow else None

    async def get_state(self, flow: str, key: str) -> SyncState | None:
        row_key = encode_key(key)
        entity = await self._state_entity(flow, key, row_key)
        revision = None if entity is None else entity.metadata.get("etag")
        if entity is None and _HASH_MARK in row_key:
            # A long key's row from before the "^" mark: read where it is, written on under the new
            # RowKey (revision None: a create there, refused if another instance made one since).
            # The old row stays, unread once the new one exists; a long key of a record nothing was
            # stored for costs this one read more, and only such keys do.
            old = quote(key, safe=_SAFE)
            entity = await self._state_entity(flow, key, _hashed(old, key, _OLD_HASH_MARK))
        if entity is None:
            return None
        return SyncState(
            flow=flow,
            key=key,
            version=_int(entity.get("version")),
            payload_hash=entity.get("payload_hash"),
            target_key=entity.get("target_key"),
            tombstone=bool(entity.get("tombstone")),
            updated_at=datetime.fromisoformat(entity["updated_at"]),
            # The ETag comes with the read: a conditional write after it costs no request more.
            revision=revision,
        )

    async def find_by_target_key(self, flow: str, target_key: str) -> SyncState | None:
        client = await self._table("syncstate")
        query = "PartitionKey eq @flow and target_key eq @target and tombstone eq false"
        parameters = {"flow": encode_key(flow), "target": target_key}
        async for entity in client.query_entities(query, parameters=parameters):
            # A long key's row from before the "^" mark stays behind its new row (get_state): what
            # it says of the target is only the record's if the record's state still says it.
            state = await self.get_state(flow, entity["key"])
            if state is not None and state.target_key == target_key and not state.tombstone:
                return state
        return None

    async def put_state(self, state: SyncState, *, read: Read = UNREAD) -> None:
        values: dict[str, Any] = {
            "flow": state.flow,
            "key": state.key,
            "tombstone": state.tombstone,
            "updated_at": state.updated_at.isoformat(),
        }
        if state.version is not None:
            # Table Storage integers are 32-bit unless typed; versions (rowversions) need 64.
            values["version"] = EntityProperty(state.version, EdmType.INT64)
        for name in ("payload_hash", "target_key"):
            if getattr(state, name) is not None:
                values[name] = getattr(state, name)
        client = await self._table("syncstate")
        entity = {"PartitionKey": encode_key(state.flow), "RowKey": encode_key(state.key), **values}
        if read is UNREAD:
            answer = await client.upsert_entity(entity, mode=UpdateMode.REPLACE)
        else:
            try:
                if read is None or read.revision is None:
                    # There was no row: only a create, which fails if another instance made one since.
                    answer = await client.create_entity(entity)
                else:
                    answer = await client.update_entity(
                        entity,
                        mode=UpdateMode.REPLACE,
                        etag=read.revision,
                        match_condition=MatchConditions.IfNotModified,
                    )
            except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError) as exc:
                # Made since (409), changed since (412), gone since (404): not the row that was read.
                raise StateConflictError(f"the state of {state.flow} {state.key} changed since it was read") from exc
        # The ETag comes back with the write too: a later conditional write of this state needs no read.
        state.revision = answer.get("etag")

    async def park(self, parked: ParkedEvent) -> None:
        await self.update_parked(parked)

    async def update_parked(self, parked: ParkedEvent) -> None:
        values: dict[str, Any] = {
            "id": parked.id,
            "flow": parked.flow,
            "key": _fit(parked.key),  # shown to people; the event, split, keeps the whole record
            "reason": _fit(parked.reason, 1024),
            "error": _fit(parked.error),
            "attempts": parked.attempts,
            "parked_at": parked.parked_at.isoformat(),
            "status": parked.status,
        }
        parts = _split(parked.event)
        values |= _event_properties(parts[:ROW_EVENT_PARTS]) | {"event_parts": len(parts)}
        # The overflow first: the row never names parts that are not there yet.
        for row, start in enumerate(range(ROW_EVENT_PARTS, len(parts), ROW_EVENT_PARTS)):
            overflow = _event_properties(parts[start : start + ROW_EVENT_PARTS], start)
            await self._put(PARTS_TABLE, parked.id, f"{row:06d}", overflow)
        for name in ("closed_by", "closed_reason"):
            if getattr(parked, name) is not None:
                # The admin API bounds a dismissal's reason; a store keeps what fits whatever it is given.
                values[name] = _fit(getattr(parked, name))
        if parked.closed_at is not None:
            values["closed_at"] = parked.closed_at.isoformat()
        await self._put("parked", parked.flow, parked.id, values)
        if parked.status == "dismissed":
            await self._purge_now_and_then()

    async def _purge_now_and_then(self) -> None:
        cutoff = self._retention.cutoff_if_due()
        if cutoff is not None:
            await self.purge_dismissed(cutoff)

    async def purge_dismissed(self, before: datetime) -> int:
        """Delete the rows dismissed before `before`; the number deleted."""
        client = await self._table("parked")
        # closed_at is an ISO-8601 UTC string, so string order is time order.
        query = "status eq @status and closed_at lt @before"
        doomed = [
            dict(entity)
            async for entity in client.query_entities(
                query, parameters={"status": "dismissed", "before": before.isoformat()}
            )
        ]
        for entity in doomed:
            if int(entity.get("event_parts", 1)) > ROW_EVENT_PARTS:
                await self._delete_overflow(entity["id"])
            with contextlib.suppress(ResourceNotFoundError):
                await client.delete_entity(partition_key=entity["PartitionKey"], row_key=entity["RowKey"])
        return len(doomed)

    async def _overflow(self, parked_id: str) -> list[dict[str, Any]]:
        client = await self._table(PARTS_TABLE)
        query = "PartitionKey eq @id"
        return [dict(row) async for row in client.query_entities(query, parameters={"id": encode_key(parked_id)})]

    async def _delete_overflow(self, parked_id: str) -> None:
        client = await self._table(PARTS_TABLE)
        for row in await self._overflow(parked_id):
            with contextlib.suppress(ResourceNotFoundError):
                await client.delete_entity(partition_key=row["PartitionKey"], row_key=row["RowKey"])

    async def _event_text(self, entity: dict[str, Any]) -> str:
        count = int(entity.get("event_parts", 1))
        parts = dict(entity)
        if count > ROW_EVENT_PARTS:
            for row in await self._overflow(entity["id"]):
                parts.update(row)
        return "".join(parts[f"event_{i}"] for i in range(count))

    async def _parked(self, entity: dict[str, Any]) -> ParkedEvent:
        return ParkedEvent(
            id=entity["id"],
            flow=entity["flow"],
            key=entity["key"],
            reason=entity["reason"],
            error=entity["error"],
            attempts=int(entity["attempts"]),
            event=await self._event_text(entity),
            parked_at=datetime.fromisoformat(entity["parked_at"]),
            status=entity["status"],
            closed_by=entity.get("closed_by"),
            closed_reason=entity.get("closed_reason"),
            closed_at=datetime.fromisoformat(entity["closed_at"]) if entity.get("closed_at") else None,
        )

    async def get_parked(self, parked_id: str) -> ParkedEvent | None:
        client = await self._table("parked")
        async for entity in client.query_entities("id eq @id", parameters={"id": parked_id}):
            return await self._parked(dict(entity))
        return None

    async def list_parked(
        self,
        *,
        flow: str | None = None,
        reason: str | None = None,
        key: str | None = None,
        status: str | None = "parked",
        limit: int | None = None,
    ) -> list[ParkedEvent]:
        clauses, parameters = [], {}
        for name, value in (("flow", flow), ("key", key), ("status", status)):
            if value is not None:
                clauses.append(f"{name} eq @{name}")
                parameters[name] = value
        if reason is not None:
            # A prefix match: reasons look like "missing-dependency: ..." and people filter by the head.
            clauses.append("reason ge @reason_low and reason lt @reason_high")
            parameters["reason_low"] = reason
            parameters["reason_high"] = reason + "\uffff"
        client = await self._table("parked")
        query = " and ".join(clauses) if clauses else None
        found = []
        entities = client.query_entities(query, parameters=parameters) if query else client.list_entities()
        async for entity in entities:
            found.append(await self._parked(dict(entity)))
        found.sort(key=lambda p: (p.parked_at, p.id), reverse=True)
        return found[:limit] if limit is not None else found

    async def put_run(self, run: SyncRun) -> None:
        values: dict[str, Any] = {
            "id": run.id,
            "flow": run.flow,
            "status": run.status,
            "counts": json.dumps(run.counts),
            "errors": errors_text(run.errors),
            "options": options_text(run.options),
            "started_at": run.started_at.isoformat(),
            "updated_at": run.updated_at.isoformat(),
        }
        if run.cursor is not None:
            values["cursor"] = run.cursor
        await self._put("syncruns", run.flow, run.id, values)

    @staticmethod
    def _run(entity: dict[str, Any]) -> SyncRun:
        return SyncRun(
            id=entity["id"],
            flow=entity["flow"],
            status=entity["status"],
            cursor=entity.get("cursor"),
            counts=json.loads(entity["counts"]),
            errors=errors_from(entity["errors"]),
            options=json.loads(entity["options"]),
            started_at=datetime.fromisoformat(entity["started_at"]),
            updated_at=datetime.fromisoformat(entity["updated_at"]),
        )

    async def get_run(self, run_id: str) -> SyncRun | None:
        client = await self._table("syncruns")
        async for entity in client.query_entities("id eq @id", parameters={"id": run_id}):
            return self._run(dict(entity))
        return None

    async def list_runs(self, flow: str | None = None) -> list[SyncRun]:
        client = await self._table("syncruns")
        entities = client.query_entities("flow eq @flow", parameters={"flow": flow}) if flow else client.list_entities()
        runs = [self._run(dict(entity)) async for entity in entities]
        runs.sort(key=lambda r: r.started_at, reverse=True)
        return runs

    async def count_outcome(self, scope: str, outcome: str, at: datetime) -> None:
        bucket = tally_bucket(at)
        row = self._tally_rows.get((scope, bucket))
        if row is None:
            row = self._tally_row(scope, bucket)
        writes = [row.commit.submit(outcome)]
        if outcome == "written":
            last = self._last_writes.get(scope)
            if last is None:
                last = self._last_writes[scope] = _LastWriteRow(scope)
                last.commit = GroupCommit(partial(self._write_last_write, last))
            if last.stored is None or at > last.stored:
                writes.append(last.commit.submit(at))
        if len(writes) == 1:
            await writes[0]
        else:
            await all_settled(*writes)

    def _tally_row(self, scope: str, bucket: str) -> _TallyRow:
        newest = self._newest_bucket.get(scope)
        # Rows of past buckets are let go (below) once idle; a late count for one must not start it
        # again from zero, so a bucket older than the newest first reads what its row holds.
        row = _TallyRow(scope, bucket, reread=newest is not None and bucket < newest)
        row.commit = GroupCommit(partial(self._write_tally, row))
        self._tally_rows[(scope, bucket)] = row
        if newest is None or bucket > newest:
            self._newest_bucket[scope] = bucket
            for key in [k for k, r in self._tally_rows.items() if k[0] == scope and k[1] < bucket and r.commit.idle]:
                del self._tally_rows[key]
        return row

    async def _write_tally(self, row: _TallyRow, outcomes: list[str]) -> None:
        """Write this instance's counts for the row, the outcomes that waited included: absolute
        counts, so one write carries every count before it, and a failed one changes nothing here."""
        row_key = f"{row.bucket}|{self._instance}"
        if row.reread:
            entity = await self._get("outcometally", row.scope, row_key)
            row.stored = _counts_of(entity or {})
            row.reread = False
        counts = dict(row.stored)
        for outcome in outcomes:
            counts[outcome] = counts.get(outcome, 0) + 1
        values: dict[str, Any] = {
            "scope": row.scope,
            "bucket": row.bucket,
            **{_count_property(k): v for k, v in counts.items()},
        }
        await self._put("outcometally", row.scope, row_key, values)
        row.stored = counts

    async def _write_last_write(self, row: _LastWriteRow, times: list[datetime]) -> None:
        latest = max(times)
        if row.stored is not None and latest <= row.stored:
            return
        # One row per instance too ("~" sorts after every bucket); the tally takes the latest.
        await self._put("outcometally", row.scope, f"~last-write|{self._instance}", {"at": latest.isoformat()})
        row.stored = latest

    async def outcome_tally(self, scope: str, since: datetime) -> OutcomeTally:
        client = await self._table("outcometally")
        counts: dict[str, int] = {}
        last_write = None
        query = "PartitionKey eq @pk and RowKey ge @low"
        async for entity in client.query_entities(
            query, parameters={"pk": encode_key(scope), "low": tally_bucket(since)}
        ):
            if entity["RowKey"].startswith("~last-write|"):
                at = datetime.fromisoformat(entity["at"])
                last_write = at if last_write is None or at > last_write else last_write
                continue
            for kind, value in _counts_of(entity).items():
                counts[kind] = counts.get(kind, 0) + value
        return OutcomeTally(counts, last_write)

    @staticmethod
    def _outcome_prefix(flow: str, key: str) -> str:
        # Not the encoded key: encoded again inside the row key, a long or non-ASCII one was hashed
        # past 512 characters out of the range list_outcomes reads, and trace showed no history.
        record = hashlib.sha256(json.dumps([flow, key]).encode()).hexdigest()[:32]
        return f"{record}|"

    async def record_outcome(self, outcome: OutcomeRecord) -> None:
        values: dict[str, Any] = {
            "flow": outcome.flow,
            "key": outcome.key,
            "kind": outcome.kind,
            "at": outcome.at.isoformat(),
        }
        for name in ("reason", "detail", "source", "operation", "event_id"):
            value = getattr(outcome, name)
            if value is not None:
                values[name] = _fit(str(value))
        event = encode_key(outcome.event_id or "")
        row = f"{self._outcome_prefix(outcome.flow, outcome.key)}{outcome.at.isoformat()}|{event}"
        day = outcome.at.date().isoformat()
        entity = {"PartitionKey": day, "RowKey": row, **values}
        partition = self._outcome_days.get(day)
        if partition is None:
            partition = self._outcome_days[day] = GroupCommit(partial(self._write_outcomes, day))
            for old in [d for d, p in self._outcome_days.items() if d < day and p.idle]:
                del self._outcome_days[old]
        await partition.submit(entity)
        cutoff = self._outcome_retention.cutoff_if_due()
        if cutoff is not None:
            await self._purge_outcomes(cutoff)

    async def record_settlement(self, outcome: OutcomeRecord, scopes: Sequence[str]) -> None:
        # Different rows and partitions: the requests go in parallel, each by its own group commit.
        await all_settled(
            self.record_outcome(outcome), *(self.count_outcome(scope, outcome.kind, outcome.at) for scope in scopes)
        )

    async def _write_outcomes(self, day: str, entities: list[dict[str, Any]]) -> list[BaseException | None]:
        """One day's outcomes as entity-group transactions (one partition, at most 100 entities and
        4 MiB each: Performing entity group transactions), each answering the settles it carried."""
        client = await self._table("outcomes")
        chunks = list(_transaction_chunks(entities))
        results = await asyncio.gather(*(self._write_outcome_chunk(client, c) for c in chunks), return_exceptions=True)
        answers: list[BaseException | None] = []
        for chunk, result in zip(chunks, results, strict=True):
            answers += [result] * len(chunk) if isinstance(result, BaseException) else result
        return answers

    @staticmethod
    async def _write_outcome_chunk(client: TableClient, chunk: list[dict[str, Any]]) -> list[BaseException | None]:
        if len(chunk) > 1:
            # An entity may appear only once in a transaction: a row written twice keeps the later
            # values, as two upserts in a row would; both callers are answered by the one operation.
            latest = {entity["RowKey"]: entity for entity in chunk}
            try:
                await client.submit_transaction([("upsert", e, {"mode": UpdateMode.REPLACE}) for e in latest.values()])
                return [None] * len(chunk)
            except HttpResponseError as exc:
                if _not_about_an_entity(exc):
                    raise
        # Refused for one of its rows (the transaction fails whole): each row alone, so only a bad
        # row's own settle fails, with that row's error, whatever it is.
        results = await asyncio.gather(
            *(client.upsert_entity(entity, mode=UpdateMode.REPLACE) for entity in chunk), return_exceptions=True
        )
        return [r if isinstance(r, BaseException) else None for r in results]

    async def _purge_outcomes(self, before: datetime) -> None:
        """Delete up to OUTCOME_PURGE_ROWS outcomes of the days before `before`'s, as entity-group
        transactions of up to 100 per day, in parallel. It runs inside a settle: a backlog (after a
        large initial sync) goes a bounded piece per settle, the purge due again while it finds rows."""
        client = await self._table("outcomes")
        days: dict[str, list[dict[str, Any]]] = {}
        more = False
        results: list[Any]
        try:
            pages = client.query_entities(
                "PartitionKey lt @day",
                parameters={"day": before.date().isoformat()},
                results_per_page=OUTCOME_PURGE_ROWS,
                select=["PartitionKey", "RowKey"],
            ).by_page()
            async for page in pages:
                async for entity in page:
                    row = {"PartitionKey": entity["PartitionKey"], "RowKey": entity["RowKey"]}
                    days.setdefault(row["PartitionKey"], []).append(row)
                break  # one page, at most OUTCOME_PURGE_ROWS
            # A page may hold fewer, even none, and still not be the last (Query timeout and pagination).
            more = bool(days) or getattr(pages, "continuation_token", None) is not None
            chunks = [
                rows[i : i + TRANSACTION_ENTITIES]
                for rows in days.values()
                for i in range(0, len(rows), TRANSACTION_ENTITIES)
            ]
            results = await asyncio.gather(
                *(client.submit_transaction([("delete", row) for row in chunk]) for chunk in chunks),
                return_exceptions=True,
            )
        except AzureError as exc:
            results = [exc]
        failed = [r for r in results if isinstance(r, BaseException)]
        for error in failed:
            if not isinstance(error, AzureError):
                raise error
        # A chunk refused as not found (the transaction fails whole) lost a row to another instance
        # purging the same rows: the next purge reads again. Any other failure waits the interval,
        # logged: the settle's own writes are stored, and failing it for a purge would redeliver it.
        if more and all(getattr(error, "status_code", None) == 404 for error in failed):
            self._outcome_retention.due_again()
        for error in failed:
            if getattr(error, "status_code", None) != 404:
                _log.warning("outcome purge failed, tried again within the hour: %s", error)

    async def list_outcomes(self, flow: str, key: str) -> list[OutcomeRecord]:
        client = await self._table("outcomes")
        low = self._outcome_prefix(flow, key)  # then the time: digits, before "~"
        days = self._outcome_retention.retention_days or DEFAULT_OUTCOME_RETENTION_DAYS
        today = utc_now().date()
        found = []
        for back in range(days, -1, -1):
            day = (today - timedelta(days=back)).isoformat()
            query = "PartitionKey eq @day and RowKey ge @low and RowKey lt @high"
            parameters = {"day": day, "low": low, "high": low + "~"}
            async for entity in client.query_entities(query, parameters=parameters):
                found.append(
                    OutcomeRecord(
                        flow=entity["flow"],
                        key=entity["key"],
                        kind=entity["kind"],
                        reason=entity.get("reason"),
                        detail=entity.get("detail"),
                        source=entity.get("source"),
                        operation=entity.get("operation"),
                        event_id=entity.get("event_id"),
                        at=datetime.fromisoformat(entity["at"]),
                    )
                )
        found.sort(key=lambda o: o.at)
        return [o for o in found if o.flow == flow and o.key == key]

    async def close(self) -> None:
        for client in self._tables.values():
            await client.close()
        await self._service.close()
