"""Finance OData client (`/data/`) over the shared request engine (formats.md §3)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Hashable, Mapping, Sequence
from typing import Any

import httpx

from shared.clients.addressing import (
    KeyFilter,
    entity_path,
    filter_after_key,
    filter_for_key,
    unaddressable_character,
)
from shared.clients.base import Key, Page, Row, WriteResult
from shared.clients.batch import BatchRequest, build_batch
from shared.clients.bulk import key_identity
from shared.clients.finance_batch import FinanceBatches, PartOutcome
from shared.clients.http import ODataClient, json_body, json_object, member_object, succeeded
from shared.errors import (
    NotFoundError,
    PermanentServiceError,
    RecordExistsError,
    ServiceError,
    TransientServiceError,
)
from shared.settings import Settings

_HEADERS = {"Accept": "application/json", "OData-MaxVersion": "4.0", "OData-Version": "4.0"}
# Reads must name other companies than the caller's default one (formats.md §3, cross-company).
_CROSS_COMPANY = {"cross-company": "true"}
# Run every changeset of a batch of independent rows, not only those before the first failure (OData
# 4.0, 8.2.8.3); whether Finance honours it is not documented (inferred), unanswered rows go again.
_CONTINUE_ON_ERROR = "odata.continue-on-error"


# A write refused for another process's sake, not the row's: it changed the row since this request
# read it (X++'s UpdateConflict, "An update conflict occurred due to another user process deleting the
# record or changing one or more fields in the record."), or SQL chose this request as a deadlock's
# victim (X++'s Deadlock; SQL Server's 1205, "... chosen as the deadlock victim. Rerun the
# transaction."). X++ code answers both with `retry`: the same write succeeds when made again.
_CONTENTION = ("an update conflict occurred due to another user process", "deadlock")


def _contention(message: str) -> bool:
    lowered = message.lower()
    return any(sign in lowered for sign in _CONTENTION)


# A key read's cursor is this long at most: a key is a few short fields, and the cursor is kept with
# the run in a table whose properties take 64 KiB.
_CURSOR_LIMIT = 4096


def classify(response: httpx.Response) -> ServiceError:
    body = json_body(response)
    error = member_object(body, "error")
    inner = member_object(error, "innererror")
    message = str(inner.get("message") or error.get("message") or response.text[:500])
    kind = str(inner.get("type") or "")
    status = response.status_code
    code = str(error.get("code") or "")
    method, url = response.request.method, str(response.request.url)
    # A refused write carries the Infolog: a permanent error, not an outage, whatever the status (400 in
    # published responses, 500 in some captured batches), so it is told by content.
    if _contention(message):
        return TransientServiceError("finance", status, message, code=code, method=method, url=url)
    validation = "AxODataWriteException" in kind or "Infolog" in message
    if validation and "already exists" in message:
        return RecordExistsError("finance", status, message, code=code, method=method, url=url)
    if validation:
        return PermanentServiceError("finance", status, message, code=code, method=method, url=url)
    if status == 429 or status >= 500:
        return TransientServiceError("finance", status, message, code=code, method=method, url=url)
    if status == 404:
        return NotFoundError("finance", status, message, code=code, method=method, url=url)
    return PermanentServiceError("finance", status, message, code=code, method=method, url=url)


def _written(request: BatchRequest, status: int) -> WriteResult:
    if request.method == "POST":
        return WriteResult(created=True, entity_id=None if status == 204 else request.url)
    return WriteResult(created=False)


async def first_exact_row(pages: AsyncIterator[Page]) -> Row | None:
    """The first row the key names. A key holding Finance's wildcard is answered as a pattern, and
    `pages` keeps only the exact rows: a page may hold none of them although a later one does."""
    async for page in pages:
        if page.rows:
            return page.rows[0]
    return None


class FinanceClient(ODataClient):
    system = "finance"
    api_path = "/data/"
    classify_response = staticmethod(classify)

    def __init__(self, settings: Settings, *args: Any, **kwargs: Any) -> None:
        super().__init__(settings, *args, **kwargs)
        self.batches: FinanceBatches | None = None
        if settings.finance_batch_rows > 1:
            self.batches = FinanceBatches(
                self.http.throttle, self._write_one, self._write_batch, settings.finance_batch_rows
            )

    @staticmethod
    def environment_url(settings: Settings) -> str:
        return settings.finance_url

    async def get(self, entity_set: str, key: Key, select: Sequence[str] | None = None) -> Row | None:
        if unaddressable_character(key):
            # Read by $filter: the key cannot be in the URL, the query string can carry anything.
            key_filter = filter_for_key(key)
            # Two rows answer "is there exactly one"; a pattern may match many rows before the one meant.
            page_size = 1000 if key_filter.wildcard_fields() else 2
            return await first_exact_row(self.pages(entity_set, select=select, filter=key_filter, page_size=page_size))
        params = dict(_CROSS_COMPANY)
        if select:
            params["$select"] = ",".join(select)
        try:
            response = await self.http.request("GET", entity_path(entity_set, key), headers=_HEADERS, params=params)
        except NotFoundError:
            return None
        return json_object(response, self.system)

    async def create(self, entity_set: str, body: Row, key: Key | None = None) -> WriteResult:
        """POST a new row; `key` names its record, so a record never has two writes in one $batch."""
        return await self._write(BatchRequest("POST", entity_set, body), entity_set, key)

    async def update(self, entity_set: str, key: Key, body: Row) -> WriteResult:
        payload = {name: value for name, value in body.items() if name not in key}
        return await self._write(BatchRequest("PATCH", entity_path(entity_set, key), payload), entity_set, key)

    async def _write(self, request: BatchRequest, entity_set: str, key: Key | None) -> WriteResult:
        if self.batches is None:
            return await self._write_one(request)
        identity: Hashable = (entity_set.lower(), key_identity(key)) if key is not None else object()
        return await self.batches.write(request, identity)

    async def _write_one(self, request: BatchRequest) -> WriteResult:
        response = await self.http.request(request.method, request.url, headers=dict(_HEADERS), json=request.body)
        return _written(request, response.status_code)

    async def _write_batch(self, requests: Sequence[BatchRequest]) -> list[PartOutcome]:
        """The writes as one $batch, one changeset each; every row's answer, typed as its own request's."""
        body, content_type = build_batch([[request] for request in requests], self.api_path)
        response = await self.http.request(
            "POST",
            "$batch",
            headers={"Content-Type": content_type, "Accept": "application/json", "Prefer": _CONTINUE_ON_ERROR},
            content=body,
            multipart_errors=True,
        )
        parts = self.batch_answers(response)
        by_number = {part.content_id: part for part in parts if part.content_id}
        if not by_number and len(parts) == len(requests):
            # Answers without Content-IDs come in the order of the requests (OData 4.0, 11.7.4).
            by_number = {str(number): part for number, part in enumerate(parts, start=1)}
        outcomes: list[PartOutcome] = []
        for number, request in enumerate(requests, start=1):
            part = by_number.get(str(number))
            if part is None:
                outcomes.append(None)
            elif not succeeded(part.status):
                outcomes.append(
                    self.http.classify_part(part.status, part.body, request.method, request.url, part.headers)
                )
            else:
                outcomes.append(_written(request, part.status))
        return outcomes

    async def delete(self, entity_set: str, key: Key) -> bool:
        try:
            await self.http.request("DELETE", entity_path(entity_set, key), headers=dict(_HEADERS))
        except NotFoundError:
            return False
        return True

    async def pages(
        self,
        entity_set: str,
        *,
        select: Sequence[str] | None = None,
        filter: str | None = None,
        cross_company: bool = True,
        page_size: int = 10000,
        start_url: str | None = None,
    ) -> AsyncIterator[Page]:
        url: str | None = start_url or entity_set
        params: dict[str, str] | None = None
        # A key value holding Finance's wildcard is answered as a pattern: keep only the exact rows.
        exact = filter if isinstance(filter, KeyFilter) and filter.wildcard_fields() else None
        if start_url is None:
            params = dict(_CROSS_COMPANY) if cross_company else {}
            if select:
                wanted = [*select, *(n for n in exact.wildcard_fields() if n not in select)] if exact else select
                params["$select"] = ",".join(wanted)
            if filter:
                params["$filter"] = filter
        while url is not None:
            headers = {**_HEADERS, "Prefer": f"odata.maxpagesize={page_size}"}
            response = await self.http.request("GET", url, headers=headers, params=params or None)
            body = json_object(response, self.system)
            url = body.get("@odata.nextLink")
            params = None
            rows = list(body.get("value") or [])
            yield Page([r for r in rows if exact.matches(r)] if exact else rows, url)

    async def pages_by_key(
        self,
        entity_set: str,
        key_fields: Sequence[str],
        *,
        typed: Callable[[Mapping[str, Any]], Mapping[str, Any]] = dict,
        select: Sequence[str] | None = None,
        filter: str | None = None,
        page_size: int = 10000,
        after: str | None = None,
    ) -> AsyncIterator[Page]:
        """Every row, in the order of its key, each page read after the last row of the one before.

        Finance pages by $skip (its nextLink carries $skip=N), so a row deleted from a page already read
        moves every later row back by one and the row at the boundary is never read. A read that goes on
        after the last key read loses none: Finance's nextLink only says that more rows follow. Each
        page's `next_link` is the cursor of that read, the last key as `key_cursor` writes it, which
        `after` takes back to go on after it. `typed` gives a key's parts as the values OData writes
        (a Guid or a date bare). Always cross-company: a read by key is of the whole table."""
        fields = list(key_fields)
        if not fields:
            raise ValueError(f"a read of {entity_set} by key needs its key fields")
        last = cursor_key(after, fields) if after is not None else None
        columns = [*select, *(f for f in fields if f not in select)] if select else None
        headers = {**_HEADERS, "Prefer": f"odata.maxpagesize={page_size}"}
        while True:
            params = dict(_CROSS_COMPANY)
            if columns:
                params["$select"] = ",".join(columns)
            clauses = [] if filter is None else [f"({filter})"]
            if last is not None:
                clauses.append(f"({filter_after_key(typed(last))})" if clauses else filter_after_key(typed(last)))
            if clauses:
                params["$filter"] = " and ".join(clauses)
            params["$orderby"] = ",".join(fields)
            response = await self.http.request("GET", entity_set, headers=headers, params=params)
            body = json_object(response, self.system)
            rows = body.get("value")
            rows = [row for row in rows if isinstance(row, dict)] if isinstance(rows, list) else []
            if not body.get("@odata.nextLink"):
                yield Page(rows, None)
                return
            if not rows:
                raise PermanentServiceError(
                    "finance",
                    response.status_code,
                    f"{entity_set} answered no rows and a nextLink: the read cannot go on",
                )
            key = _row_key(entity_set, rows[-1], fields)
            if key == last:
                # Finance answered the row the read went on after: reading on would loop on it.
                raise PermanentServiceError(
                    "finance",
                    response.status_code,
                    f"{entity_set} answered {key} again after it: the read cannot go on",
                )
            last = key
            yield Page(rows, key_cursor(key))

    async def query(
        self,
        entity_set: str,
        *,
        select: Sequence[str] | None = None,
        filter: str | None = None,
        cross_company: bool = True,
        page_size: int = 10000,
    ) -> AsyncIterator[list[Row]]:
        async for page in self.pages(
            entity_set, select=select, filter=filter, cross_company=cross_company, page_size=page_size
        ):
            yield page.rows


def _row_key(entity_set: str, row: Mapping[str, Any], fields: Sequence[str]) -> dict[str, Any]:
    """A row's key as Finance answered it, each part a plain value (a row is untrusted)."""
    key: dict[str, Any] = {}
    for name in fields:
        value = row.get(name)
        if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
            raise PermanentServiceError(
                "finance",
                200,
                f"a {entity_set} row answered key field {name} as {value!r}: the read cannot go on after it",
            )
        key[name] = value
    return key


def key_cursor(key: Mapping[str, Any]) -> str:
    """The cursor of a read by key: the last key read, as JSON text."""
    text = json.dumps({"after": dict(key)}, ensure_ascii=False, separators=(",", ":"))
    if len(text) > _CURSOR_LIMIT:
        raise PermanentServiceError("finance", 200, f"a key of {len(text):,} characters cannot be kept as a cursor")
    return text


def cursor_key(cursor: str, fields: Sequence[str]) -> dict[str, Any]:
    """The key a cursor of `key_cursor` names, with exactly these parts; anything else is refused."""
    try:
        parsed = json.loads(cursor) if len(cursor) <= _CURSOR_LIMIT else None
    except ValueError:
        parsed = None
    key = parsed.get("after") if isinstance(parsed, dict) else None
    if (
        not isinstance(key, dict)
        or list(key) != list(fields)
        or any(isinstance(v, bool) or not isinstance(v, str | int) for v in key.values())
    ):
        raise ValueError(f"{cursor[:200]!r} is not a cursor of a read by {', '.join(fields)}")
    return key
