"""Keys a person can type reach the row they name, or are refused with a reason; never another row.

The clients talk to both simulators over real sockets. The two attacks are the ones that worked
against the first wave: a record number that climbs the path to another entity set, and one that
closes the key early and turns the rest of the URL into a query.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from datetime import date
from types import SimpleNamespace
from typing import Any
from uuid import UUID

import pytest

from sandbox.dataverse.server import DataverseSimulator
from sandbox.finance.server import FinanceSimulator
from shared.auth import StaticToken
from shared.clients.addressing import UnaddressableKeyError, bind_reference, entity_path, filter_for_key, key_segment
from shared.clients.dataverse import DataverseClient
from shared.clients.finance import FinanceClient
from shared.documents import _any_row
from shared.errors import NotFoundError, PermanentServiceError
from shared.settings import Settings

TOKEN = "awkward"
CLIMB = "x/../CustomersV3(dataAreaId='usmf',CustomerAccount='US-001')?"
CLOSE_EARLY = "VICTIM')?"
AWKWARD = [
    "O'Brien & Co",
    "A/B",
    "why?",
    "#1",
    "100%",
    "R&D",
    "C++",
    "Müller Ærø 東京",
    "0123456789abcdef0123456789abcdef",
]


def _settings(*, dataverse_url: str = "http://127.0.0.1:1", finance_url: str = "http://127.0.0.1:1") -> Settings:
    values = {"auth_mode": "none", "state_backend": "sqlite", "bus_backend": "local", "http_max_retries": 0}
    return Settings.model_validate({"dataverse_url": dataverse_url, "finance_url": finance_url, **values})


@contextlib.asynccontextmanager
async def finance_on_a_socket(**options: Any) -> AsyncIterator[tuple[FinanceSimulator, FinanceClient]]:
    """The Finance simulator serving on loopback (`options` its own, e.g. page_size) and a client of it."""
    sim = FinanceSimulator(users={TOKEN: "aa000000-0000-4000-8000-000000000001"}, **options)
    await sim.start()
    client = FinanceClient(_settings(finance_url=sim.url), StaticToken(TOKEN))
    try:
        yield sim, client
    finally:
        await client.close()
        await sim.stop()


@pytest.fixture
async def finance() -> AsyncIterator[tuple[FinanceSimulator, FinanceClient]]:
    async with finance_on_a_socket() as pair:
        yield pair


@pytest.fixture
async def dataverse() -> AsyncIterator[tuple[DataverseSimulator, DataverseClient]]:
    sim = DataverseSimulator(users={TOKEN: "aa000000-0000-4000-8000-000000000002"})
    await sim.start()
    client = DataverseClient(_settings(dataverse_url=sim.url), StaticToken(TOKEN))
    try:
        yield sim, client
    finally:
        await client.close()
        await sim.stop()


def test_the_builder_encodes_every_value_and_checks_what_it_built() -> None:
    assert entity_path("CustomersV3", {"dataAreaId": "usmf", "CustomerAccount": "O'Brien (UK), Ltd=1"}) == (
        "CustomersV3(dataAreaId='usmf',CustomerAccount='O''Brien%20%28UK%29%2C%20Ltd%3D1')"
    )
    guid = UUID("3f2b8c1e-0000-4000-8000-000000000a01")
    assert entity_path("ProjActualsImports", {"dataAreaId": "usmf", "ActualsImportId": guid}) == (
        f"ProjActualsImports(dataAreaId='usmf',ActualsImportId={guid})"
    )
    # 32 hex digits are text, not a Guid: they stay quoted, so they cannot address another row by id.
    assert key_segment({"accountnumber": "0123456789abcdef0123456789abcdef"}, guid_primary=True) == (
        "(accountnumber='0123456789abcdef0123456789abcdef')"
    )
    for attack in (CLIMB, CLOSE_EARLY):
        with pytest.raises(UnaddressableKeyError, match="cannot address"):
            entity_path("CustomersV3", {"dataAreaId": "usmf", "CustomerAccount": attack})
        assert filter_for_key({"CustomerAccount": attack}) == "CustomerAccount eq '" + attack.replace("'", "''") + "'"


async def test_finance_attacks_leave_the_victim_untouched(finance: Any) -> None:
    sim, client = finance
    sim.seed("CustomerGroups", {"dataAreaId": "usmf", "CustomerGroupId": "10"})
    victim = {"dataAreaId": "usmf", "CustomerAccount": "US-001", "CustomerGroupId": "10", "OrganizationName": "Victim"}
    sim.seed("CustomersV3", victim)
    for attack in (CLIMB, CLOSE_EARLY, "VICTIM')"):
        key = {"dataAreaId": "usmf", "CustomerAccount": attack}
        assert await client.get("CustomersV3", key) is None  # read by $filter or by an encoded key: no row
        with pytest.raises((UnaddressableKeyError, NotFoundError)):
            await client.update("CustomersV3", key, {"OrganizationName": "Hijacked"})
        try:
            deleted = await client.delete("CustomersV3", key)
        except UnaddressableKeyError:
            deleted = False
        assert deleted is False
    row = sim.get("CustomersV3", dataAreaId="usmf", CustomerAccount="US-001")
    assert row is not None and row["OrganizationName"] == "Victim"
    assert not any(r.method in ("PATCH", "DELETE") and "US-001" in r.path for r in sim.requests)


# Which character of each awkward value Finance cannot address in a key segment (none: it can).
# Written out rather than derived from the client's own list, so a change to that list shows here.
REFUSED_BY_FINANCE = {
    "O'Brien & Co": "&",
    "A/B": "/",
    "why?": "?",
    "#1": "#",
    "100%": "%",
    "R&D": "&",
    "C++": "+",
    "Müller Ærø 東京": None,
    "0123456789abcdef0123456789abcdef": None,
}


def test_every_awkward_value_has_its_expected_finance_outcome() -> None:
    assert set(REFUSED_BY_FINANCE) == set(AWKWARD)


@pytest.mark.parametrize("account", AWKWARD)
async def test_finance_awkward_keys_round_trip_or_are_refused(finance: Any, account: str) -> None:
    sim, client = finance
    sim.seed("CustomerGroups", {"dataAreaId": "usmf", "CustomerGroupId": "10"})
    await client.create(
        "CustomersV3",
        {"dataAreaId": "usmf", "CustomerAccount": account, "CustomerGroupId": "10", "OrganizationName": "a"},
    )
    key = {"dataAreaId": "usmf", "CustomerAccount": account}
    found = await client.get("CustomersV3", key)
    assert found is not None and found["CustomerAccount"] == account
    refused = REFUSED_BY_FINANCE[account]
    if refused is None:
        await client.update("CustomersV3", key, {"OrganizationName": "b"})
        assert sim.get("CustomersV3", **key)["OrganizationName"] == "b"
        assert [r.method for r in sim.requests if r.method == "PATCH"] == ["PATCH"]
        return
    with pytest.raises(UnaddressableKeyError, match=re.escape(f"holds {refused!r}, which the service cannot address")):
        await client.update("CustomersV3", key, {"OrganizationName": "b"})
    # Refused before anything was sent: the row is as created and no write reached Finance.
    assert sim.get("CustomersV3", **key)["OrganizationName"] == "a"
    assert not [r for r in sim.requests if r.method in ("PATCH", "DELETE")]


@pytest.mark.parametrize("number", AWKWARD)
async def test_dataverse_awkward_alternate_keys_round_trip(dataverse: Any, number: str) -> None:
    sim, client = dataverse
    key = {"msdyn_projectnumber": number}
    await client.write("msdyn_projects", key, {"msdyn_subject": "first"})
    await client.write("msdyn_projects", key, {"msdyn_subject": "second"})
    rows = [r for r in sim.rows("msdyn_project") if r.get("msdyn_projectnumber") == number]
    assert [r["msdyn_subject"] for r in rows] == ["second"]
    found = await client.get("msdyn_projects", key, select=["msdyn_subject"])
    assert found is not None and found["msdyn_subject"] == "second"
    assert await client.delete("msdyn_projects", key) is True
    assert [r for r in sim.rows("msdyn_project") if r.get("msdyn_projectnumber") == number] == []


async def test_dataverse_refuses_a_key_it_cannot_address_as_documented(dataverse: Any) -> None:
    """Define alternate keys using Power Apps: with / # < > * % & : \\ ? + in the key's data, "GET or
    PATCH actions won't work" — so the simulator refuses them too, and the client goes by $filter."""
    _, client = dataverse
    response = await client.http._client.get(
        "msdyn_projects(msdyn_projectnumber='A%2BB')", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert response.status_code == 400 and "cannot be used in a key" in response.json()["error"]["message"]
    with pytest.raises(PermanentServiceError, match="holds '/', which cannot be used in a key") as refused:
        await client.http.request("GET", "msdyn_projects(msdyn_projectnumber='A%2FB')")
    assert refused.value.status == 400


async def test_a_finance_key_holding_the_wildcard_finds_its_row_past_a_page_of_other_matches() -> None:
    """Finance reads `*` in eq as a pattern: `C-*1` matches C-A1 and C-B1 too. With pages of two,
    the first page holds only those; the row the key names is on the next, and is the one found."""
    async with finance_on_a_socket(page_size=2) as (sim, client):
        sim.seed("CustomerGroups", {"dataAreaId": "usmf", "CustomerGroupId": "10"})
        for account in ("C-A1", "C-B1", "C-*1"):
            sim.seed("CustomersV3", {"dataAreaId": "usmf", "CustomerAccount": account, "OrganizationName": account})
        found = await client.get("CustomersV3", {"dataAreaId": "usmf", "CustomerAccount": "C-*1"})
        assert found is not None and found["CustomerAccount"] == "C-*1"
        assert await client.get("CustomersV3", {"dataAreaId": "usmf", "CustomerAccount": "C-*9"}) is None
        reads = [r for r in sim.requests if r.method == "GET" and r.path.endswith("/CustomersV3")]
        assert len(reads) >= 2  # the exact row was not on the first page
        # A document's "does the other entity have rows" asks the same way.
        engine: Any = SimpleNamespace(finance=client)
        assert await _any_row(engine, "CustomersV3", filter_for_key({"dataAreaId": "usmf", "CustomerAccount": "C-*1"}))
        assert not await _any_row(engine, "CustomersV3", filter_for_key({"CustomerAccount": "C-*9"}))


async def test_a_filter_holding_an_ampersand_reads_every_page() -> None:
    """The next link carries the query it continues: its values encoded, or `R&D` would cut it short."""
    async with finance_on_a_socket(page_size=2) as (sim, client):
        for n in range(5):
            sim.seed("CustomersV3", {"dataAreaId": "usmf", "CustomerAccount": f"C-{n}", "OrganizationName": "R&D #1"})
        sim.seed("CustomersV3", {"dataAreaId": "usmf", "CustomerAccount": "C-9", "OrganizationName": "R"})
        pages = [page.rows async for page in client.pages("CustomersV3", filter="OrganizationName eq 'R&D #1'")]
        assert [len(rows) for rows in pages] == [2, 2, 1]
        assert sorted(row["CustomerAccount"] for rows in pages for row in rows) == [f"C-{n}" for n in range(5)]


async def test_a_dataverse_filter_holding_an_ampersand_reads_every_page(dataverse: Any) -> None:
    _, client = dataverse
    for n in range(5):
        await client.write("msdyn_projects", {"msdyn_projectnumber": f"P-{n}"}, {"msdyn_subject": "R&D #1"})
    await client.write("msdyn_projects", {"msdyn_projectnumber": "P-9"}, {"msdyn_subject": "R"})
    pages = [
        page.rows async for page in client.pages("msdyn_projects", filter="msdyn_subject eq 'R&D #1'", page_size=2)
    ]
    assert [len(rows) for rows in pages] == [2, 2, 1]


async def test_a_bind_by_an_alternate_key_is_read_as_the_url_it_is(dataverse: Any) -> None:
    """The client percent-encodes a bind's key as it encodes a path: `PRJ 1` travels as `PRJ%201`."""
    sim, client = dataverse
    await client.write("msdyn_projects", {"msdyn_projectnumber": "PRJ 1"}, {"msdyn_subject": "spaced"})
    [project] = [r for r in sim.rows("msdyn_project") if r.get("msdyn_projectnumber") == "PRJ 1"]
    task = "c0a1e000-0000-4000-8000-00000000e001"
    bind = bind_reference("msdyn_projects", {"msdyn_projectnumber": "PRJ 1"})
    assert bind == "/msdyn_projects(msdyn_projectnumber='PRJ%201')"
    await client.write(
        "msdyn_projecttasks", {"msdyn_projecttaskid": task}, {"msdyn_subject": "t", "msdyn_project@odata.bind": bind}
    )
    [row] = [r for r in sim.rows("msdyn_projecttask") if r.get("msdyn_projecttaskid") == task]
    assert row["msdyn_project"] == project["msdyn_projectid"]


async def test_a_date_only_key_part_is_a_bare_date_and_text_in_its_place_is_refused(dataverse: Any) -> None:
    """OData writes an Edm.Date key value bare; quoted it is text, which names no row of a date key."""
    sim, client = dataverse
    key = {
        "msdyn_exchangeratetypename": "Default",
        "msdyn_fromcurrencycode": "GBP",
        "msdyn_tocurrencycode": "USD",
        "msdyn_validfrom": "2026-12-01",
    }
    refusal = re.escape("msdyn_validfrom='2026-12-01' is not Edm.Date")
    with pytest.raises(PermanentServiceError, match=refusal) as refused:
        await client.write("msdyn_currencyexchangerates", key, {"msdyn_exchangerate": "1.27"})
    assert refused.value.status == 400 and refused.value.code == "0x80060888"
    await client.write("msdyn_currencyexchangerates", {**key, "msdyn_validfrom": date(2026, 12, 1)}, {})
    [rate] = sim.rows("msdyn_currencyexchangerate")
    assert str(rate["msdyn_validfrom"]) == "2026-12-01"
