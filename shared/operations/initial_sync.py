"""initial-sync FLOW: page through the source and feed the flow queue through the normal write path.

No row limit and no 24-hour timeout of our own. A run is a row in `syncruns` holding its cursor (the
nextLink of the last page fed from Dataverse, the key of the last row fed from Finance, which is read
by key) and its counts; a run that dies is resumed from that cursor, and the rows it fed twice are
harmless: the flow's unchanged-payload guard skips them.

From the admin HTTP function a run starts in the background (start_in_background) and goes in slices
(run_slice) from the admin-runs queue: an HTTP call is cut off after 230 s whatever the function
timeout, and a queue message's lock lasts 5 minutes, so each slice stops after SLICE_SECONDS at a
page boundary and puts the run's id back on the queue, whose function continues it from the cursor.

The next page is read while the current one is fed (shared/operations/read_ahead.py): the source's
time on a page and the bus's on its events overlap, two pages held at most, and the cursor still
names the first page not fully fed.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

from shared.bus import ADMIN_RUNS_QUEUE
from shared.clients.addressing import FINANCE_WILDCARD, filter_for_key, literal
from shared.clients.base import Page
from shared.errors import AuthError, OperatorError, TransientServiceError
from shared.events import ChangeEvent, Operation, Source, derive_id
from shared.maps import CompanyRuleKind, Registry, System, TableMap
from shared.operations.read_ahead import in_turn, read_ahead
from shared.pipeline import source_key
from shared.records import normalize_finance_row, normalize_webapi_row, row_version
from shared.runtime import Runtime
from shared.state.base import StateStore, SyncRun
from shared.values import utc_now
from shared.wire import typed_key

Progress = Callable[[SyncRun], None]

# Well under the 230 s an HTTP call may last and the 5-minute message lock; a page takes seconds.
SLICE_SECONDS = 120.0
ADMIN_PAGE_SIZE = 5000
# Events sent at once while a page is fed: small enough that the read ahead gets the loop often.
SEND_CHUNK = 500


def source_filter(table_map: TableMap, since: datetime | None) -> str | None:
    """The map's own OData filter, and the rows changed since a time, for a query of the source."""
    clauses = []
    if table_map.filter is not None and table_map.filter.odata:
        clauses.append(f"({table_map.filter.odata})")
    if since is not None:
        check_since(table_map)
        clauses.append(f"modifiedon ge {literal(since)}")
    return " and ".join(clauses) or None


def check_since(table_map: TableMap) -> None:
    """Only Dataverse rows say when they changed: none of the Finance entities the maps read has a
    modified-time field in the live $metadata, so a filter on one is refused by Finance."""
    if table_map.source.system is System.FINANCE:
        raise OperatorError(
            f"{table_map.name} reads Finance's {table_map.source.entity_set}, which has no modified-time field: "
            "run it without --since (rows that did not change are written as unchanged, not again)"
        )


def company_field_of(table_map: TableMap) -> str:
    """The field of the Finance source rows that names their legal entity, for a filter by company."""
    rule = table_map.company
    if rule.kind is CompanyRuleKind.FIELD and rule.source:
        return rule.source  # ReferenceDataAreaId, DAreaId: export entities name it their own way
    keyed = [column for column in table_map.source.key_columns if column.lower() == "dataareaid"]
    if keyed:
        return keyed[0]
    raise OperatorError(
        f"{table_map.name} reads Finance's {table_map.source.entity_set}, which is not kept per legal entity: "
        "run it without --companies"
    )


def source_pages(
    runtime: Runtime,
    table_map: TableMap,
    *,
    entity_set: str | None = None,
    companies: list[str] | None = None,
    company_field: str | None = None,
    since: datetime | None = None,
    page_size: int = 5000,
    start_url: str | None = None,
    select: list[str] | None = None,
) -> AsyncIterator[Page]:
    """Pages of the flow's source rows (or of `entity_set`, a document's rows), filtered as the map says;
    `select` names the Finance columns to read (all when None)."""
    source = table_map.source
    row_filter = source_filter(table_map, since)
    if source.system is System.DATAVERSE:
        return runtime.engine.dataverse.pages(
            entity_set or source.entity_set, filter=row_filter, page_size=page_size, start_url=start_url
        )
    if companies:
        field = company_field or company_field_of(table_map)
        company_filter = " or ".join(filter_for_key({field: c.lower()}) for c in companies)
        row_filter = f"({company_filter})" + (f" and {row_filter}" if row_filter else "")
    if entity_set is None or entity_set == source.entity_set:
        # By key, not by Finance's nextLink: that pages by $skip, and a row deleted from a page already
        # read would make the row at the next page's boundary never read. `start_url` is then the last
        # key fed (the cursor a page of this read carries).
        types = dict(source.key_types)
        return runtime.engine.finance.pages_by_key(
            source.entity_set,
            source.key_columns,
            typed=lambda key: typed_key(key, types),
            select=select,
            filter=row_filter,
            page_size=page_size,
            after=start_url,
        )
    # A document's rows set, whose key no map names: read by nextLink, in one go (reconcile's).
    return runtime.engine.finance.pages(entity_set, select=select, filter=row_filter, page_size=page_size)


def _finance_columns(table_map: TableMap) -> list[str] | None:
    """The columns the map reads, with the key: a Finance entity has a hundred more, and a row fed
    whole is read by its flow as it was fed (shared.targets._fed_and_first). Documents read their
    lines themselves and take every column."""
    if table_map.document is not None:
        return None
    return sorted({*table_map.source.key_columns, *table_map.source_columns})


def run_reads(table_map: TableMap) -> dict[str, Any]:
    """What a run's query asks the source for, kept with the run: its cursor, a nextLink, carries the
    query it was started with, so a map changed since (an extension, a release) is not read from it."""
    source = table_map.source
    select = _finance_columns(table_map) if source.system is System.FINANCE else None
    reads = {"select": select, "filter": table_map.filter.odata if table_map.filter is not None else None}
    if source.system is System.FINANCE:
        # Finance is read by key, and the cursor is the last key fed: a cursor of another key (or a
        # nextLink, which an earlier version kept) goes on after nothing this read knows.
        reads["order"] = list(source.key_columns)
    return reads


def _read_change(stored: Any, now: dict[str, Any]) -> str | None:
    """Why a stopped run's cursor no longer reads what its map does, or None when it still does."""
    if stored == now:
        return None
    if not isinstance(stored, dict):
        return "the run was started by a version that did not record what it reads"
    reasons = []
    before, after = set(stored.get("select") or []), set(now["select"] or [])
    if after - before:
        reasons.append(f"the map now reads {', '.join(sorted(after - before))}, which the rows fed before lacked")
    if before - after:
        reasons.append(f"the map no longer reads {', '.join(sorted(before - after))}")
    if stored.get("filter") != now["filter"]:
        reasons.append(f"the map's filter is now {now['filter'] or 'none'} (was {stored.get('filter') or 'none'})")
    if stored.get("order") != now.get("order"):
        reasons.append(
            f"Finance is now read in the order of its key ({', '.join(now['order'])})"
            if now.get("order") and not stored.get("order")
            else f"the key the read goes on after is now {', '.join(now.get('order') or []) or 'none'}"
        )
    return "; ".join(reasons) or "the map's query changed"


def _pages(runtime: Runtime, table_map: TableMap, run: SyncRun, page_size: int) -> AsyncIterator[Page]:
    since = run.options.get("since")
    return source_pages(
        runtime,
        table_map,
        companies=run.options.get("companies") or [],
        since=datetime.fromisoformat(since) if since else None,
        page_size=page_size,
        start_url=run.cursor,
        select=_finance_columns(table_map),
    )


def row_event(
    table_map: TableMap, row: dict[str, Any], correlation_id: str, origin: Source = Source.INITIAL_SYNC
) -> ChangeEvent:
    """The ChangeEvent a source row read by a query becomes (initial sync, reconcile)."""
    source = table_map.source
    if source.system is System.DATAVERSE:
        record = normalize_webapi_row(row)
        key = str(record[source.key_columns[0]]).lower()
        company = None
        # The row's version as read: a live change applied after the page was read is newer, and the
        # row fed after it is then stale, not written over it.
        version = row_version(record.get("versionnumber"))
    else:
        record = normalize_finance_row(row)
        key = ""
        company = str(record.get("dataAreaId") or "").upper() or None
        version = None  # Finance rows carry none a guard could trust (shared.targets.complete_record)
    event = ChangeEvent(
        event_id=derive_id(correlation_id, table_map.name, str(sorted(row.items()))),
        flow=table_map.name,
        source=origin,
        entity=source.entity,
        operation=Operation.UPSERT,
        key=key,
        company=company,
        record=record,
        version=version,
        correlation_id=correlation_id,
    )
    return event if key else event.replace(key=source_key(table_map, event))


async def _feed(runtime: Runtime, table_map: TableMap, run: SyncRun, page: Page) -> int:
    """Send one page's rows to the flow queue, a chunk at a time: turning 5,000 rows into events is
    CPU work with no await in it, and the page read ahead moves on only when this gives way."""
    rows = page.rows
    for start in range(0, len(rows), SEND_CHUNK):
        events = [row_event(table_map, row, run.id) for row in rows[start : start + SEND_CHUNK]]
        await runtime.sender.send_events(table_map.flow_queue, events)
    return len(rows)


def new_run(table_map: TableMap, companies: list[str] | None, since: datetime | None) -> SyncRun:
    for company in companies or []:
        if FINANCE_WILDCARD in company:
            # Finance reads * in eq as a pattern: 'US*' would sync every legal entity it matches.
            raise OperatorError(f"company {company!r} holds {FINANCE_WILDCARD!r}: name each legal entity in full")
    if since is not None:
        check_since(table_map)
    if companies and table_map.source.system is System.FINANCE:
        company_field_of(table_map)
    return SyncRun(
        id=uuid.uuid4().hex,
        flow=table_map.name,
        options={
            "companies": [c.upper() for c in companies or []],
            "since": since.isoformat() if since else None,
            "reads": run_reads(table_map),
        },
        counts={"fed": 0, "pages": 0},
    )


async def record_failure(state: StateStore, run: SyncRun, exc: Exception) -> None:
    """Keep a run that died as failed, with the error, so a person (or a resume) sees where it stopped."""
    run.status = "failed"
    run.errors.append(f"{type(exc).__name__}: {exc}")
    run.updated_at = utc_now()
    await state.put_run(run)


async def latest_unfinished(runtime: Runtime, flow: str) -> SyncRun | None:
    """The flow's latest initial-sync run, if it did not finish. Only the latest: a run started over
    (--restart) leaves the one it replaced unfinished, and that one is not to come back later."""
    for run in await runtime.engine.state.list_runs(flow):
        # Reconcile runs share the runs table; they are never resumed as an initial sync.
        if run.kind == "initial-sync":
            return run if run.status in ("running", "failed") else None
    return None


async def run_to_resume(
    runtime: Runtime,
    table_map: TableMap,
    *,
    companies: list[str] | None,
    since: datetime | None,
    restart: bool = False,
) -> SyncRun | None:
    """The unfinished run a request goes on with, or None for a new run. Only a run asked for with
    the same companies and --since: its cursor reads what it was asked, not what this request asks,
    so taking it for another request would read (and report done) the wrong rows."""
    if restart:
        return None
    run = await latest_unfinished(runtime, table_map.name)
    if run is None or _same_request(run, companies, since):
        return run
    asked = _options_text(run.options.get("companies") or [], run.options.get("since"))
    repeat = f"repeat its options ({asked})" if asked else "repeat it without --company and --since"
    raise OperatorError(
        f"{table_map.name} has an unfinished initial sync, run {run.id} ({asked or 'every row'}; {run.status} with "
        f"{run.counts.get('fed', 0):,} fed), which this request does not match: {repeat} to finish it, or start "
        "this one with --restart"
    )


def _same_request(run: SyncRun, companies: list[str] | None, since: datetime | None) -> bool:
    stored_since = run.options.get("since")
    stored = datetime.fromisoformat(stored_since) if stored_since else None
    asked = {c.upper() for c in companies or []}
    return asked == {str(c).upper() for c in run.options.get("companies") or []} and stored == since


def _options_text(companies: list[str], since: str | None) -> str:
    parts = [f"--company {company}" for company in companies]
    if since:
        parts.append(f"--since {since}")
    return " ".join(parts)


async def initial_sync(
    runtime: Runtime,
    table_map: TableMap,
    *,
    companies: list[str] | None = None,
    since: datetime | None = None,
    resume: SyncRun | None = None,
    page_size: int = 5000,
    progress: Progress | None = None,
    stop_after_pages: int | None = None,
    time_budget_seconds: float | None = None,
    prefetch: bool = True,
) -> SyncRun:
    """Feed every source row to the flow queue; `stop_after_pages` exists to test resumption.

    With `time_budget_seconds`, return once that much time has passed, at a page boundary, with the
    run still "running" and its cursor saved, for run_slice to continue. With `prefetch` (off only to
    measure what it gains) the next page is read while this one is fed; the cursor still moves only
    once a page is fed, so a run that stops resumes at the first page not fully fed, and the page
    read ahead of a stop is read again."""
    started = time.monotonic()
    state = runtime.engine.state
    run = resume or new_run(table_map, companies, since)
    reads = run_reads(table_map)
    change = _read_change(run.options.get("reads"), reads)
    if change is not None:
        # The rows fed before were read without what the map reads now, and the first delivery of an
        # initial-sync row is taken as the whole row: only a read from the first page is right.
        if run.cursor is not None:
            run.errors.append(f"read again from the first page, not from where it stopped: {change}")
        run.cursor = None
        run.options["reads"] = reads
    run.status = "running"
    await state.put_run(run)
    pages = 0
    source = _pages(runtime, table_map, run, page_size)
    try:
        async with contextlib.aclosing(read_ahead(source) if prefetch else in_turn(source)) as feed:
            async for page in feed:
                run.counts["fed"] = run.counts.get("fed", 0) + await _feed(runtime, table_map, run, page)
                run.counts["pages"] = run.counts.get("pages", 0) + 1
                run.cursor = page.next_link
                run.updated_at = utc_now()
                await state.put_run(run)
                if progress is not None:
                    progress(run)
                pages += 1
                if stop_after_pages is not None and pages >= stop_after_pages and page.next_link:
                    raise InterruptedError(f"stopped after {pages} page(s) as asked")
                if (
                    time_budget_seconds is not None
                    and page.next_link
                    and time.monotonic() - started >= time_budget_seconds
                ):
                    return run
    except Exception as exc:
        await record_failure(state, run, exc)
        raise
    run.status = "completed"
    run.cursor = None
    run.updated_at = utc_now()
    await state.put_run(run)
    return run


async def run_slice(
    runtime: Runtime,
    table_map: TableMap,
    *,
    companies: list[str] | None = None,
    since: datetime | None = None,
    resume: SyncRun | None = None,
) -> SyncRun:
    """One slice of a run; if rows are left, the run's id goes on the admin-runs queue to continue."""
    run = await initial_sync(
        runtime,
        table_map,
        companies=companies,
        since=since,
        resume=resume,
        page_size=ADMIN_PAGE_SIZE,
        time_budget_seconds=SLICE_SECONDS,
    )
    if run.status == "running":
        await runtime.sender.send_raw(ADMIN_RUNS_QUEUE, run.id.encode(), {"flow": run.flow}, "text/plain")
    return run


async def start_in_background(
    runtime: Runtime,
    table_map: TableMap,
    *,
    companies: list[str] | None = None,
    since: datetime | None = None,
    resume: SyncRun | None = None,
) -> SyncRun:
    """Record the run and hand it to the admin-runs queue at once: the caller gets its id in
    milliseconds and follows it (admin/runs/{id}); every slice runs from the queue."""
    run = resume or new_run(table_map, companies, since)
    run.status = "running"
    run.updated_at = utc_now()
    await runtime.engine.state.put_run(run)
    await runtime.sender.send_raw(ADMIN_RUNS_QUEUE, run.id.encode(), {"flow": run.flow}, "text/plain")
    return run


async def continue_run(runtime: Runtime, registry: Registry, run_id: str) -> SyncRun | None:
    """The admin-runs queue's work: the next slice of an unfinished run (a finished one is left alone)."""
    state = runtime.engine.state
    run = await state.get_run(run_id)
    if run is None or run.status == "completed":
        return run
    try:
        table_map = registry.by_name(run.flow)
    except KeyError as exc:
        # A flow this deployment no longer has: no delivery will find it.
        await record_failure(state, run, OperatorError(str(exc.args[0])))
        return run
    try:
        return await run_slice(runtime, table_map, resume=run)
    except Exception as exc:
        failed = await state.get_run(run_id)
        if worth_retrying(exc) or failed is None or failed.status != "failed":
            # Delivered again once its lock lapses, and the slice goes on from the cursor it kept.
            raise
        # Recorded on the run, and the same read would fail the same way: a redelivery would only
        # read the source again, record the error again and end in the dead-letter queue.
        return failed


def worth_retrying(exc: BaseException) -> bool:
    """A failure a later try may not meet: throttling, a service down or unreachable, a token not had."""
    from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError
    from azure.servicebus.exceptions import (
        OperationTimeoutError,
        ServiceBusCommunicationError,
        ServiceBusConnectionError,
        ServiceBusServerBusyError,
    )

    passing = (
        TransientServiceError,
        AuthError,
        ConnectionError,
        TimeoutError,
        # The Azure SDKs': a request not sent or not answered, Service Bus busy or out of reach.
        ServiceRequestError,
        ServiceResponseError,
        OperationTimeoutError,
        ServiceBusCommunicationError,
        ServiceBusConnectionError,
        ServiceBusServerBusyError,
    )
    if isinstance(exc, passing):
        return True
    if isinstance(exc, HttpResponseError):  # the state store's tables
        status = exc.status_code or 0
        return status == 429 or status >= 500
    return False
