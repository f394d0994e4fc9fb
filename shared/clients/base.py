"""What the engine needs from the two systems' clients.

The engine talks to Dataverse and Finance only through these protocols, so the pipeline can be
unit-tested with fakes and the real clients can evolve (batching, paging) behind them.
Keys are ordered mappings of key field → value; a Dataverse primary key is {"<table>id": guid}.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from shared.clients import addressing
from shared.clients.batch import BatchRequest, BatchResponse

Row = dict[str, Any]
Key = Mapping[str, Any]
WriteMode = Literal["upsert", "create", "update"]
# What sets a key's lookup part (`_msdyn_company_value`) in a create's body, which cannot carry the
# read-only `_x_value` itself: the part's name → (`<navigation>@odata.bind`, `/<set>(<id>)`).
KeyBinds = Mapping[str, tuple[str, str]]


@dataclass(frozen=True)
class WriteResult:
    """What a write did. `created` is None when the service did not say (plain upsert answers 204)."""

    entity_id: str | None = None
    created: bool | None = None


# One builder for every value that goes into a URL (shared.clients.addressing); named here too
# because the engine and the tests reach the clients through this module.
odata_literal = addressing.literal
is_guid = addressing.is_guid
key_segment = addressing.key_segment


def primary_id(entity_set: str, row: Row) -> str:
    """A Dataverse row's primary id: `<table>id`, the table being the entity set's singular
    (cdm_companies → cdm_companyid, msdyn_expenses → msdyn_expenseid, accounts → accountid)."""
    for singular in (entity_set[:-3] + "y", entity_set[:-2], entity_set[:-1]):
        value = row.get(f"{singular}id")
        if isinstance(value, str):
            return value.lower()
    raise ValueError(f"no primary id column in the {entity_set} row")


@dataclass(frozen=True)
class Page:
    rows: list[Row]
    next_link: str | None


@dataclass(frozen=True)
class ChangePage:
    """A page of a table's changes (Dataverse change tracking): rows created or changed, ids removed,
    and on the last page the delta link that reads the changes after this read."""

    rows: list[Row]
    removed: list[str]
    next_link: str | None
    delta_link: str | None


class DataverseApi(Protocol):
    async def get(self, entity_set: str, key: Key, select: Sequence[str] | None = None) -> Row | None: ...

    async def write(
        self, entity_set: str, key: Key, body: Row, mode: WriteMode = "upsert", key_binds: KeyBinds | None = None
    ) -> WriteResult: ...

    async def write_many(
        self,
        entity_set: str,
        rows: Sequence[tuple[Key, Row]],
        changeset_size: int = 500,
        key_binds: Sequence[KeyBinds] | None = None,
    ) -> int: ...

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

    def changes(
        self,
        entity_set: str,
        *,
        select: Sequence[str] | None = None,
        delta_link: str | None = None,
        page_size: int = 5000,
    ) -> AsyncIterator[ChangePage]: ...

    async def batch(self, requests: list[BatchRequest]) -> list[BatchResponse]: ...

    async def metadata(self) -> str: ...


class FinanceApi(Protocol):
    async def get(self, entity_set: str, key: Key, select: Sequence[str] | None = None) -> Row | None: ...

    async def create(self, entity_set: str, body: Row, key: Key | None = None) -> WriteResult: ...

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

    def pages_by_key(
        self,
        entity_set: str,
        key_fields: Sequence[str],
        *,
        typed: Callable[[Mapping[str, Any]], Mapping[str, Any]] = dict,
        select: Sequence[str] | None = None,
        filter: str | None = None,
        page_size: int = 10000,
        after: str | None = None,
    ) -> AsyncIterator[Page]: ...

    async def batch(self, requests: list[BatchRequest]) -> list[BatchResponse]: ...

    async def metadata(self) -> str: ...
