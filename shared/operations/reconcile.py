"""reconcile FLOW: does the target hold what the source says it should?

Every source row the flow's filter passes is mapped by the targets stage (the flow's own code: the
same company rule, lookups and transforms) into the rows the target should hold. Those are spilled,
keyed by target key, to a SQLite file on local disk; then the target's rows are paged through and
each is looked up in the spill. Memory holds one page of each side and the spill's index pages,
whatever the row count: the two tables are never in memory at once. (inferred: a local file rather
than the state store, because Table Storage costs a round trip per row, and 100,000 rows a side
would be 200,000 of them; the spill lives only for the run.)

What comes out, per company: rows missing in the target, rows that differ (field, source value,
target value), rows orphaned in the target (there, but gone or filtered out at the source), and for
money flows counts and sums per currency on each side. With repair, every missing or different row
is sent to the flow's queue as a ChangeEvent from `reconcile` (the one write path: guards, lookups
and parking all apply), and orphans are sent as deletes where the map allows deletes, else listed.
"""

from __future__ import annotations

import gc
import json
import os
import re
import sqlite3
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from shared.clients.addressing import KeyFilter, filter_for_key
from shared.clients.base import Page
from shared.document_keys import document_key
from shared.documents import document_applies
from shared.errors import MappingError, MissingDependencyError, OutOfScopeError, RecordNotFoundByKeyError
from shared.events import ChangeEvent, Operation, Source, derive_id
from shared.jsonio import dumps, loads
from shared.maps import FieldType, System, TableMap, WriteMode
from shared.operations.initial_sync import check_since, record_failure, row_event, source_pages
from shared.records import field_value, normalize_finance_row
from shared.runtime import Runtime
from shared.state.base import SyncRun
from shared.state.bounded import cut, json_text
from shared.targets import TargetRow, build_target_rows, passes_filter, typed_target_key
from shared.telemetry import record_reconcile
from shared.values import Value, parse_iso_datetime, utc_now
from shared.wire import finance_empty

# Rows listed per kind and company; the counts are always whole.
DETAIL_LIMIT = 200
# Rows kept per kind and company in the report the state store holds (a Table Storage property
# holds 64 KiB).
STORED_DETAIL_LIMIT = 10
# Characters of JSON the stored report may take: it is one of the run's options, which are one
# property together (shared/state/bounded.py), so some of the property is left to the others.
STORED_REPORT_CHARS = 24_000
NO_COMPANY = "-"
PAGE_SIZE = 5000
SEND_CHUNK = 100

Progress = Callable[[str, int], None]


@dataclass
class FieldDifference:
    field: str
    source: Any
    target: Any


@dataclass
class Drift:
    """One row out of step: its target key, the source record it comes from, what differs."""

    key: dict[str, Any]
    source_key: str | None = None
    fields: list[FieldDifference] = field(default_factory=list)
    error: str | None = None


@dataclass
class MoneyTotals:
    source_count: int = 0
    source_sum: Decimal = Decimal(0)
    target_count: int = 0
    target_sum: Decimal = Decimal(0)

    @property
    def difference(self) -> Decimal:
        return self.source_sum - self.target_sum


@dataclass
class CompanyReport:
    company: str
    source_rows: int = 0
    target_rows: int = 0
    matched: int = 0
    missing_count: int = 0
    different_count: int = 0
    orphaned_count: int = 0
    unmappable_count: int = 0
    missing: list[Drift] = field(default_factory=list)
    different: list[Drift] = field(default_factory=list)
    orphaned: list[Drift] = field(default_factory=list)
    unmappable: list[Drift] = field(default_factory=list)
    money: dict[str, MoneyTotals] = field(default_factory=dict)

    def add(self, kind: str, drift: Drift, limit: int = DETAIL_LIMIT) -> None:
        setattr(self, f"{kind}_count", getattr(self, f"{kind}_count") + 1)
        listed: list[Drift] = getattr(self, kind)
        if len(listed) < limit:
            listed.append(drift)


KINDS = ("missing", "different", "orphaned", "unmappable")


@dataclass
class ReconcileReport:
    id: str
    flow: str
    started_at: datetime
    finished_at: datetime | None = None
    options: dict[str, Any] = field(default_factory=dict)
    companies: dict[str, CompanyReport] = field(default_factory=dict)
    filtered_out: int = 0
    notes: list[str] = field(default_factory=list)
    repair: dict[str, int] = field(default_factory=dict)

    def company(self, code: str | None) -> CompanyReport:
        name = code or NO_COMPANY
        if name not in self.companies:
            self.companies[name] = CompanyReport(name)
        return self.companies[name]

    @property
    def totals(self) -> dict[str, int]:
        totals = {f"{kind}": sum(getattr(c, f"{kind}_count") for c in self.companies.values()) for kind in KINDS}
        totals["source_rows"] = sum(c.source_rows for c in self.companies.values())
        totals["target_rows"] = sum(c.target_rows for c in self.companies.values())
        totals["matched"] = sum(c.matched for c in self.companies.values())
        return totals

    @property
    def drift(self) -> int:
        totals = self.totals
        return totals["missing"] + totals["different"] + totals["orphaned"] + totals["unmappable"]

    def to_dict(self, detail_limit: int | None = None) -> dict[str, Any]:
        data = asdict(self)
        for name, company in self.companies.items():
            entry = data["companies"][name]
            for currency, totals in company.money.items():
                entry["money"][currency]["difference"] = totals.difference
            if detail_limit is not None:
                for kind in KINDS:
                    entry[kind] = entry[kind][:detail_limit]
        data["totals"] = self.totals
        return data

    def to_json(self, detail_limit: int | None = None) -> str:
        return dumps(self.to_dict(detail_limit))


def stored_report(report: ReconcileReport) -> dict[str, Any]:
    """The report a run row keeps, which the admin API, `reconcile --url` and the console show: up to
    STORED_DETAIL_LIMIT rows per kind and company, and if that is more than STORED_REPORT_CHARS,
    shortened until it fits (values cut, then fewer rows, then fewer companies: those with the most
    drift stay), saying so in a note. Counts and totals stay whole."""
    data = report.to_dict(STORED_DETAIL_LIMIT)
    size = len(json_text(data))
    if size <= STORED_REPORT_CHARS:
        return data
    levels = ((STORED_DETAIL_LIMIT, 200, None), (3, 100, None), (1, 40, None), (0, 40, 50), (0, 40, 0))
    for rows, chars, companies in levels:
        short = _shortened_report(data, rows, chars, companies)
        listed = f"{len(short['companies'])} of {len(data['companies'])} companies, " if companies is not None else ""
        short["notes"].append(
            f"this stored report is shortened to fit the run row ({size:,} characters of JSON): {listed}at most "
            f"{rows} rows per kind and company, values cut to {chars} characters; the counts are whole, and "
            "reconcile run in-process (without --url) prints the whole report"
        )
        if len(json_text(short)) <= STORED_REPORT_CHARS:
            break
    return short


def _shortened_report(data: dict[str, Any], rows: int, chars: int, companies: int | None) -> dict[str, Any]:
    entries = list(data["companies"].items())
    if companies is not None:
        entries.sort(key=lambda item: -sum(int(item[1][f"{kind}_count"]) for kind in KINDS))
        entries = entries[:companies]
    short = dict(data)
    short["companies"] = {cut(str(name), 40): _shortened_company(entry, rows, chars) for name, entry in entries}
    short["notes"] = [cut(str(note), 500) for note in data["notes"][:20]]
    short["options"] = {name: _short_value(value, chars) for name, value in data["options"].items()}
    return short


def _shortened_company(entry: dict[str, Any], rows: int, chars: int) -> dict[str, Any]:
    short = dict(entry)
    short["money"] = {cut(str(currency), 40): totals for currency, totals in list(entry["money"].items())[:20]}
    for kind in KINDS:
        short[kind] = [_shortened_drift(drift, chars) for drift in entry[kind][:rows]]
    return short


def _shortened_drift(drift: dict[str, Any], chars: int) -> dict[str, Any]:
    return {
        "key": {cut(str(name), chars): _short_value(value, chars) for name, value in drift["key"].items()},
        "source_key": _short_value(drift.get("source_key"), chars),
        "fields": [
            {
                "field": cut(str(difference["field"]), chars),
                "source": _short_value(difference["source"], chars),
                "target": _short_value(difference["target"], chars),
            }
            for difference in drift["fields"][:20]
        ],
        "error": _short_value(drift.get("error"), chars),
    }


def _short_value(value: Any, chars: int) -> Any:
    text = value if isinstance(value, str) else json_text(value)
    return cut(text, chars) if len(text) > chars else value


# --- comparing values ---------------------------------------------------------------------------


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _moment(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return parse_iso_datetime(value)
        except ValueError:
            return None
    return None


def same_value(table_map: TableMap, name: str, expected: Any, actual: Any) -> bool:
    """Whether the target holds what the map would write, read as the target's type."""
    kind = table_map.target_type(name)
    finance = table_map.target.system is System.FINANCE
    if finance and expected is None and kind is FieldType.ENUM:
        # An enum has no empty value the flow could send (shared.wire.finance_empty): left out, Finance
        # holds its default member (NotSpecified), which no repair would change.
        return True
    if expected is None or (finance and expected == finance_empty(kind)):
        # Nothing sent, or Finance's empty sent: Finance holds no null, only its type's blank value.
        return _blank(actual) if finance else actual in (None, "")
    if expected == "" and not finance:
        # Finance has no null string: its empty is what Dataverse holds as null.
        return actual in (None, "")
    if actual is None:
        return False
    if kind in (FieldType.DECIMAL, FieldType.INT, FieldType.OPTION):
        return _decimal(expected) == _decimal(actual)
    if kind in (FieldType.DATE, FieldType.DATETIME):
        left, right = _moment(expected), _moment(actual)
        if left is not None and right is not None:
            return left == right if kind is FieldType.DATETIME else left.date() == right.date()
    if kind is FieldType.GUID:
        return str(expected).strip("{}").lower() == str(actual).strip("{}").lower()
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected == actual
    return str(expected) == str(actual)


_ZERO_GUID = "00000000-0000-0000-0000-000000000000"


def _blank(value: Any) -> bool:
    """Finance's value for "nothing": an empty string, zero, No, the zero Guid, 1900-01-01."""
    if value in (None, "", "No", _ZERO_GUID, False) or (not isinstance(value, str) and _decimal(value) == 0):
        return True
    if isinstance(value, str):
        return value.startswith("1900-01-01")
    return isinstance(value, datetime) and value.year == 1900


def _key_part(value: Any) -> str:
    # Both services compare keys without regard to case; a date key part may come back as a timestamp.
    moment = _moment(value)
    if moment is not None:
        return moment.isoformat()
    if isinstance(value, Decimal | int) and not isinstance(value, bool):
        return str(_decimal(value))
    return "" if value is None else str(value).strip("{}").lower()


def key_text(table_map: TableMap, row: dict[str, Any]) -> str:
    return json.dumps([_key_part(row.get(name)) for name in table_map.target.key_fields])


def _company_field(table_map: TableMap) -> str | None:
    """The target field that tells a target row's company (dataAreaId, or a company lookup column)."""
    fields = table_map.target.key_fields
    if "dataAreaId" in fields:
        return "dataAreaId"
    target_field = table_map.company.target_field
    if target_field and "@" not in target_field:
        return target_field
    return next((name for name in fields if "company" in name.lower()), None)


_QUOTED = re.compile(r"'((?:[^']|'')*)'")


def _bound_label(bind: Any) -> str:
    """The readable part of a bind (`/transactioncurrencies(isocurrencycode='USD')` → USD)."""
    match = _QUOTED.search(str(bind))
    return match.group(1).replace("''", "'") if match else str(bind)


# --- the spill ----------------------------------------------------------------------------------


class Spill:
    """The rows the target should hold, keyed by target key, on local disk for one run."""

    def __init__(self) -> None:
        handle, self.path = tempfile.mkstemp(prefix="projops-reconcile-", suffix=".sqlite")
        os.close(handle)
        self.db = sqlite3.connect(self.path)
        self.db.execute("PRAGMA journal_mode=OFF")
        self.db.execute("PRAGMA synchronous=OFF")
        self.db.execute(
            "CREATE TABLE expected (tkey TEXT PRIMARY KEY, company TEXT, skey TEXT, payload TEXT, event TEXT,"
            " seen INTEGER NOT NULL DEFAULT 0)"
        )
        self.db.execute("CREATE TABLE repairs (event_id TEXT PRIMARY KEY, event TEXT)")

    def add(self, rows: list[tuple[str, str, str, str, str]]) -> None:
        self.db.executemany(
            "INSERT OR REPLACE INTO expected (tkey, company, skey, payload, event) VALUES (?,?,?,?,?)", rows
        )

    def find(self, keys: list[str]) -> dict[str, tuple[str, str, str, str]]:
        found: dict[str, tuple[str, str, str, str]] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for tkey, company, skey, payload, event in self.db.execute(
                f"SELECT tkey, company, skey, payload, event FROM expected WHERE tkey IN ({marks})", chunk
            ):
                found[tkey] = (company, skey, payload, event)
            self.db.execute(f"UPDATE expected SET seen=1 WHERE tkey IN ({marks})", chunk)
        return found

    def unseen(self) -> Iterator[tuple[str, str, str, str]]:
        cursor = self.db.execute("SELECT company, skey, payload, event FROM expected WHERE seen=0 ORDER BY tkey")
        while rows := cursor.fetchmany(1000):
            yield from rows

    def repair(self, event: ChangeEvent) -> None:
        self.db.execute("INSERT OR IGNORE INTO repairs VALUES (?,?)", (event.event_id, event.to_json()))

    def repairs(self) -> Iterator[list[ChangeEvent]]:
        cursor = self.db.execute("SELECT event FROM repairs ORDER BY event_id")
        while rows := cursor.fetchmany(SEND_CHUNK):
            yield [ChangeEvent.from_json(row[0]) for row in rows]

    def close(self) -> None:
        self.db.close()
        os.unlink(self.path)


# --- the run ------------------------------------------------------------------------------------


@dataclass
class _Run:
    runtime: Runtime
    table_map: TableMap
    report: ReconcileReport
    spill: Spill
    company: str | None
    progress: Progress | None
    # The company code behind a target row's company value (a Dataverse company id), learned while mapping.
    company_of_value: dict[str, str] = field(default_factory=dict)
    # The currency label behind a target row's currency value (a bound currency's id), learned on matching.
    currency_of_value: dict[str, str] = field(default_factory=dict)
    target_money: dict[tuple[str, str], MoneyTotals] = field(default_factory=dict)
    # With --since only the rows changed since were read: the target's other rows are not counted or
    # summed against them, or every tie-out would be off by the rows left unread.
    since: datetime | None = None
    # Per document (its key): whether the map syncs it at all (shared.documents.document_applies).
    documents_applying: dict[str, bool] = field(default_factory=dict)


def _document_event(table_map: TableMap, row: dict[str, Value], run_id: str) -> ChangeEvent:
    """The business event a document row belongs to, as reconcile re-sends it."""
    document = table_map.document
    assert document is not None
    company = str(field_value(row, document.company_field) or "").upper()
    members = {member: field_value(row, row_field) for member, row_field in document.match}
    event = ChangeEvent(
        event_id=derive_id(run_id, table_map.name, str(sorted(members.items()))),
        flow=table_map.name,
        source=Source.RECONCILE,
        entity=table_map.source.entity,
        operation=Operation.UPSERT,
        key="",
        company=company or None,
        record=members,
        correlation_id=run_id,
    )
    return event.replace(key=document_key(table_map, event))


async def _expected_rows(run: _Run, row: dict[str, Any]) -> None:
    table_map, report = run.table_map, run.report
    if table_map.document is not None:
        record = normalize_finance_row(row)
        event = _document_event(table_map, record, report.id)
        applies = run.documents_applying.get(event.key)
        if applies is None:
            applies = run.documents_applying[event.key] = await document_applies(run.runtime.engine, table_map, event)
        if not applies:
            # The flow skips the whole document (a vendor invoice without a project line): so does this.
            report.filtered_out += 1
            return
    else:
        event = row_event(table_map, row, report.id, Source.RECONCILE)
        record = event.record or {}
    if table_map.filter is not None:
        try:
            if not passes_filter(table_map, record):
                report.filtered_out += 1
                return
        except MappingError as exc:
            report.company(event.company).add("unmappable", Drift({}, event.key, error=str(exc)))
            run.spill.repair(event)
            return
    try:
        targets = await build_target_rows(run.runtime.engine, table_map, event, record)
    except OutOfScopeError:
        # Not this deployment's to sync: the flow skips it, so it is no drift (and its target row,
        # if an earlier scope wrote one, is kept by the flow's orphan check).
        report.filtered_out += 1
        return
    except (MappingError, MissingDependencyError, RecordNotFoundByKeyError) as exc:
        # The flow would park or wait on this row: it is drift, with the reason the flow would give.
        report.company(event.company).add("unmappable", Drift({}, event.key, error=str(exc)))
        run.spill.repair(event)
        return
    spilled = []
    for target in targets:
        if run.company and (target.company or "").upper() != run.company:
            continue
        spilled.append(_spill_row(run, event, target))
    run.spill.add(spilled)


def _spill_row(run: _Run, event: ChangeEvent, target: TargetRow) -> tuple[str, str, str, str, str]:
    table_map = run.table_map
    payload = target.payload
    company = (target.company or NO_COMPANY).upper()
    company_field = _company_field(table_map)
    if company_field and target.company and payload.get(company_field) is not None:
        run.company_of_value[str(payload[company_field]).lower()] = company
    entry = run.report.company(company)
    entry.source_rows += 1
    money = table_map.money
    if money is not None:
        totals = entry.money.setdefault(_source_currency(table_map, payload), MoneyTotals())
        totals.source_count += 1
        totals.source_sum += _decimal(payload.get(money.amount)) or Decimal(0)
    return (key_text(table_map, payload), company, event.key, dumps(payload), event.to_json())


def _source_currency(table_map: TableMap, payload: dict[str, Any]) -> str:
    money = table_map.money
    assert money is not None
    if money.currency is None:
        return NO_COMPANY
    if money.currency in payload:
        return str(payload[money.currency] or "")
    return _bound_label(payload.get(f"{money.currency}@odata.bind") or "")


def _target_currency(table_map: TableMap, row: dict[str, Any]) -> str:
    money = table_map.money
    assert money is not None
    if money.currency is None:
        return NO_COMPANY
    if money.currency in row:
        return str(row[money.currency] or "")
    return str(row.get(f"_{money.currency}_value") or "").lower()


_BIND = re.compile(r"^/(\w+)\((\w+)='")


async def _currency_difference(run: _Run, expected: dict[str, Any], row: dict[str, Any]) -> list[FieldDifference]:
    """The currency a Dataverse target row is bound to, against the one the source names. Binds are
    not compared as fields (the target answers with the bound row's id), but a money tie-out must not
    count a EUR row as USD: the bound currency's code is read (once per currency) and compared."""
    money = run.table_map.money
    assert money is not None
    raw = _target_currency(run.table_map, row)
    if money.currency is None or money.currency in row or not raw:
        run.currency_of_value.setdefault(raw, _source_currency(run.table_map, expected))
        return []
    bind = str(expected.get(f"{money.currency}@odata.bind") or "")
    shape = _BIND.match(bind)
    if shape is None:
        return []
    if raw not in run.currency_of_value:
        entity_set, column = shape.groups()
        bound = await run.runtime.engine.dataverse.get(entity_set, {"id": raw}, select=[column])
        run.currency_of_value[raw] = str((bound or {}).get(column) or raw)
    wanted, found = _bound_label(bind), run.currency_of_value[raw]
    return [] if wanted == found else [FieldDifference(f"{money.currency}@odata.bind", wanted, found)]


def _target_company(run: _Run, row: dict[str, Any]) -> str:
    company_field = _company_field(run.table_map)
    value = row.get(company_field) if company_field else None
    if value in (None, ""):
        return NO_COMPANY
    return run.company_of_value.get(str(value).lower(), str(value).upper())


def field_differences(table_map: TableMap, expected: dict[str, Any], actual: dict[str, Any]) -> list[FieldDifference]:
    skipped = {*table_map.target.key_fields, *table_map.target_owned}
    differences = []
    for name, value in expected.items():
        # A bind names the other row by its key; the target answers with its id: not comparable here.
        if name in skipped or "@" in name or name not in actual:
            continue
        if not same_value(table_map, name, value, actual[name]):
            differences.append(FieldDifference(name, value, actual[name]))
    return differences


async def _compare_page(run: _Run, rows: list[dict[str, Any]], judge_orphans: bool) -> None:
    table_map, report = run.table_map, run.report
    keyed = {key_text(table_map, row): row for row in rows}
    found = run.spill.find(list(keyed))
    for tkey, row in keyed.items():
        if run.since is not None and tkey not in found:
            continue
        company = _target_company(run, row)
        if tkey in found:
            company = found[tkey][0]
        if run.company and company != run.company:
            continue
        entry = report.company(company)
        entry.target_rows += 1
        if table_map.money is not None:
            raw = _target_currency(table_map, row)
            totals = run.target_money.setdefault((company, raw), MoneyTotals())
            totals.target_count += 1
            totals.target_sum += _decimal(row.get(table_map.money.amount)) or Decimal(0)
        key = {name: row.get(name) for name in table_map.target.key_fields}
        if tkey not in found:
            if judge_orphans:
                entry.add("orphaned", Drift(key))
                _repair_orphan(run, tkey, key)
            continue
        _, skey, payload_json, event_json = found[tkey]
        expected = loads(payload_json)
        differences = field_differences(table_map, expected, row)
        if table_map.money is not None:
            differences += await _currency_difference(run, expected, row)
        if differences:
            entry.add("different", Drift(key, skey, differences))
            run.spill.repair(ChangeEvent.from_json(event_json))
        else:
            entry.matched += 1


def _repair_orphan(run: _Run, tkey: str, key: dict[str, Any]) -> None:
    table_map = run.table_map
    if not table_map.allows(Operation.DELETE):
        return
    run.spill.repair(
        ChangeEvent(
            event_id=derive_id(run.report.id, table_map.name, "orphan", tkey),
            flow=table_map.name,
            source=Source.RECONCILE,
            entity=table_map.source.entity,
            operation=Operation.DELETE,
            key=tkey,
            target_key=key,
            correlation_id=run.report.id,
        )
    )


def _target_pages(run: _Run) -> Any:
    table_map = run.table_map
    target = table_map.target
    if target.system is System.DATAVERSE:
        return run.runtime.engine.dataverse.pages(target.entity_set, page_size=PAGE_SIZE)
    row_filter = None
    if run.company and "dataAreaId" in target.key_fields:
        row_filter = filter_for_key({"dataAreaId": run.company.lower()})
    # By key, not by Finance's nextLink: that pages by $skip, and a target row deleted from a page
    # already compared would shift another past the next page's start, to be counted missing (and sent
    # again by a repair) or, as an orphan, never seen.
    return _exact(
        run.runtime.engine.finance.pages_by_key(
            target.entity_set,
            target.key_fields,
            typed=lambda key: typed_target_key(table_map, dict(key)),
            filter=row_filter,
            page_size=PAGE_SIZE,
        ),
        row_filter,
    )


async def _exact(pages: AsyncIterator[Page], row_filter: KeyFilter | None) -> AsyncIterator[Page]:
    """The pages with only the rows the company filter names: Finance reads a `*` in it as a pattern."""
    async for page in pages:
        if row_filter is not None and row_filter.wildcard_fields():
            page = Page([row for row in page.rows if row_filter.matches(row)], page.next_link)
        yield page


def _orphan_judgement(runtime: Runtime, table_map: TableMap, since: datetime | None) -> str | None:
    """Why orphans cannot be told for this run, if they cannot."""
    if since is not None:
        return "orphans are not judged with --since: the rows changed before it were not read"
    if table_map.write_mode is WriteMode.UPDATE:
        return f"orphans are not judged: the map only updates {table_map.target.entity_set} rows, it creates none"
    sharing = [
        other.name
        for other in runtime.maps().maps
        if other.name != table_map.name and other.target.entity_set == table_map.target.entity_set
    ]
    if sharing:
        return f"orphans are not judged: {table_map.target.entity_set} is also written by {', '.join(sharing)}"
    return None


async def reconcile(
    runtime: Runtime,
    table_map: TableMap,
    *,
    company: str | None = None,
    since: datetime | None = None,
    repair: bool = False,
    progress: Progress | None = None,
    run_id: str | None = None,
) -> ReconcileReport:
    """Compare the flow's source with its target; with `repair`, send the drift through the flow.
    `run_id` names the queued run this one carries out (from the admin API or the schedule)."""
    if since is not None:
        check_since(table_map)
    company = company.upper() if company else None
    report = ReconcileReport(
        id=run_id or uuid.uuid4().hex,
        flow=table_map.name,
        started_at=utc_now(),
        options={"company": company, "since": since.isoformat() if since else None, "repair": repair},
    )
    queued = await runtime.engine.state.get_run(run_id) if run_id else None
    options = {**(queued.options if queued else {}), "kind": "reconcile", **report.options}
    run_row = SyncRun(id=report.id, flow=table_map.name, options=options)
    await runtime.engine.state.put_run(run_row)
    spill = Spill()
    run = _Run(runtime, table_map, report, spill, company, progress, since=since)
    try:
        await _read_source(run, since)
        orphan_note = _orphan_judgement(runtime, table_map, since)
        if orphan_note:
            report.notes.append(orphan_note)
        seen = 0
        async for page in _target_pages(run):
            await _compare_page(run, page.rows, orphan_note is None)
            _release_page()
            seen += len(page.rows)
            if progress is not None:
                progress("target", seen)
        for company_code, _skey, _payload, event_json in spill.unseen():
            event = ChangeEvent.from_json(event_json)
            payload = loads(_payload)
            report.company(company_code).add(
                "missing", Drift({name: payload.get(name) for name in table_map.target.key_fields}, event.key)
            )
            spill.repair(event)
        _settle_money(run)
        if repair:
            report.repair = await _send_repairs(run)
    except Exception as exc:
        await record_failure(runtime.engine.state, run_row, exc)
        raise
    finally:
        spill.close()
    report.finished_at = utc_now()
    run_row.status = "completed"
    run_row.counts = {**report.totals, "drift": report.drift}
    run_row.options["report"] = stored_report(report)
    run_row.updated_at = report.finished_at
    await runtime.engine.state.put_run(run_row)
    record_reconcile(table_map.name, report.id, run_row.counts)
    return report


async def _read_source(run: _Run, since: datetime | None) -> None:
    table_map = run.table_map
    document = table_map.document
    companies = [run.company] if run.company and table_map.source.system is System.FINANCE else None
    pages = source_pages(
        run.runtime,
        table_map,
        entity_set=document.rows_set if document else None,
        companies=companies,
        company_field=document.company_field if document else None,
        since=since,
        page_size=PAGE_SIZE,
    )
    seen = 0
    async for page in pages:
        for row in page.rows:
            await _expected_rows(run, row)
        _release_page()
        seen += len(page.rows)
        if run.progress is not None:
            run.progress("source", seen)


def _release_page() -> None:
    # A page's HTTP response (megabytes of body) sits in a reference cycle, and a full collection
    # comes rarely: left to itself, memory would grow with the row count. One collection a page
    # costs milliseconds.
    gc.collect()


def _settle_money(run: _Run) -> None:
    for (company, raw), totals in run.target_money.items():
        label = run.currency_of_value.get(raw, raw)
        entry = run.report.company(company).money.setdefault(label, MoneyTotals())
        entry.target_count += totals.target_count
        entry.target_sum += totals.target_sum


async def _send_repairs(run: _Run) -> dict[str, int]:
    sent = deletes = 0
    for events in run.spill.repairs():
        await run.runtime.sender.send_events(run.table_map.flow_queue, events)
        deletes += sum(1 for event in events if event.operation is Operation.DELETE)
        sent += len(events)
    listed = 0 if run.table_map.allows(Operation.DELETE) else run.report.totals["orphaned"]
    return {"sent": sent - deletes, "deletes": deletes, "orphans_listed": listed}


async def reconcile_runs(runtime: Runtime, flow: str | None = None) -> list[SyncRun]:
    return [run for run in await runtime.engine.state.list_runs(flow) if run.kind == "reconcile"]


async def last_reconciles(runtime: Runtime, flow: str | None = None) -> dict[str, SyncRun]:
    """The newest finished reconcile per flow."""
    latest: dict[str, SyncRun] = {}
    for run in await reconcile_runs(runtime, flow):
        if run.status != "completed":
            continue
        if run.flow not in latest or run.updated_at > latest[run.flow].updated_at:
            latest[run.flow] = run
    return latest
