"""Reading Finance by key over a real socket: $orderby on the key and a continuation after the last key
read, which a delete between pages cannot shift; and the simulator answering (and refusing) these
queries as Finance's OData does."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from shared.clients.addressing import filter_after_key
from shared.clients.finance import cursor_key, key_cursor
from shared.errors import MappingError, PermanentServiceError
from shared.maps import FieldType
from shared.wire import typed_key
from tests.sandbox.test_awkward_keys import finance_on_a_socket

ACTUALS_KEY = ("dataAreaId", "ActualsImportId")


def guid_typed(key: Any) -> Any:
    return typed_key(key, {"ActualsImportId": FieldType.GUID})


async def test_a_read_by_a_guid_key_goes_on_after_the_last_row_though_a_read_row_is_deleted() -> None:
    async with finance_on_a_socket(page_size=2) as (sim, client):
        ids = sorted(str(uuid.UUID(int=n * 7919 + 1)) for n in range(5))
        for n, actual in enumerate(ids):
            sim.seed("ProjActualsImports", {"dataAreaId": "usmf" if n % 2 else "uspi", "ActualsImportId": actual})
        read: list[str] = []
        async for page in client.pages_by_key("ProjActualsImports", ACTUALS_KEY, typed=guid_typed, page_size=2):
            if not read:
                # The first row read goes before the next page is asked for.
                first = page.rows[0]
                del sim.data["ProjActualsImports"][(first["dataAreaId"], first["ActualsImportId"])]
            read.extend(row["ActualsImportId"] for row in page.rows)
        assert sorted(read) == ids
        reads = [r.query for r in sim.requests if r.method == "GET" and r.path == "/data/ProjActualsImports"]
        assert all(r.status == 200 for r in sim.requests)
        assert len(reads) == 3 and "%24orderby=dataAreaId%2CActualsImportId" in reads[0].replace("$", "%24")


async def test_a_key_holding_the_wildcard_is_gone_past_once_not_matched_again() -> None:
    """`C-*1` compared with eq is a pattern that C-A1 and C-B1 match: a continuation built on eq would
    go back to them from C-*1. With ge and gt it moves on, and every customer is read once."""
    async with finance_on_a_socket(page_size=1) as (sim, client):
        sim.seed("CustomerGroups", {"dataAreaId": "usmf", "CustomerGroupId": "10"})
        accounts = ["C-*1", "C-A1", "C-B1", "C-Z"]
        for account in accounts:
            sim.seed("CustomersV3", {"dataAreaId": "usmf", "CustomerAccount": account, "OrganizationName": account})
        read = [
            row["CustomerAccount"]
            async for page in client.pages_by_key("CustomersV3", ("dataAreaId", "CustomerAccount"), page_size=1)
            for row in page.rows
        ]
        assert read == accounts


async def test_a_read_by_key_keeps_the_callers_filter_and_selects_the_key() -> None:
    async with finance_on_a_socket(page_size=1) as (sim, client):
        sim.seed("CustomerGroups", {"dataAreaId": "usmf", "CustomerGroupId": "10"})
        for company in ("usmf", "uspi"):
            for n in range(3):
                sim.seed("CustomersV3", {"dataAreaId": company, "CustomerAccount": f"C-{n}", "OrganizationName": "x"})
        pages = [
            page
            async for page in client.pages_by_key(
                "CustomersV3",
                ("dataAreaId", "CustomerAccount"),
                select=["OrganizationName"],
                filter="dataAreaId eq 'uspi'",
                page_size=1,
            )
        ]
        rows = [row for page in pages for row in page.rows]
        assert [(row["dataAreaId"], row["CustomerAccount"]) for row in rows] == [("uspi", f"C-{n}") for n in range(3)]
        assert [page.next_link for page in pages][-1] is None
        assert cursor_key(pages[0].next_link or "", ["dataAreaId", "CustomerAccount"]) == {
            "dataAreaId": "uspi",
            "CustomerAccount": "C-0",
        }


async def test_the_simulator_orders_as_asked_and_refuses_what_finance_refuses() -> None:
    async with finance_on_a_socket() as (sim, client):
        sim.seed("CustomerGroups", {"dataAreaId": "usmf", "CustomerGroupId": "10"})
        for account in ("b", "A", "c"):
            sim.seed("CustomersV3", {"dataAreaId": "usmf", "CustomerAccount": account, "OrganizationName": account})
        sim.seed("ProjActualsImports", {"dataAreaId": "usmf", "ActualsImportId": str(uuid.UUID(int=1))})

        async def get(query: dict[str, str]) -> Any:
            response = await client.http.request("GET", "CustomersV3", params={"cross-company": "true", **query})
            return [row["CustomerAccount"] for row in response.json()["value"]]

        # Strings order without case, as Finance's collation does, and gt agrees with that order.
        assert await get({"$orderby": "CustomerAccount"}) == ["A", "b", "c"]
        assert await get({"$orderby": "CustomerAccount desc"}) == ["c", "b", "A"]
        assert await get({"$orderby": "CustomerAccount", "$filter": "CustomerAccount gt 'a'"}) == ["b", "c"]
        refusals = [
            ("CustomersV3", {"$orderby": "Nonsense"}, "Could not find a property named 'Nonsense'"),
            ("CustomersV3", {"$orderby": "CustomerAccount sideways"}, r"Syntax error in \$orderby"),
            # Enums take eq and ne only (Open Data Protocol (OData), Filter details).
            (
                "CustomersV3",
                {"$filter": "OnHoldStatus gt Microsoft.Dynamics.DataEntities.CustVendorBlocked'No'"},
                "only eq and ne",
            ),
            # A Guid or a date written as a string is a string, and does not compare with one.
            (
                "ProjActualsImports",
                {"$filter": f"ActualsImportId gt '{uuid.UUID(int=0)}'"},
                "Found operand types 'Edm.Guid' and 'Edm.String' for operator kind 'GreaterThan'",
            ),
        ]
        for entity_set, query, message in refusals:
            with pytest.raises(PermanentServiceError, match=message) as refused:
                await client.http.request("GET", entity_set, params={"cross-company": "true", **query})
            assert refused.value.status == 400
        bare = await client.http.request(
            "GET",
            "ProjActualsImports",
            params={"$filter": f"ActualsImportId gt {uuid.UUID(int=0)}", "cross-company": "true"},
        )
        assert len(bare.json()["value"]) == 1


def test_the_continuation_goes_past_each_key_part_in_order_with_ge_and_gt_only() -> None:
    assert filter_after_key({"a": "x"}) == "a gt 'x'"
    assert filter_after_key({"a": "x", "b": 2}) == "a ge 'x' and (a gt 'x' or b gt 2)"
    guid = uuid.UUID(int=5)
    assert filter_after_key({"a": "O'B", "b": guid, "c": 3}) == (
        f"a ge 'O''B' and (a gt 'O''B' or b ge {guid} and (b gt {guid} or c gt 3))"
    )
    with pytest.raises(MappingError, match="empty"):
        filter_after_key({"a": None})


def test_a_cursor_names_exactly_the_key_it_goes_on_after() -> None:
    cursor = key_cursor({"dataAreaId": "usmf", "CustomerAccount": "C-1"})
    assert cursor_key(cursor, ["dataAreaId", "CustomerAccount"]) == {"dataAreaId": "usmf", "CustomerAccount": "C-1"}
    for bad in (
        "https://finance/data/CustomersV3?$skip=2",  # a nextLink an earlier version kept
        key_cursor({"CustomerAccount": "C-1"}),  # another key
        '{"after": {"dataAreaId": ["usmf"], "CustomerAccount": "C-1"}}',
        "{" * 10_000,
    ):
        with pytest.raises(ValueError, match="is not a cursor"):
            cursor_key(bad, ["dataAreaId", "CustomerAccount"])
