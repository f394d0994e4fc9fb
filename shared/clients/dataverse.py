"""Dataverse Web API client (v9.2) over the shared request engine (formats.md §4)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx

from shared.clients.addressing import entity_path, entity_set_path, filter_for_key, unaddressable_character
from shared.clients.base import ChangePage, Key, KeyBinds, Page, Row, WriteMode, WriteResult, primary_id
from shared.clients.batch import BatchRequest
from shared.clients.bulk import BulkUpserts
from shared.clients.http import ODataClient, json_body, json_object, member_object
from shared.errors import (
    MappingError,
    NotFoundError,
    PermanentServiceError,
    PreconditionFailedError,
    RecordNotFoundByKeyError,
    ServiceError,
    TransientServiceError,
)
from shared.settings import Settings

KEY_NOT_FOUND = "0x80060891"
DUPLICATE_KEY = "0x80060892"
_HEADERS = {"Accept": "application/json", "OData-MaxVersion": "4.0", "OData-Version": "4.0"}
# Dataverse annotates a row only when asked. Reads ask for the table a lookup points at, which a Ref
# needs (shared/records.py); formatted values are left out, so a re-read row's Refs carry no display
# name, as a plug-in message's usually do not, and every other column's text stays off the wire.
_ANNOTATIONS = 'odata.include-annotations="Microsoft.Dynamics.CRM.lookuplogicalname"'


def classify(response: httpx.Response) -> ServiceError:
    body = json_body(response)
    error = member_object(body, "error")
    code = str(error.get("code") or "")
    message = str(
        error.get("@Microsoft.PowerApps.CDS.InnerError.Message") or error.get("message") or response.text[:500]
    )
    status = response.status_code
    method, url = response.request.method, str(response.request.url)
    if code.lower() == KEY_NOT_FOUND:
        return RecordNotFoundByKeyError("dataverse", status, message, code=code, method=method, url=url)
    if status == 429 or status >= 500:
        return TransientServiceError("dataverse", status, message, code=code, method=method, url=url)
    if status == 404:
        return NotFoundError("dataverse", status, message, code=code, method=method, url=url)
    if status == 412:
        return PreconditionFailedError("dataverse", status, message, code=code, method=method, url=url)
    return PermanentServiceError("dataverse", status, message, code=code, method=method, url=url)


def _entity_id(response: httpx.Response) -> str | None:
    location = response.headers.get("OData-EntityId")
    if not location or "(" not in location:
        return None
    inner = location.rsplit("(", 1)[1].rstrip(")")
    return inner.lower() if "=" not in inner else inner


def _own_lost_create(error: ServiceError) -> bool:
    """A create refused as a duplicate key after an attempt of the same call went unanswered: the key
    may be held by the row that attempt made. On a first attempt the holder is another record."""
    return error.after_lost_attempt and (error.code or "").lower() == DUPLICATE_KEY


def _bindable(key: Key, key_binds: KeyBinds | None) -> Row:
    """Key columns as a create body carries them: a lookup part (`_x_value`, read-only) as its bind."""
    body: Row = {}
    for name, value in key.items():
        if not (name.startswith("_") and name.endswith("_value")):
            body[name] = value
        elif key_binds and name in key_binds:
            bind, reference = key_binds[name]
            body[bind] = reference
        else:
            raise MappingError(
                "the key holds a character Dataverse cannot address and a lookup part the map gives no bind for: "
                + ", ".join(f"{k}={v!r}" for k, v in key.items())
            )
    return body


def logical_name(entity_set: str) -> str:
    """The table's logical name from its entity set, which Dataverse makes the plural of it (inferred:
    English plurals as the platform forms them; a bulk request a wrong name fails halves itself down
    to single writes, which name the set only)."""
    if entity_set.endswith("ies"):
        return entity_set[:-3] + "y"
    if entity_set.endswith(("sses", "xes", "ches", "shes")):
        return entity_set[:-2]
    return entity_set.removesuffix("s")


class DataverseClient(ODataClient):
    system = "dataverse"
    api_path = "/api/data/v9.2/"
    classify_response = staticmethod(classify)

    def __init__(self, settings: Settings, *args: Any, **kwargs: Any) -> None:
        super().__init__(settings, *args, **kwargs)
        self.bulk: BulkUpserts | None = None
        if settings.dataverse_bulk_rows > 1:
            self.bulk = BulkUpserts(
                self.http.throttle, self._upsert_one, self.upsert_multiple, settings.dataverse_bulk_rows
            )

    @staticmethod
    def environment_url(settings: Settings) -> str:
        return settings.dataverse_url

    async def get(self, entity_set: str, key: Key, select: Sequence[str] | None = None) -> Row | None:
        if unaddressable_character(key):
            return await self._find(entity_set, key, select)
        params = {"$select": ",".join(select)} if select else None
        try:
            response = await self.http.request(
                "GET",
                entity_path(entity_set, key, guid_primary=True),
                headers={**_HEADERS, "If-None-Match": "null", "Prefer": _ANNOTATIONS},
                params=params,
            )
        except (NotFoundError, RecordNotFoundByKeyError):
            return None
        return json_object(response, self.system)

    async def write(
        self, entity_set: str, key: Key, body: Row, mode: WriteMode = "upsert", key_binds: KeyBinds | None = None
    ) -> WriteResult:
        headers = dict(_HEADERS)
        if mode == "create":
            headers["If-None-Match"] = "*"
        elif mode == "update":
            headers["If-Match"] = "*"
        # Alternate-key columns are never sent in the body: on update they would be dropped, and
        # on create the URL's values must win (formats.md §4.2).
        payload = {name: value for name, value in body.items() if name not in key}
        if unaddressable_character(key):
            return await self._write_found(entity_set, key, payload, mode, key_binds)
        if mode == "upsert" and self.bulk is not None:
            return await self.bulk.upsert(entity_set, key, payload)
        response = await self.http.request(
            "PATCH", entity_path(entity_set, key, guid_primary=True), headers=headers, json=payload
        )
        return WriteResult(entity_id=_entity_id(response))

    async def _upsert_one(self, entity_set: str, key: Key, payload: Row) -> WriteResult:
        response = await self.http.request(
            "PATCH", entity_path(entity_set, key, guid_primary=True), headers=dict(_HEADERS), json=payload
        )
        return WriteResult(entity_id=_entity_id(response))

    async def upsert_multiple(self, entity_set: str, rows: Sequence[tuple[Key, Row]]) -> None:
        """UpsertMultiple: the rows of one table, each named by its key, in one request (204 No Content).

        All or nothing on a standard table; the error is the failing row's, without saying which."""
        type_name = f"Microsoft.Dynamics.CRM.{logical_name(entity_set)}"
        targets = [
            {
                "@odata.type": type_name,
                "@odata.id": entity_path(entity_set, key, guid_primary=True),
                **{name: value for name, value in body.items() if name not in key},
            }
            for key, body in rows
        ]
        await self.http.request(
            "POST",
            f"{entity_set_path(entity_set)}/Microsoft.Dynamics.CRM.UpsertMultiple",
            headers=dict(_HEADERS),
            json={"Targets": targets},
        )

    async def _find(self, entity_set: str, key: Key, select: Sequence[str] | None = None) -> Row | None:
        """A row whose key Dataverse cannot address in a URL, found by $filter instead."""
        async for page in self.pages(entity_set, select=select, filter=filter_for_key(key), page_size=2):
            return page.rows[0] if page.rows else None
        return None

    async def _write_found(
        self, entity_set: str, key: Key, payload: Row, mode: WriteMode, key_binds: KeyBinds | None
    ) -> WriteResult:
        """Upsert by a key that cannot be in the URL: find the row by $filter, then write it by id,
        or create it with the key columns in the body."""
        found = await self._find(entity_set, key)
        created = False
        if found is None:
            if mode == "update":
                raise NotFoundError("dataverse", 404, f"no {entity_set} row where {filter_for_key(key)}")
            try:
                return await self.create(entity_set, {**_bindable(key, key_binds), **payload})
            except ServiceError as exc:
                if not _own_lost_create(exc):
                    raise
                found = await self._find(entity_set, key)
                if found is None:
                    raise
                created = True
        elif mode == "create":
            raise PreconditionFailedError("dataverse", 412, f"a {entity_set} row where {filter_for_key(key)} exists")
        row_id = primary_id(entity_set, found)
        headers = {**_HEADERS, "If-Match": "*"}
        await self.http.request(
            "PATCH", entity_path(entity_set, {"id": row_id}, guid_primary=True), headers=headers, json=payload
        )
        return WriteResult(entity_id=row_id, created=created)

    async def write_many(
        self,
        entity_set: str,
        rows: Sequence[tuple[Key, Row]],
        changeset_size: int = 500,
        key_binds: Sequence[KeyBinds] | None = None,
    ) -> int:
        """Upsert rows by their keys in atomic changesets; returns the number of changesets sent."""
        changesets = 0
        for start in range(0, len(rows), changeset_size):
            chunk = rows[start : start + changeset_size]
            binds = key_binds[start : start + changeset_size] if key_binds else [None] * len(chunk)
            requests = [
                await self._upsert_request(entity_set, key, body, row_binds)
                for (key, body), row_binds in zip(chunk, binds, strict=True)
            ]
            try:
                await self.batch(requests)
            except ServiceError as exc:
                if not _own_lost_create(exc):
                    raise
                # The changeset is atomic: the unanswered attempt applied all of it, so its creates
                # now find their rows, and the repeat writes them by id.
                requests = [
                    await self._upsert_request(entity_set, key, body, row_binds)
                    for (key, body), row_binds in zip(chunk, binds, strict=True)
                ]
                await self.batch(requests)
            changesets += 1
        return changesets

    async def _upsert_request(self, entity_set: str, key: Key, body: Row, key_binds: KeyBinds | None) -> BatchRequest:
        """One row's upsert in a changeset. A key Dataverse cannot address in a URL (an invoice number
        with a '/') is found by $filter first, then written by id or created with its key in the body."""
        payload = {name: value for name, value in body.items() if name not in key}
        if not unaddressable_character(key):
            return BatchRequest("PATCH", entity_path(entity_set, key, guid_primary=True), payload)
        found = await self._find(entity_set, key)
        if found is None:
            return BatchRequest("POST", entity_set_path(entity_set), {**_bindable(key, key_binds), **payload})
        row = {"id": primary_id(entity_set, found)}
        return BatchRequest("PATCH", entity_path(entity_set, row, guid_primary=True), payload, {"If-Match": "*"})

    async def create(self, entity_set: str, body: Row) -> WriteResult:
        response = await self.http.request("POST", entity_set, headers=dict(_HEADERS), json=body)
        return WriteResult(entity_id=_entity_id(response), created=True)

    async def delete(self, entity_set: str, key: Key) -> bool:
        if unaddressable_character(key):
            found = await self._find(entity_set, key)
            if found is None:
                return False
            key = {"id": primary_id(entity_set, found)}
        try:
            await self.http.request("DELETE", entity_path(entity_set, key, guid_primary=True), headers=dict(_HEADERS))
        except NotFoundError:
            return False
        return True

    async def pages(
        self,
        entity_set: str,
        *,
        select: Sequence[str] | None = None,
        filter: str | None = None,
        page_size: int = 5000,
        start_url: str | None = None,
    ) -> AsyncIterator[Page]:
        """Pages of a query, each with the nextLink that resumes after it (kept by initial sync)."""
        headers = {**_HEADERS, "Prefer": f"odata.maxpagesize={page_size},{_ANNOTATIONS}", "If-None-Match": "null"}
        url: str | None = start_url or entity_set
        params: dict[str, str] | None = None
        if start_url is None:
            params = {}
            if select:
                params["$select"] = ",".join(select)
            if filter:
                params["$filter"] = filter
        while url is not None:
            response = await self.http.request("GET", url, headers=headers, params=params or None)
            body = json_object(response, self.system)
            url = body.get("@odata.nextLink")
            params = None  # the nextLink carries the whole query, verbatim
            yield Page(list(body.get("value") or []), url)

    async def changes(
        self,
        entity_set: str,
        *,
        select: Sequence[str] | None = None,
        delta_link: str | None = None,
        page_size: int = 5000,
    ) -> AsyncIterator[ChangePage]:
        """Change tracking: from no delta link, every row; from one, what changed since it was issued.
        A removed row comes as `{"@odata.context": ...$deletedEntity, "id", "reason"}`."""
        track = f"odata.track-changes,odata.maxpagesize={page_size},{_ANNOTATIONS}"
        headers = {**_HEADERS, "Prefer": track, "If-None-Match": "null"}
        url: str | None = delta_link or entity_set
        params = {"$select": ",".join(select)} if select and delta_link is None else None
        while url is not None:
            response = await self.http.request("GET", url, headers=headers, params=params)
            body = json_object(response, self.system)
            params = None
            rows, removed = [], []
            for entry in body.get("value") or []:
                if str(entry.get("@odata.context", "")).endswith("$deletedEntity"):
                    removed.append(str(entry.get("id", "")).lower())
                else:
                    rows.append(entry)
            url = body.get("@odata.nextLink")
            yield ChangePage(rows, removed, url, body.get("@odata.deltaLink"))

    async def query(
        self,
        entity_set: str,
        *,
        select: Sequence[str] | None = None,
        filter: str | None = None,
        page_size: int = 5000,
    ) -> AsyncIterator[list[Row]]:
        async for page in self.pages(entity_set, select=select, filter=filter, page_size=page_size):
            yield page.rows
