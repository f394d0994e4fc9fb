"""The Dataverse simulator: a Web API v9.2 subset over real HTTP, with plug-in step emulation.

Rows are validated against the schema the way Dataverse does (unknown property, option value out of
range, length, type), alternate keys and `@odata.bind` behave as documented, and every write runs the
registered steps, which emit the RemoteExecutionContext JSON an asynchronous post-operation step
sends to Service Bus.
"""

from __future__ import annotations

import asyncio
import bisect
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote, unquote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.dataverse.metadata import EDM, csdl
from sandbox.dataverse.protection import ServiceProtection, ServiceProtectionMeter
from sandbox.dataverse.schema import Column, Table, custom_column, load_schema
from sandbox.dataverse.steps import Step, StepRegistry, remote_execution_context
from sandbox.odata import (
    BatchPart,
    Faults,
    Filter,
    ODataError,
    Simulator,
    Sink,
    build_batch_response,
    is_guid,
    json_object,
    json_response,
    parse_batch,
    parse_key,
    request_path,
    split_resource,
    split_top,
)
from shared.values import parse_iso_datetime

API = "/api/data/v9.2"
MAX_PAGE = 5000
# The bulk operation messages a standard table takes as bound actions (Use bulk operation messages).
BULK_MESSAGES = frozenset({"Microsoft.Dynamics.CRM.CreateMultiple", "Microsoft.Dynamics.CRM.UpsertMultiple"})


def error(status: int, message: str, code: str = "") -> ODataError:
    return ODataError(status, {"error": {"code": code, "message": message}})


# sdkmessageprocessingstep.statecode 1 Disabled, stage 40 Post-operation; sdkmessageprocessingstepimage
# .imagetype 0 PreImage, 1 PostImage, 2 Both (the two tables' references).
STEP_DISABLED = 1
STAGE_POST_OPERATION = 40
IMAGE_PRE, IMAGE_POST, IMAGE_BOTH = 0, 1, 2

# Documented: "If the data within a column that is used in an alternate key contains one of the
# following characters /, #, <, >, *, %, &, :, \\, ?, + then GET or PATCH actions won't work"
# (Define alternate keys using Power Apps). The exact answer is not documented; this one is ours.
UNADDRESSABLE = frozenset("/#<>*%&:\\?+")


def _refuse_unaddressable(key_segment: str) -> None:
    found = sorted({c for c in key_segment if c in UNADDRESSABLE})
    if found:
        raise error(
            400,
            f"The key segment {key_segment} holds {', '.join(repr(c) for c in found)}, which cannot be used in a "
            "key in the URL; query the row with $filter instead.",
            "0x80060888",
        )


@dataclass
class LookupValue:
    table: str
    id: str


@dataclass
class WriteEffect:
    table: Table
    message: str  # Create | Update | Delete
    record_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    touched: set[str] = field(default_factory=set)
    user: str = ""


class DataverseSimulator(Simulator):
    def __init__(
        self,
        *,
        users: dict[str, str],
        object_ids: dict[str, str] | None = None,
        sink: Sink | None = None,
        faults: Faults | None = None,
        organization: str = "sandbox.crm.dynamics.com",
    ) -> None:
        super().__init__(faults)
        self.schema = load_schema()
        self.by_set = {table.entity_set: table for table in self.schema.values()}
        self.users = users
        self.object_ids = object_ids or {}
        self.sink = sink
        self.organization = organization
        self.data: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in self.schema}
        self._key_indexes: dict[tuple[str, tuple[str, ...]], dict[tuple[str, ...], str]] = {}
        self.steps = StepRegistry()
        self.emitted = 0
        self.emit_errors: list[str] = []
        self.message_format = "application/json"
        self._version = 1000
        self._ordered: dict[
            tuple[str, str | None], tuple[tuple[int, int, int], list[dict[str, Any]], list[tuple[int, bytes, str]]]
        ] = {}
        # Change tracking (an administrator's "Track changes" per table), and each tracked table's
        # removals as (version, id): what a delta link reports as $deletedEntity.
        self.change_tracking: set[str] = set()
        self.removed: dict[str, list[tuple[int, str]]] = {}
        # Organization.ExpireChangeTrackingInDays (7 by default), and the clock a delta token's age is
        # read by: a test moves it on to see a token expire.
        self.expire_change_tracking_days = 7
        self.change_tracking_clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        self._emit_lock = asyncio.Lock()
        self.protection: ServiceProtectionMeter | None = None
        self._seed_messages()

    # --- lifecycle -----------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        return f"{self.url}{API}"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        routes = [Route(API + "/{path:path}", self._dispatch, methods=["GET", "POST", "PATCH", "DELETE"])]
        return await self.serve(routes, host, port)

    def throttled(self, retry_after: int) -> Response:
        return json_response(
            {
                "error": {
                    "code": "0x80072322",
                    "message": "Number of requests exceeded the limit of 6000 over time window of 300 seconds.",
                }
            },
            429,
            {"Retry-After": str(retry_after)},
        )

    def failed(self) -> Response:
        return json_response({"error": {"code": "0x80040216", "message": "An unexpected error occurred."}}, 500)

    def snapshot(self) -> Any:
        return {t: {k: dict(v) for k, v in rows.items()} for t, rows in self.data.items()}, self._version

    def restore(self, snapshot: Any) -> None:
        self.data, self._version = snapshot
        self._key_indexes.clear()

    # --- test and demo API ---------------------------------------------------------------------

    def register_step(
        self,
        entity: str,
        message: str,
        filtering_attributes: set[str] | None = None,
        *,
        pre_image: bool = False,
        post_image: bool = False,
        destination: str = "dataverse-changes",
        name: str | None = None,
    ) -> Step:
        return self.steps.add(
            Step(
                name or f"{entity} {message}",
                entity,
                message,
                filtering_attributes or None,
                pre_image,
                post_image,
                destination,
            )
        )

    def rows(self, table: str) -> list[dict[str, Any]]:
        return [self._plain(self.schema[table], row) for row in self.data[table].values()]

    def get_row(self, table: str, record_id: str) -> dict[str, Any] | None:
        row = self.data[table].get(record_id.lower())
        return None if row is None else self._plain(self.schema[table], row)

    @staticmethod
    def _plain(table: Table, row: dict[str, Any]) -> dict[str, Any]:
        return {k: (v.id if isinstance(v, LookupValue) else v) for k, v in row.items()}

    def add_custom_column(self, table: str, name: str, spec: dict[str, Any]) -> None:
        """A column a customer's solution adds (publisher prefix and all), as an extension needs it."""
        self.schema[table].columns[name] = custom_column(name, spec)

    def seed(self, table: str, values: dict[str, Any], *, user: str | None = None) -> str:
        """Insert a row without running steps (reference data that exists before the integration)."""
        spec = self.schema[table]
        row = self._validated(spec, values, creating=True)
        record_id = str(row.get(spec.primary) or uuid.uuid4()).lower()
        row[spec.primary] = record_id
        self._stamp(spec, row, user or next(iter(self.users.values())), creating=True)
        self.data[table][record_id] = row
        self._index_row(spec, record_id, row)
        return record_id

    def _seed_messages(self) -> None:
        for message in ("Create", "Update", "Delete"):
            message_id = self.seed("sdkmessage", {"name": message})
            for table in self.schema:
                self.seed(
                    "sdkmessagefilter",
                    {"primaryobjecttypecode": table, "sdkmessageid": LookupValue("sdkmessage", message_id)},
                )

    # --- HTTP ----------------------------------------------------------------------------------

    def _caller(self, request: Request | None, headers: dict[str, str] | None = None) -> str:
        auth = (headers or {}).get("authorization") or (request.headers.get("authorization") if request else None)
        token = (auth or "").removeprefix("Bearer ").strip()
        user = self.users.get(token)
        if user is None:
            # With the challenge Dataverse answers: where to get a token, and for what (the SDK's
            # AuthorityResolver.ProbeForExpectedAuthentication reads it from an unauthenticated call).
            challenge = (
                "Bearer authorization_uri=https://login.microsoftonline.com/common/oauth2/authorize, "
                f"resource_id={self.url}/"
            )
            raise ODataError(
                401,
                {"error": {"code": "0x80072560", "message": "The user is not a member of the organization."}},
                {"WWW-Authenticate": challenge},
            )
        return user

    async def _dispatch(self, request: Request) -> Response:
        try:
            user = self._caller(request)
            path = request_path(request, API + "/")
            body = await request.body()
            headers = {k.lower(): v for k, v in request.headers.items()}
            if self.protection is None:
                return await self._serve(request.method, path, dict(request.query_params), headers, body, user)
            meter = self.protection
            response = await meter.run(
                user,
                _rows_written(path, body),
                lambda: self._serve(request.method, path, dict(request.query_params), headers, body, user),
            )
            assert isinstance(response, Response)
            return response
        except ODataError as exc:
            return json_response(exc.body, exc.status, exc.headers)

    async def _serve(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes, user: str
    ) -> Response:
        try:
            if path == "$metadata":
                return Response(csdl(self.schema), media_type="application/xml")
            if path == "$batch":
                return await self._batch(body, headers, user)
            status, response_headers, payload, effects = self._handle(method, path, query, headers, body, user)
            if any(e.table.logical.startswith(("sdkmessageprocessingstep", "serviceendpoint")) for e in effects):
                self._load_registered_steps()
            await self._run_steps(effects)
            if payload is None:
                return Response(status_code=status, headers=response_headers)
            return json_response(payload, status, response_headers)
        except ODataError as exc:
            return json_response(exc.body, exc.status, exc.headers)

    def set_service_protection(self, limits: ServiceProtection | None) -> ServiceProtectionMeter | None:
        """Enforce the documented limits (None: none, the default), counted afresh."""
        self.protection = None if limits is None else ServiceProtectionMeter(limits)
        return self.protection

    def _handle(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes, user: str
    ) -> tuple[int, dict[str, str], Any, list[WriteEffect]]:
        entity_set, key_segment, rest = split_resource(path)
        table = self.by_set.get(entity_set)
        if table is None:
            raise error(404, f"Resource not found for the segment '{entity_set}'.", "0x80060888")
        if key_segment is not None:
            _refuse_unaddressable(key_segment)
        if rest and key_segment is None and method == "POST" and rest in BULK_MESSAGES:
            return self._bulk(table, rest.removeprefix("Microsoft.Dynamics.CRM."), self._body(body), user)
        if rest:
            raise error(400, f"navigation '{rest}' is not supported by the sandbox")
        if method == "GET":
            if key_segment is None:
                if "odata.track-changes" in headers.get("prefer", "") or "$deltatoken" in query:
                    return 200, {}, self._changes(table, query, headers), []
                return 200, {}, self._query(table, query, headers), []
            record_id = self._find(table, key_segment)
            if record_id is None:
                raise self._missing(table, key_segment)
            self._check_select(table, query.get("$select"))
            row = self.data[table.logical][record_id]
            return 200, {}, self._render(table, row, query.get("$select"), _lookup_annotations(headers)), []
        if method == "POST" and key_segment is None:
            values = self._body(body)
            effect = self._create(table, values, user)
            location = f"{self.api_url}/{table.entity_set}({effect.record_id})"
            if "return=representation" in headers.get("prefer", ""):
                return (
                    201,
                    {},
                    self._render(table, self.data[table.logical][effect.record_id], None, _lookup_annotations(headers)),
                    [effect],
                )
            return 204, {"OData-EntityId": location, "Location": location}, None, [effect]
        if method == "PATCH" and key_segment is not None:
            effect, created = self._upsert(table, key_segment, self._body(body), headers, user)
            location = f"{self.api_url}/{table.entity_set}({effect.record_id})"
            if "return=representation" in headers.get("prefer", ""):
                return (
                    201 if created else 200,
                    {},
                    self._render(table, self.data[table.logical][effect.record_id], None, _lookup_annotations(headers)),
                    [effect],
                )
            return 204, {"OData-EntityId": location}, None, [effect]
        if method == "DELETE" and key_segment is not None:
            record_id = self._find(table, key_segment)
            if record_id is None:
                raise self._missing(table, key_segment)
            before = self.data[table.logical].pop(record_id)
            if table.logical == "sdkmessageprocessingstep":
                # A step's images go with it (Register a plug-in: "they will be deleted when any steps
                # that use them are deleted").
                images = self.data["sdkmessageprocessingstepimage"]
                for image_id in [i for i, row in images.items() if _refers_to(row, record_id)]:
                    del images[image_id]
            self._forget_indexes(table)
            self._version += 1
            self.removed.setdefault(table.logical, []).append((self._version, record_id))
            return 204, {}, None, [WriteEffect(table, "Delete", record_id, before, None, set(), user)]
        raise error(405, f"{method} is not supported on {path}")

    @staticmethod
    def _body(body: bytes) -> dict[str, Any]:
        return json_object(body, lambda message: error(400, message))

    def _missing(self, table: Table, key_segment: str) -> ODataError:
        key = parse_key(key_segment)
        if isinstance(key, str):
            return error(404, f"{table.logical} With Id = {key} Does Not Exist", "0x80040217")
        return error(
            404,
            f"A record with the specified key values does not exist in {table.logical} entity",
            "0x80060891",
        )

    # Alternate keys are looked up through an index, so a 5,000-line document is not 12.5 million compares.
    def _key_index(self, table: Table, alternate: tuple[str, ...]) -> dict[tuple[str, ...], str]:
        index = self._key_indexes.get((table.logical, alternate))
        if index is None:
            index = {}
            for record_id, row in self.data[table.logical].items():
                if all(row.get(c) is not None for c in alternate):
                    index.setdefault(_key_of(row, alternate), record_id)
            self._key_indexes[(table.logical, alternate)] = index
        return index

    def _index_row(self, table: Table, record_id: str, row: dict[str, Any]) -> None:
        for alternate in table.alternate_keys:
            index = self._key_indexes.get((table.logical, alternate))
            if index is not None and all(row.get(c) is not None for c in alternate):
                index.setdefault(_key_of(row, alternate), record_id)

    def _forget_indexes(self, table: Table) -> None:
        for alternate in table.alternate_keys:
            self._key_indexes.pop((table.logical, alternate), None)

    def _find(self, table: Table, key_segment: str) -> str | None:
        key = parse_key(key_segment)
        rows = self.data[table.logical]
        if isinstance(key, str):
            if not is_guid(key):
                raise error(400, f"Invalid key value {key!r} for {table.logical}.")
            return key.lower() if key.lower() in rows else None
        names = tuple(name[1:-6] if name.startswith("_") and name.endswith("_value") else name for name in key)
        if names == (table.primary,):
            value = str(next(iter(key.values()))).lower()
            return value if value in rows else None
        if not any(set(names) == set(alternate) for alternate in table.alternate_keys):
            raise error(
                400,
                f"The key in the request URI is not valid for resource 'Microsoft.Dynamics.CRM.{table.logical}'. "
                "Make sure both the key name and value are valid.",
                "0x80060888",
            )
        _check_key_literals(table, key_segment)
        wanted = {n: v for n, v in zip(names, key.values(), strict=True)}
        alternate = next(a for a in table.alternate_keys if set(a) == set(names))
        record_id = self._key_index(table, alternate).get(tuple(_key_text(wanted[c]) for c in alternate))
        return record_id if record_id in rows else None

    # --- reading -------------------------------------------------------------------------------

    def _query(self, table: Table, query: dict[str, str], headers: dict[str, str]) -> dict[str, Any]:
        if "$skip" in query:
            raise error(400, "The query parameter $skip is not supported", "0x80060888")
        self._check_select(table, query.get("$select"))
        # Paging walks one ordered result: filtering and sorting the table again for every page made a
        # full read quadratic. The order is kept until the table changes (every write stamps a version).
        table_rows = self.data[table.logical]
        state = (id(table_rows), len(table_rows), self._version)
        memo_key = (table.logical, query.get("$filter"))
        memo = self._ordered.get(memo_key)
        if memo is not None and memo[0] == state:
            rows, keys = memo[1], memo[2]
        else:
            rows = self._ordered_rows(table, query)
            keys = [_id_order(row[table.primary]) for row in rows]
            self._ordered[memo_key] = (state, rows, keys)
        if "$top" in query:
            rows = rows[: int(query["$top"])]
        page_size = MAX_PAGE
        prefer = headers.get("prefer", "")
        if "odata.maxpagesize=" in prefer:
            page_size = min(MAX_PAGE, int(prefer.split("odata.maxpagesize=")[1].split(",")[0].strip().strip('"')))
        page_number, start = 1, 0
        if "$skiptoken" in query:
            page_number, last = _read_paging_cookie(table, query["$skiptoken"])
            # After the last id the cookie names, wherever it now is: a row deleted from an earlier page
            # moves nothing, as it does not in Dataverse, which reads the next page after that id.
            start = bisect.bisect_right(keys, _id_order(last), hi=len(rows))
        page = rows[start : start + page_size]
        result: dict[str, Any] = {
            "@odata.context": f"{self.api_url}/$metadata#{table.entity_set}",
            "value": [self._render(table, row, query.get("$select"), _lookup_annotations(headers)) for row in page],
        }
        if start + page_size < len(rows):
            rest = {k: v for k, v in query.items() if k != "$skiptoken"}
            params = "&".join(f"{k}={quote(v, safe='')}" for k, v in rest.items())
            cookie = _paging_cookie(table, page_number, page[0][table.primary], page[-1][table.primary])
            result["@odata.nextLink"] = (
                f"{self.api_url}/{table.entity_set}?{params}{'&' if params else ''}$skiptoken={cookie}"
            )
        return result

    def _ordered_rows(self, table: Table, query: dict[str, str]) -> list[dict[str, Any]]:
        rows = list(self.data[table.logical].values())
        if "$filter" in query:
            try:
                row_filter = Filter(query["$filter"])
            except ValueError as exc:
                raise error(400, f"Invalid $filter: {exc}", "0x80060888") from None
            for name in _filter_names(row_filter.tree):
                if self._column_of(table, name) is None:
                    raise _no_property(table, name)
            rows = [
                row
                for row in rows
                if row_filter.matches(row, lambda r, n: _plain_value(r.get(self._column_of(table, n) or n)))
            ]
        # Without $orderby Dataverse orders by the primary id ("order by <entity>.<entity>id asc" is
        # inserted, Paging behaviors and ordering), as SQL Server orders a uniqueidentifier.
        rows.sort(key=lambda r: _id_order(r[table.primary]))
        return rows

    def _changes(self, table: Table, query: dict[str, str], headers: dict[str, str]) -> dict[str, Any]:
        """Change tracking as the Web API answers it: every row with a delta link first; then, from a
        delta link, the rows created or changed since and the removed ones as $deletedEntity.

        Documented (use-change-tracking-synchronize-data-external-systems): the Prefer header
        `odata.track-changes`, `@odata.deltaLink` carrying `$deltatoken`, a delta response whose
        context ends in `/$delta`, removals as `{"@odata.context": ...$deletedEntity, "id", "reason":
        "deleted"}`, and a delta link that gives the changes since the first request. Inferred: paging
        by maxpagesize with the delta link on the last page, each page read after the last entry of the
        one before (as the ordinary read's paging cookie goes on after the last id), the token's form
        (version!timestamp, as the samples show), and the refusal of a table not tracked and of query
        options other than $select (the docs name none; the SDK's RetrieveEntityChanges takes only
        columns)."""
        if table.logical not in self.change_tracking:
            raise error(
                400,
                f"Change tracking is not enabled for the entity {table.logical}. Enable Track changes for the "
                "table before retrieving its changes.",
                "0x80044155",
            )
        unsupported = [name for name in query if name not in ("$select", "$deltatoken", "$skiptoken")]
        if unsupported:
            raise error(400, f"The query option {unsupported[0]} is not supported with change tracking.", "0x80060888")
        select = query.get("$select")
        self._check_select(table, select)
        token = query.get("$deltatoken")
        since = 0
        if token is not None:
            try:
                version, stamp = token.split("!", 1)
                since = int(version)
                issued = datetime.strptime(stamp, "%m/%d/%Y %H:%M:%S").replace(tzinfo=UTC)
            except ValueError:
                raise error(400, f"The delta token {token!r} is not valid.", "0x80044156") from None
            if self.change_tracking_clock() - issued > timedelta(days=self.expire_change_tracking_days):
                # Documented: a token older than ExpireChangeTrackingInDays makes the system throw, and
                # a full sync is needed (use-change-tracking-synchronize-data-external-systems); the
                # code and message are ExpiredVersionStamp's (web service error codes). Inferred: the
                # Web API answers it 400, as it does the other refusals of a query.
                raise error(
                    400,
                    "Version stamp associated with the client has expired. Please perform a full sync.",
                    "0x80044352",
                )
        page_number, start, after = 1, self._version, (0, since)
        if "$skiptoken" in query:
            page_number, start, after = _read_tracking_cookie(table, query["$skiptoken"])
        # Entries in the order (kind, version): rows created or changed, then removals. A page goes on
        # after the last entry of the one before, wherever it now is: an offset would skip a row
        # whenever one already read is deleted or changed (its version moves it to the end).
        entries = [
            ((0, int(row.get("versionnumber", 0))), row)
            for row in self.data[table.logical].values()
            if int(row.get("versionnumber", 0)) > since
        ]
        if token is not None:
            entries += [
                ((1, version), {"id": record_id})
                for version, record_id in self.removed.get(table.logical, [])
                if version > since and record_id not in self.data[table.logical]
            ]
        entries = sorted((entry for entry in entries if entry[0] > after), key=lambda entry: entry[0])
        page_size = MAX_PAGE
        prefer = headers.get("prefer", "")
        if "odata.maxpagesize=" in prefer:
            page_size = min(MAX_PAGE, int(prefer.split("odata.maxpagesize=")[1].split(",")[0].strip().strip('"')))
        page = entries[:page_size]
        removed_context = f"{self.api_url}/$metadata#{table.entity_set}/$deletedEntity"
        selected = f"({select})" if select else ""
        result: dict[str, Any] = {
            "@odata.context": f"{self.api_url}/$metadata#{table.entity_set}{selected}"
            + ("/$delta" if token is not None else ""),
            "value": [
                self._render(table, row, select, _lookup_annotations(headers))
                if kind == 0
                else {"@odata.context": removed_context, "id": row["id"], "reason": "deleted"}
                for (kind, _version), row in page
            ],
        }
        params = {k: v for k, v in query.items() if k != "$skiptoken"}
        if len(entries) > page_size:
            rest = "&".join(f"{k}={quote(v, safe='')}" for k, v in params.items())
            cookie = _tracking_cookie(page_number, start, page[-1][0])
            result["@odata.nextLink"] = (
                f"{self.api_url}/{table.entity_set}?{rest}{'&' if rest else ''}$skiptoken={cookie}"
            )
        else:
            # The version the read began at, not the one it ended at: a change made while it was paged
            # through, to a row already read, is in the next delta rather than lost.
            stamp = self.change_tracking_clock().strftime("%m/%d/%Y %H:%M:%S")
            params["$deltatoken"] = f"{start}!{stamp}"
            rest = "&".join(f"{k}={quote(v, safe='')}" for k, v in params.items())
            result["@odata.deltaLink"] = f"{self.api_url}/{table.entity_set}?{rest}"
        return result

    def _check_select(self, table: Table, select: str | None) -> None:
        # A misspelt column is refused, even when no row would show it, rather than read as absent.
        for name in (s.strip() for s in (select or "").split(",")):
            if name and self._column_of(table, name) is None:
                raise _no_property(table, name)

    def _column_of(self, table: Table, name: str) -> str | None:
        if name in table.columns:
            return name
        if name.startswith("_") and name.endswith("_value") and name[1:-6] in table.columns:
            return name[1:-6]
        return None

    def _render(self, table: Table, row: dict[str, Any], select: str | None, annotate: bool = False) -> dict[str, Any]:
        wanted = None if not select else {s.strip() for s in select.split(",")}
        out: dict[str, Any] = {"@odata.etag": f'W/"{row.get("versionnumber", 0)}"'}
        for name, column in table.columns.items():
            shown = f"_{name}_value" if column.type == "lookup" else name
            if wanted is not None and name not in wanted and shown not in wanted and name != table.primary:
                continue
            if wanted is not None and shown not in wanted and name not in wanted and name == table.primary and select:
                pass
            value = row.get(name)
            if isinstance(value, LookupValue):
                out[shown] = value.id
                if annotate:
                    out[f"{shown}@{LOOKUP_LOGICAL_NAME}"] = value.table
            elif isinstance(value, datetime):
                out[shown] = value.astimezone(UTC).isoformat().replace("+00:00", "Z")
            elif isinstance(value, date):
                out[shown] = value.isoformat()
            else:
                out[shown] = value
        return out

    # --- writing -------------------------------------------------------------------------------

    def _validated(self, table: Table, values: dict[str, Any], *, creating: bool) -> dict[str, Any]:
        row: dict[str, Any] = {}
        for name, raw in values.items():
            if name.startswith("@"):
                continue
            if name.endswith("@odata.bind"):
                nav = name[: -len("@odata.bind")]
                column = table.lookup_for_navigation(nav)
                if column is None:
                    raise error(
                        400,
                        f"An undeclared property '{nav}' which only has property annotations in the payload but no "
                        "property value was found in the payload. In OData, only declared navigation properties and "
                        "declared named streams can be represented as properties without values.",
                        "0x80060888",
                    )
                row[column.name] = None if raw is None else self._resolve_bind(str(raw))
                continue
            if self._column_of(table, name) not in (None, name):
                # `_x_value` is the read-only shadow of a lookup; only its navigation property writes it.
                raise error(
                    400,
                    "CRM do not support direct update of Entity Reference properties, Use Navigation properties "
                    "instead.",
                    "0x80060888",
                )
            column = table.columns.get(name)
            if column is None or (isinstance(raw, LookupValue) and column.type != "lookup"):
                raise error(
                    400,
                    f"The property '{name}' does not exist on type 'Microsoft.Dynamics.CRM.{table.logical}'. "
                    "Make sure to only use property names that are defined by the type.",
                    "0x80060888",
                )
            row[name] = self._coerce(table, column, raw)
        return row

    def _resolve_bind(self, reference: str) -> LookupValue:
        # A bind is a URL (Use an alternate key to reference a record): read as a request's path is,
        # percent-decoded and with the same characters refused in a key (inferred: not documented for binds).
        path = unquote(reference.split(API + "/", 1)[-1].lstrip("/"))
        entity_set, key_segment, _ = split_resource(path)
        target = self.by_set.get(entity_set)
        if target is None or key_segment is None:
            raise error(400, f"Invalid @odata.bind reference '{reference}'.", "0x80060888")
        _refuse_unaddressable(key_segment)
        record_id = self._find(target, key_segment)
        if record_id is None:
            raise self._missing(target, key_segment)
        return LookupValue(target.logical, record_id)

    def _coerce(self, table: Table, column: Column, raw: Any) -> Any:
        if isinstance(raw, LookupValue) or raw is None:
            return raw
        kind, name = column.type, column.name

        def invalid() -> ODataError:
            return error(
                400,
                f"Cannot convert the literal '{raw}' to the expected type '{_edm(kind)}' for property '{name}'.",
                "0x80060888",
            )

        if kind == "lookup":
            navigation = next(iter(column.navigation.values()), name)
            raise error(
                400,
                f"Does not support untyped value in non-open type: set '{name}' with '{navigation}@odata.bind'.",
                "0x80060888",
            )
        if kind in ("string",):
            if not isinstance(raw, str):
                raise invalid()
            if column.max and len(raw) > column.max:
                raise error(
                    400,
                    f"A validation error occurred.  The length of the '{name}' attribute of the '{table.logical}' "
                    f"entity exceeded the maximum allowed length of '{column.max}'.",
                    "0x80044331",
                )
            return raw
        if kind in ("int", "bigint"):
            if isinstance(raw, bool) or not isinstance(raw, int):
                raise invalid()
            return raw
        if kind == "picklist":
            if isinstance(raw, bool) or not isinstance(raw, int):
                raise invalid()
            if column.values and raw not in column.values:
                raise error(
                    400,
                    f"A validation error occurred. The value {raw} of '{name}' on record of type '{table.logical}' is "
                    f"outside the valid range. Accepted Values: {','.join(str(v) for v in column.values)}",
                    "0x8004431A",
                )
            return raw
        if kind in ("decimal", "money"):
            if isinstance(raw, bool) or not isinstance(raw, int | Decimal | str):
                raise invalid()
            try:
                return Decimal(str(raw))
            except InvalidOperation:
                raise invalid() from None
        if kind == "bool":
            if not isinstance(raw, bool):
                raise invalid()
            return raw
        if kind == "date":
            if not isinstance(raw, str):
                raise invalid()
            try:
                return date.fromisoformat(raw[:10])
            except ValueError:
                raise invalid() from None
        if kind == "datetime":
            if not isinstance(raw, str):
                raise invalid()
            try:
                return parse_iso_datetime(raw if "T" in raw else raw + "T00:00:00Z")
            except ValueError:
                raise invalid() from None
        if kind == "guid":
            if not isinstance(raw, str) or not is_guid(raw):
                raise invalid()
            return raw.lower()
        return raw

    def _stamp(self, table: Table, row: dict[str, Any], user: str, *, creating: bool) -> None:
        now = datetime.now(UTC)
        self._version += 1
        stamps: dict[str, Any] = {
            "versionnumber": self._version,
            "modifiedon": now,
            "modifiedby": LookupValue("systemuser", user),
        }
        if creating:
            stamps["createdby"] = LookupValue("systemuser", user)
        defaults: dict[str, Any] = (
            {"createdon": now, "ownerid": LookupValue("systemuser", user), "statecode": 0, "statuscode": 1}
            if creating
            else {}
        )
        # Only what the table has: an organization-owned table has no owner, some system tables no state.
        for name, value in stamps.items():
            if name in table.columns:
                row[name] = value
        for name, value in defaults.items():
            if name in table.columns:
                row.setdefault(name, value)
        if creating:
            for column in table.columns.values():
                if column.type == "bool" and column.name not in row:
                    row[column.name] = False

    def _create(
        self, table: Table, values: dict[str, Any], user: str, key_values: dict[str, Any] | None = None
    ) -> WriteEffect:
        row = {**(key_values or {}), **self._validated(table, values, creating=True)}
        record_id = str(row.get(table.primary) or uuid.uuid4()).lower()
        if record_id in self.data[table.logical]:
            raise error(412, "Cannot insert duplicate key.", "0x80040237")
        for alternate in table.alternate_keys:
            if all(row.get(c) is not None for c in alternate) and _key_of(row, alternate) in self._key_index(
                table, alternate
            ):
                raise error(
                    412,
                    f"Entity Key {'+'.join(alternate)} violated. A record with the same value for "
                    f"{', '.join(alternate)} already exists.",
                    "0x80060892",
                )
        row[table.primary] = record_id
        _price(table, row)
        self._check_step_image(table, row)
        touched = set(row)
        self._stamp(table, row, user, creating=True)
        self.data[table.logical][record_id] = row
        self._index_row(table, record_id, row)
        return WriteEffect(table, "Create", record_id, None, dict(row), touched, user)

    def _upsert(
        self, table: Table, key_segment: str, values: dict[str, Any], headers: dict[str, str], user: str
    ) -> tuple[WriteEffect, bool]:
        record_id = self._find(table, key_segment)
        if_match = headers.get("if-match")
        if_none_match = headers.get("if-none-match")
        if record_id is None:
            if if_match:
                raise self._missing(table, key_segment)
            key = parse_key(key_segment)
            key_values: dict[str, Any] = {}
            if isinstance(key, str):
                key_values[table.primary] = key.lower()
            else:
                for name, value in key.items():
                    column = self._column_of(table, name)
                    if column is None:
                        continue
                    spec = table.columns[column]
                    key_values[column] = (
                        LookupValue(spec.target or "", str(value).lower())
                        if spec.type == "lookup"
                        else self._coerce(table, spec, value)
                    )
            return self._create(table, values, user, key_values), True
        if if_none_match == "*":
            raise error(412, "A record with matching key values already exists.")
        current = self.data[table.logical][record_id]
        if if_match and if_match != "*" and if_match.strip('W/"') != str(current.get("versionnumber")):
            raise error(412, "The version of the existing record doesn't match the RowVersion property provided.")
        before = dict(current)
        changes = self._validated(table, values, creating=False)
        self._check_step_image(table, {**current, **changes})
        current.update(changes)
        if any(column in alternate for alternate in table.alternate_keys for column in changes):
            self._forget_indexes(table)
        touched = set(changes) | _price(table, current)
        self._stamp(table, current, user, creating=False)
        return WriteEffect(table, "Update", record_id, before, dict(current), touched, user), False

    # --- bulk operation messages -----------------------------------------------------------------

    def _bulk(
        self, table: Table, message: str, body: dict[str, Any], user: str
    ) -> tuple[int, dict[str, str], Any, list[WriteEffect]]:
        """CreateMultiple / UpsertMultiple on a standard table: every target or none.

        Documented (Use bulk operation messages; UpsertMultiple Action): each item of `Targets` carries
        `@odata.type`; UpsertMultiple names a row by `@odata.id` (an alternate key) and answers 204 No
        Content; CreateMultiple answers the new rows' `Ids`. Unlike elastic tables, an error on one row
        of a standard table rolls the whole request back; the answer is that row's own error."""
        targets = body.get("Targets")
        if not isinstance(targets, list) or not targets:
            raise error(400, f"{message}: the parameter 'Targets' must be a non-empty collection.", "0x80040203")
        expected = f"Microsoft.Dynamics.CRM.{table.logical}"
        undo: list[tuple[str, dict[str, Any] | None]] = []
        effects: list[WriteEffect] = []
        rows = self.data[table.logical]
        try:
            for target in targets:
                if not isinstance(target, dict) or target.get("@odata.type") != expected:
                    raise error(
                        400,
                        f'{message}: every item of \'Targets\' must carry "@odata.type": "{expected}".',
                        "0x80048d19",
                    )
                values = {k: v for k, v in target.items() if k not in ("@odata.type", "@odata.id")}
                reference = target.get("@odata.id")
                if message == "UpsertMultiple" and isinstance(reference, str):
                    entity_set, key_segment, _ = split_resource(unquote(reference.split(API + "/", 1)[-1]))
                    if entity_set != table.entity_set or key_segment is None:
                        raise error(400, f"Invalid @odata.id '{reference}' for {table.entity_set}.", "0x80060888")
                    _refuse_unaddressable(key_segment)
                    existing = self._find(table, key_segment)
                    undo.append((existing or "", dict(rows[existing]) if existing else None))
                    effect, _created = self._upsert(table, key_segment, values, {}, user)
                else:
                    undo.append(("", None))
                    effect = self._create(table, values, user)
                if not undo[-1][0]:
                    undo[-1] = (effect.record_id, None)
                effects.append(effect)
        except ODataError:
            for record_id, before in reversed(undo):
                if before is None:
                    rows.pop(record_id, None)
                else:
                    rows[record_id] = before
            self._forget_indexes(table)
            raise
        if message == "CreateMultiple":
            payload = {
                "@odata.context": f"{self.api_url}/$metadata#Microsoft.Dynamics.CRM.CreateMultipleResponse",
                "Ids": [e.record_id for e in effects],
            }
            return 200, {}, payload, effects
        return 204, {}, None, effects

    # --- $batch --------------------------------------------------------------------------------

    async def _batch(self, body: bytes, headers: dict[str, str], user: str) -> Response:
        try:
            parts = parse_batch(body, headers.get("content-type", ""))
        except (ValueError, IndexError) as exc:
            raise error(400, f"Invalid batch request: {exc}") from None

        def handle(part: BatchPart, url: str, ids: dict[str, str]) -> tuple[int, dict[str, str], bytes, list[Any]]:
            path, _, query_text = url.split(API + "/", 1)[-1].lstrip("/").partition("?")
            query = dict(p.split("=", 1) for p in query_text.split("&") if "=" in p)
            status, response_headers, payload, effects = self._handle(
                part.method, unquote(path), query, {**headers, **part.headers}, part.body, user
            )
            if part.content_id and "OData-EntityId" in response_headers:
                ids[part.content_id] = response_headers["OData-EntityId"].split(API + "/", 1)[-1]
            content = b"" if payload is None else _dump(payload)
            return status, {"OData-Version": "4.0", **response_headers}, content, effects

        continue_on_error = "odata.continue-on-error" in headers.get("prefer", "")
        results, effects = self.run_batch(parts, handle, continue_on_error=continue_on_error)
        await self._run_steps(effects)
        content, content_type = build_batch_response(results)
        # Without continue-on-error the batch stops at its first failure and answers 400 Bad Request with
        # the failing part inside (Execute batch operations using the Web API, Handling errors).
        failed = not continue_on_error and bool(results) and results[-1][1] >= 400
        return Response(
            content,
            status_code=400 if failed else 200,
            headers={"Content-Type": content_type, "OData-Version": "4.0"},
        )

    # --- steps ---------------------------------------------------------------------------------

    def _load_registered_steps(self) -> None:
        """Steps registered through the Web API (register-steps) become live, as on Dataverse: an enabled
        step fires, a disabled one (statecode 1) does not, and its images hold the columns they list."""
        self.steps.steps = [s for s in self.steps.steps if not s.id.startswith("registered:")]
        images = self.data["sdkmessageprocessingstepimage"].values()
        for step_id, row in self.data["sdkmessageprocessingstep"].items():
            message_filter = row.get("sdkmessagefilterid")
            message = row.get("sdkmessageid")
            endpoint = row.get("eventhandler")
            if not isinstance(message_filter, LookupValue) or not isinstance(message, LookupValue) or endpoint is None:
                continue
            if row.get("statecode") == STEP_DISABLED:
                continue
            entity = self.data["sdkmessagefilter"][message_filter.id]["primaryobjecttypecode"]
            message_name = self.data["sdkmessage"][message.id]["name"]
            endpoint_row = (
                self.data["serviceendpoint"].get(endpoint.id, {}) if isinstance(endpoint, LookupValue) else {}
            )
            mine = [i for i in images if _refers_to(i, step_id)]
            attributes = row.get("filteringattributes")
            # An image without attributes holds every column; several images of the step hold between
            # them the columns each lists.
            columns: set[str] | None = set()
            for image in mine:
                listed = image.get("attributes")
                if not listed:
                    columns = None
                    break
                assert columns is not None
                columns |= {c.strip() for c in str(listed).split(",") if c.strip()}
            self.steps.add(
                Step(
                    str(row.get("name")),
                    entity,
                    message_name,
                    set(attributes.split(",")) if attributes else None,
                    any(i.get("imagetype") in (IMAGE_PRE, IMAGE_BOTH) for i in mine),
                    any(i.get("imagetype") in (IMAGE_POST, IMAGE_BOTH) for i in mine),
                    str(endpoint_row.get("path") or "dataverse-changes"),
                    f"registered:{step_id}",
                    columns if mine else None,
                    _alias(mine, (IMAGE_PRE, IMAGE_BOTH), "PreImage"),
                    _alias(mine, (IMAGE_POST, IMAGE_BOTH), "PostImage"),
                )
            )

    def _check_step_image(self, table: Table, row: dict[str, Any]) -> None:
        """An image its step's message cannot have is refused (Register a plug-in, Availability of
        images: no pre image for Create, no post image for Delete, a post image only in PostOperation;
        inferred: Dataverse refuses the registration rather than sending an empty image)."""
        if table.logical != "sdkmessageprocessingstepimage":
            return
        step_ref = row.get("sdkmessageprocessingstepid")
        step = self.data["sdkmessageprocessingstep"].get(step_ref.id) if isinstance(step_ref, LookupValue) else None
        if step is None:
            return
        message_ref = step.get("sdkmessageid")
        message = self.data["sdkmessage"].get(message_ref.id, {}) if isinstance(message_ref, LookupValue) else {}
        kind = row.get("imagetype")
        pre, post = kind in (IMAGE_PRE, IMAGE_BOTH), kind in (IMAGE_POST, IMAGE_BOTH)
        if (pre and message.get("name") == "Create") or (post and message.get("name") == "Delete"):
            raise error(400, f"A {message.get('name')} step cannot have an image of type {kind}.")
        if post and step.get("stage") != STAGE_POST_OPERATION:
            raise error(400, "Only a PostOperation step can have a post image.")

    async def _run_steps(self, effects: list[WriteEffect]) -> None:
        for effect in effects:
            for step in self.steps.matching(effect.table.logical, effect.message, effect.touched):
                await self._emit(step, effect)

    async def _emit(self, step: Step, effect: WriteEffect) -> None:
        if self.sink is None:
            return
        body, properties = remote_execution_context(self, step, effect)
        if body is None:
            self.emit_errors.append(f"{step.name}: message over 192 KB even without images; not sent")
            return
        self.emitted += 1
        await self.sink(step.destination, body, properties, self.message_format)


def _rows_written(path: str, body: bytes) -> int:
    """How many rows a request writes, for the execution time it costs: a bulk message's targets, a
    $batch's parts, else one."""
    if path == "$batch":
        return max(1, body.count(b"Content-Type: application/http"))
    if path.endswith(tuple(BULK_MESSAGES)):
        try:
            targets = json_object(body, lambda message: error(400, message)).get("Targets")
        except ODataError:
            return 1
        return len(targets) if isinstance(targets, list) else 1
    return 1


def _dump(value: Any) -> bytes:
    from shared.jsonio import dumps

    return dumps(value).encode()


# OData v4 key literals: text quoted, dates, times, numbers and Guids bare (OData ABNF keyPredicate). A
# DateOnly column's key value written as text ('2026-12-01') does not name the row (inferred: the same
# answer Dataverse gives a key it cannot read).
_BARE = re.compile(r"^(?:\d{4}-\d{2}-\d{2}(?:T[\d:.]+(?:Z|[+-]\d{2}:\d{2}))?|-?[\d.]+|[0-9a-fA-F-]{36})$")


def _alias(images: list[dict[str, Any]], kinds: tuple[int, ...], default: str) -> str:
    """The entity alias of the step's first image of `kinds`: the key its image arrives under."""
    aliases = [str(i["entityalias"]) for i in images if i.get("imagetype") in kinds and i.get("entityalias")]
    return aliases[0] if aliases else default


def _refers_to(image: dict[str, Any], step_id: str) -> bool:
    reference = image.get("sdkmessageprocessingstepid")
    return isinstance(reference, LookupValue) and reference.id == step_id


def _price(table: Table, row: dict[str, Any]) -> set[str]:
    """An order line's amounts as Dataverse calculates them (salesorderdetail: baseamount "based on the
    price per unit, volume discount, and quantity", extendedamount "the sum of the unit price, quantity,
    discounts, and tax"; inferred: written values are replaced by the calculation). The names set."""
    if table.logical != "salesorderdetail" or row.get("priceperunit") is None or row.get("quantity") is None:
        return set()
    base = Decimal(str(row["priceperunit"])) * Decimal(str(row["quantity"]))
    row["baseamount"] = base
    discounts = sum(Decimal(str(row.get(name) or 0)) for name in ("manualdiscountamount", "volumediscountamount"))
    row["extendedamount"] = base - discounts + Decimal(str(row.get("tax") or 0))
    return {"baseamount", "extendedamount"}


def _check_key_literals(table: Table, key_segment: str) -> None:
    inner = key_segment.strip()[1:-1]
    for part in split_top(inner):
        name, _, text = part.partition("=")
        name, text = name.strip(), unquote(text.strip())
        column = table.columns.get(name[1:-6] if name.startswith("_") and name.endswith("_value") else name)
        quoted = len(text) >= 2 and text[0] == "'" and text[-1] == "'"
        kind = column.type if column is not None else "string"
        wrong = (quoted or not _BARE.match(text)) if kind in ("date", "datetime", "lookup") else not quoted
        if wrong and kind in ("date", "datetime", "lookup", "string"):
            raise error(
                400,
                f"The key in the request URI is not valid for resource 'Microsoft.Dynamics.CRM.{table.logical}'. "
                f"Make sure both the key name and value are valid: {name}={text} is not {EDM.get(kind, 'Edm.Guid')}.",
                "0x80060888",
            )


def _plain_value(value: Any) -> Any:
    return value.id if isinstance(value, LookupValue) else value


def _key_text(value: Any) -> str:
    """One key value as the index holds it: what `_same` would call equal compares equal here."""
    value = _plain_value(value)
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str) and len(value) >= 10 and value[4:5] == "-" and value[7:8] == "-":
        return value[:10] if value[:10].replace("-", "").isdigit() else value.lower()
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float | Decimal):
        return str(Decimal(str(value)).normalize())
    return str(value).lower()


def _key_of(row: dict[str, Any], alternate: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(_key_text(row.get(column)) for column in alternate)


def _same(value: Any, wanted: Any) -> bool:
    value = _plain_value(value)
    if isinstance(value, date) and isinstance(wanted, str):
        # A date key arrives as text in the URL.
        value = value.isoformat() if not isinstance(value, datetime) else value.date().isoformat()
        wanted = wanted[:10]
    if isinstance(value, str) and isinstance(wanted, str):
        return value.lower() == wanted.lower()
    return bool(value == wanted)


def _edm(kind: str) -> str:
    return EDM.get(kind, "Edm.String")


LOOKUP_LOGICAL_NAME = "Microsoft.Dynamics.CRM.lookuplogicalname"


def _lookup_annotations(headers: dict[str, str]) -> bool:
    """Whether the request's Prefer asks for the lookup's table annotation: Dataverse sends
    annotations only when asked, by name, by namespace (`NS.*`) or all (`*`); `-name` excludes."""
    match = re.search(r'odata\.include-annotations\s*=\s*"?([^";]*)"?', headers.get("prefer", ""))
    if match is None:
        return False
    wanted = False
    for pattern in (p.strip() for p in match.group(1).split(",")):
        excluded = pattern.startswith("-")
        term = pattern.lstrip("-")
        if (
            term == "*"
            or term == LOOKUP_LOGICAL_NAME
            or (term.endswith(".*") and LOOKUP_LOGICAL_NAME.startswith(term[:-1]))
        ):
            if excluded:
                return False
            wanted = True
    return wanted


def _no_property(table: Table, name: str) -> ODataError:
    return error(
        400,
        f"Could not find a property named '{name}' on type 'Microsoft.Dynamics.CRM.{table.logical}'.",
        "0x80060888",
    )


def _filter_names(node: Any) -> list[str]:
    kind = node[0]
    if kind in ("and", "or"):
        return _filter_names(node[1]) + _filter_names(node[2])
    if kind == "not":
        return _filter_names(node[1])
    if kind == "call":
        return [node[2][0]]
    return [node[1]]


# SQL Server compares a uniqueidentifier by its bytes (as .NET's Guid.ToByteArray lays them out) in
# this order, the last group first (SqlGuid.CompareTo).
_SQL_GUID_ORDER = (10, 11, 12, 13, 14, 15, 8, 9, 6, 7, 4, 5, 0, 1, 2, 3)
_PAGING_COOKIE = re.compile(r'<cookie pagenumber="(\d+)" pagingcookie="([^"]*)" istracking="(?:True|False)" />')
_INNER_COOKIE = re.compile(
    r'<cookie page="(\d+)"><(\w+) last="\{([0-9A-Fa-f-]{36})\}" first="\{([0-9A-Fa-f-]{36})\}" /></cookie>'
)


def _id_order(record_id: str) -> tuple[int, bytes, str]:
    """Where a primary id sorts, as SQL Server sorts a uniqueidentifier."""
    try:
        raw = uuid.UUID(record_id).bytes_le
    except ValueError:
        return (1, b"", record_id)
    return (0, bytes(raw[i] for i in _SQL_GUID_ORDER), "")


def _paging_cookie(table: Table, page_number: int, first: str, last: str) -> str:
    """The $skiptoken of the page after `page_number`, shaped like Dataverse's (the Web API's paged
    response sample): a cookie whose pagingcookie names the first and last primary id of the page read,
    braced and in capitals, encoded once inside the token and the token once more in the URL."""
    ids = f'last="{{{last.upper()}}}" first="{{{first.upper()}}}"'
    inner = f'<cookie page="{page_number}"><{table.primary} {ids} /></cookie>'
    encoded = re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), quote(inner, safe=""))
    token = f'<cookie pagenumber="{page_number + 1}" pagingcookie="{encoded}" istracking="False" />'
    return quote(token, safe="=/")


_TRACKING_COOKIE = re.compile(r'<cookie page="(\d+)" start="(\d+)"><versionnumber last="([01])!(\d+)" /></cookie>')


def _tracking_cookie(page_number: int, start: int, last: tuple[int, int]) -> str:
    """The $skiptoken of a tracked read's next page: the outer cookie as the ordinary read's, marked
    istracking, naming the version the read began at and the last entry read (its kind and version).
    Inferred: the inner form, which the docs do not show."""
    inner = f'<cookie page="{page_number}" start="{start}"><versionnumber last="{last[0]}!{last[1]}" /></cookie>'
    token = f'<cookie pagenumber="{page_number + 1}" pagingcookie="{quote(inner, safe="")}" istracking="True" />'
    return quote(token, safe="=/")


def _read_tracking_cookie(table: Table, token: str) -> tuple[int, int, tuple[int, int]]:
    """The page number a tracked read's $skiptoken asks for, the version the read began at, and the
    last entry read."""
    outer = _PAGING_COOKIE.fullmatch(token.strip())
    inner = _TRACKING_COOKIE.fullmatch(unquote(outer.group(2))) if outer else None
    if outer is None or inner is None:
        raise error(400, f"The $skiptoken {token[:200]!r} is not a paging cookie of {table.entity_set}.", "0x80060888")
    return int(outer.group(1)), int(inner.group(2)), (int(inner.group(3)), int(inner.group(4)))


def _read_paging_cookie(table: Table, token: str) -> tuple[int, str]:
    """The page number a $skiptoken asks for and the last id of the page before it. Inferred: a token
    that is not such a cookie, or names another table's id, is refused as a bad query (the docs say
    only to follow the nextLink unchanged)."""
    outer = _PAGING_COOKIE.fullmatch(token.strip())
    inner = _INNER_COOKIE.fullmatch(unquote(outer.group(2))) if outer else None
    if outer is None or inner is None or inner.group(2) != table.primary:
        raise error(400, f"The $skiptoken {token[:200]!r} is not a paging cookie of {table.entity_set}.", "0x80060888")
    return int(outer.group(1)), inner.group(3).lower()
