"""What the engine needs from the two systems' clients.

The engine talks to Dataverse and Finance only through these protocols, so the pipeline can be
unit-tested with fakes and the real clients can evolve (batching, paging) behind them.
Keys are ordered mappings of key field → value; a Dataverse primary key is {"<table>id": guid}.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal, Protocol
from uuid import UUID

from shared.clients.batch import BatchRequest, BatchResponse

Row = dict[str, Any]
Key = Mapping[str, Any]
WriteMode = Literal["upsert", "create", "update"]


@dataclass(frozen=True)
class WriteResult:
    """What a write did. `created` is None when the service did not say (plain upsert answers 204)."""

    entity_id: str | None = None
    created: bool | None = None


def odata_literal(value: Any) -> str:
    """An OData URL literal: strings quoted (quotes doubled); Guids, numbers and dates bare."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    text = str(value)
    return "'" + text.replace("'", "''") + "'"


def is_guid(value: Any) -> bool:
    try:
        UUID(str(value))
    except ValueError:
        return False
    return True


def _is_lookup_column(name: str) -> bool:
    return name.startswith("_") and name.endswith("_value")


def key_segment(key: Key, *, guid_primary: bool = False) -> str:
    """The `(...)` part of a keyed URL. A single GUID primary key is written bare: `(0000-...)`."""
    if guid_primary and len(key) == 1:
        ((name, value),) = key.items()
        # A lookup column as the whole alternate key is still named: only the primary id goes bare.
        if is_guid(value) and not _is_lookup_column(name):
            return f"({value})"
    parts = []
    for name, value in key.items():
        literal = str(value) if _is_lookup_column(name) else odata_literal(value)
        parts.append(f"{name}={literal}")
    return "(" + ",".join(parts) + ")"


@dataclass(frozen=True)
class Page:
    rows: list[Row]
    next_link: str | None


class DataverseApi(Protocol):
    async def get(self, entity_set: str, key: Key, select: Sequence[str] | None = None) -> Row | None: ...

    async def write(self, entity_set: str, key: Key, body: Row, mode: WriteMode = "upsert") -> WriteResult: ...

    async def write_many(self, entity_set: str, rows: Sequence[tuple[Key, Row]], changeset_size: int = 500) -> int: ...

    async def create(self, entity_set: str, body: Row) -> WriteResult: ...

    async def delete(self, entity_set: str, key: Key) -> bool: ...

    def query(
        self,
        entity_set: str,
        *,
        select: Sequence[str] | None = None,
        filter: str | None = None,
        page_size: int = 5000,
    ) -> AsyncIterator[list[Row]]: ...

    def pages(
        self,
        entity_set: str,
        *,
        select: Sequence[str] | None = None,
        filter: str | None = None,
        page_size: int = 5000,
        start_url: str | None = None,
    ) -> AsyncIterator[Page]: ...

    async def batch(self, requests: list[BatchRequest]) -> list[BatchResponse]: ...

    async def metadata(self) -> str: ...


class FinanceApi(Protocol):
    async def get(self, entity_set: str, key: Key, select: Sequence[str] | None = None) -> Row | None: ...

    async def create(self, entity_set: str, body: Row) -> WriteResult: ...

    async def update(self, entity_set: str, key: Key, body: Row) -> WriteResult: ...

    async def delete(self, entity_set: str, key: Key) -> bool: ...

    def query(
        self,
        entity_set: str,
        *,
        select: Sequence[str] | None = None,
        filter: str | None = None,
        cross_company: bool = True,
        page_size: int = 10000,
    ) -> AsyncIterator[list[Row]]: ...

    def pages(
        self,
        entity_set: str,
        *,
        select: Sequence[str] | None = None,
        filter: str | None = None,
        cross_company: bool = True,
        page_size: int = 10000,
        start_url: str | None = None,
    ) -> AsyncIterator[Page]: ...

    async def batch(self, requests: list[BatchRequest]) -> list[BatchResponse]: ...

    async def metadata(self) -> str: ...
