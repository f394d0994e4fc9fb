"""A whole-table read loses no row when others are deleted while it goes on, and a stopped run goes on
after the last row it fed: over HTTP, against both simulators, judged by what the target received.

Finance pages by $skip, so a row deleted from a page already read moves every later row back by one
and the row at the page boundary is never read; the integration reads Finance by key instead
($orderby on the key, then the rows after the last one read). Dataverse pages with a cookie naming
the last id read, so a delete there moves nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, unquote, unquote_plus

import pytest

from functions.catalog import CATALOG
from sandbox.environment import Sandbox
from shared.events import ChangeEvent, Source
from shared.maps import TableMap
from shared.operations.initial_sync import initial_sync, latest_unfinished

WORKERS = "/data/Workers"


def seed_workers(sandbox: Sandbox, n: int) -> list[str]:
    numbers = [f"W{i:03d}" for i in range(n)]
    for number in numbers:
        sandbox.finance.seed("Workers", {"PersonnelNumber": number, "FirstName": "A", "LastName": number, "Name": "A"})
    return numbers


def worker_reads(sandbox: Sandbox, since: int = 0) -> list[dict[str, str]]:
    """The query of every GET of Workers Finance received, decoded."""
    return [
        {name: values[0] for name, values in parse_qs(r.query).items()}
        for r in sandbox.finance.requests[since:]
        if r.method == "GET" and r.path == WORKERS
    ]


def workers_in_dataverse(sandbox: Sandbox) -> set[str]:
    return {
        str(row["cdm_workernumber"])
        for row in sandbox.dataverse.rows("cdm_worker")
        if str(row.get("cdm_workernumber", "")).startswith("W")
    }


def field(event: ChangeEvent, name: str) -> Any:
    assert event.record is not None
    return event.record[name]


def feed_watch(sandbox: Sandbox, table_map: TableMap, after_first_page: Any = None) -> list[ChangeEvent]:
    """The initial-sync events the flow queue received; `after_first_page` (awaited) runs once the first
    page is fed."""
    assert sandbox.runtime is not None
    sender = sandbox.runtime.sender
    real_send = sender.send_events
    fed: list[ChangeEvent] = []

    async def send_events(queue: str, events: Sequence[ChangeEvent], **options: Any) -> None:
        await real_send(queue, events, **options)
        if queue == table_map.flow_queue:
            first = not fed
            fed.extend(event for event in events if event.source is Source.INITIAL_SYNC)
            if first and after_first_page is not None:
                await after_first_page(fed)

    sender.send_events = send_events  # type: ignore[method-assign]
    return fed


async def test_a_finance_row_deleted_after_the_first_page_costs_no_other_row(sandbox: Sandbox) -> None:
    """Found by review: W000 deleted once page one (W000, W001) was fed made the $skip=2 page start at
    W003, and W002 never reached Dataverse while the run said completed."""
    assert sandbox.runtime is not None
    engine = sandbox.runtime.engine
    numbers = seed_workers(sandbox, 6)
    sandbox.finance.page_size = 2
    table_map = CATALOG.by_name("workers")

    async def delete_first(fed: list[ChangeEvent]) -> None:
        assert await engine.finance.delete("Workers", {"PersonnelNumber": field(fed[0], "PersonnelNumber")})

    fed = feed_watch(sandbox, table_map, delete_first)
    before = len(sandbox.finance.requests)
    run = await initial_sync(sandbox.runtime, table_map, page_size=2, prefetch=False)
    await sandbox.wait_quiet()

    assert run.status == "completed"
    assert workers_in_dataverse(sandbox) == set(numbers)
    assert [field(event, "PersonnelNumber") for event in fed] == numbers
    reads = worker_reads(sandbox, before)
    # Every read is ordered by the key, across companies; the ones after the first go on after the
    # last worker read, whatever page number Finance's nextLink named.
    assert all(read["$orderby"] == "PersonnelNumber" and read["cross-company"] == "true" for read in reads)
    assert [read.get("$filter") for read in reads] == [
        None,
        "PersonnelNumber gt 'W001'",
        "PersonnelNumber gt 'W003'",
    ]
    assert all("$skip" not in read for read in reads)


async def test_a_stopped_finance_run_goes_on_after_the_last_row_it_fed(sandbox: Sandbox) -> None:
    assert sandbox.runtime is not None
    numbers = seed_workers(sandbox, 5)
    sandbox.finance.page_size = 2
    table_map = CATALOG.by_name("workers")
    with pytest.raises(InterruptedError):
        await initial_sync(sandbox.runtime, table_map, page_size=2, stop_after_pages=1)
    stopped = await latest_unfinished(sandbox.runtime, "workers")
    assert stopped is not None and stopped.cursor is not None
    assert json.loads(stopped.cursor) == {"after": {"PersonnelNumber": "W001"}}

    # A worker before the cursor goes meanwhile: nothing after it moves.
    assert await sandbox.runtime.engine.finance.delete("Workers", {"PersonnelNumber": "W000"})
    fed = feed_watch(sandbox, table_map)
    before = len(sandbox.finance.requests)
    done = await initial_sync(sandbox.runtime, table_map, page_size=2, resume=stopped)
    await sandbox.wait_quiet()

    assert done.status == "completed" and done.id == stopped.id and done.cursor is None
    assert [field(event, "PersonnelNumber") for event in fed] == numbers[2:]
    assert worker_reads(sandbox, before)[0]["$filter"] == "PersonnelNumber gt 'W001'"
    assert workers_in_dataverse(sandbox) >= set(numbers[1:])


async def test_a_run_stopped_on_a_finance_next_link_is_read_again_from_the_first_row(sandbox: Sandbox) -> None:
    """A run an earlier version stopped kept Finance's nextLink ($skip=2): that page number may have
    moved since, so the run goes on from the first row, and says why."""
    assert sandbox.runtime is not None
    state = sandbox.runtime.engine.state
    numbers = seed_workers(sandbox, 4)
    sandbox.finance.page_size = 2
    table_map = CATALOG.by_name("workers")
    with pytest.raises(InterruptedError):
        await initial_sync(sandbox.runtime, table_map, page_size=2, stop_after_pages=1)
    stopped = await latest_unfinished(sandbox.runtime, "workers")
    assert stopped is not None
    stopped.options["reads"].pop("order")
    stopped.cursor = f"{sandbox.finance.data_url}/Workers?cross-company=true&$skip=2"
    await state.put_run(stopped)

    fed = feed_watch(sandbox, table_map)
    before = len(sandbox.finance.requests)
    done = await initial_sync(sandbox.runtime, table_map, page_size=2, resume=stopped)
    assert done.status == "completed"
    assert [field(event, "PersonnelNumber") for event in fed] == numbers
    assert "$filter" not in worker_reads(sandbox, before)[0]
    assert any("first page" in error and "order of its key" in error for error in done.errors)


async def test_a_keyed_finance_read_keeps_the_company_filter_and_orders_by_every_key_part(sandbox: Sandbox) -> None:
    """Expense lines are keyed by number and company: both are in $orderby and in the continuation,
    and the company asked for stays in every read."""
    from tests.integration.test_initial_sync_runs import expense_line

    assert sandbox.runtime is not None
    for n in range(3):
        await sandbox.finance.post_expense_report("usmf", f"EXP-09{n}", [expense_line(f"Taxi {n}", "42.10")])
        await sandbox.finance.post_expense_report("uspi", f"EXP-19{n}", [expense_line(f"Hotel {n}", "120.00")])
    await sandbox.wait_quiet()
    usmf = sorted(
        str(r["ExpTransNumber"])
        for r in sandbox.finance.rows("ProjExpensesExport")
        if r["ReferenceDataAreaId"] == "usmf"
    )
    sandbox.finance.page_size = 1
    table_map = CATALOG.by_name("expenses")
    fed = feed_watch(sandbox, table_map)
    before = len(sandbox.finance.requests)
    run = await initial_sync(sandbox.runtime, table_map, companies=["USMF"], page_size=1)
    await sandbox.wait_quiet()

    assert run.status == "completed" and run.counts["fed"] == 3
    # Each line once in the order of the key (a line the flow parks for a missing project comes again
    # on its retries, which are not reads).
    assert list(dict.fromkeys(str(field(event, "ExpTransNumber")) for event in fed)) == usmf
    reads = [
        unquote_plus(r.query)
        for r in sandbox.finance.requests[before:]
        if r.method == "GET" and r.path == "/data/ProjExpensesExport"
    ]
    assert all("$orderby=ExpTransNumber,ReferenceDataAreaId" in read for read in reads)
    assert all("(ReferenceDataAreaId eq 'usmf')" in read for read in reads)
    assert (
        f"ExpTransNumber ge '{usmf[0]}' and (ExpTransNumber gt '{usmf[0]}' or ReferenceDataAreaId gt 'usmf')"
        in (reads[1])
    )


async def test_exchange_rates_are_read_by_a_key_holding_a_date(sandbox: Sandbox) -> None:
    """ValidFrom is an Edm.DateTimeOffset key part: the continuation names it bare, as Finance takes it,
    and every rate of two days and two currencies reaches Dataverse."""
    assert sandbox.runtime is not None
    for currency in ("EUR", "GBP"):
        for day, rate in (("2026-11-01", "1.08375"), ("2026-11-02", "1.08410")):
            sandbox.finance.seed(
                "ExchangeRatesCDSEntity",
                {
                    "ExchangeRateTypeName": "Default",
                    "FromCurrencyCode": currency,
                    "ToCurrencyCode": "USD",
                    "ValidFrom": f"{day}T00:00:00Z",
                    "ValidTo": f"{day}T00:00:00Z",
                    "Rate": Decimal(rate),
                },
            )
    sandbox.finance.page_size = 1
    before = len(sandbox.finance.requests)
    run = await initial_sync(sandbox.runtime, CATALOG.by_name("exchange-rates"), page_size=1)
    await sandbox.wait_quiet()

    assert run.status == "completed" and run.counts["fed"] >= 4
    reads = [
        unquote_plus(r.query)
        for r in sandbox.finance.requests[before:]
        if r.method == "GET" and r.path == "/data/ExchangeRatesCDSEntity"
    ]
    assert all(r.status == 200 for r in sandbox.finance.requests[before:] if r.path == "/data/ExchangeRatesCDSEntity")
    assert any(re.search(r"ValidFrom gt 2026-11-0\dT00:00:00Z", read) for read in reads)
    rates = {
        (row["msdyn_fromcurrencycode"], str(row["msdyn_validfrom"])[:10])
        for row in sandbox.dataverse.rows("msdyn_currencyexchangerate")
        if row.get("msdyn_fromcurrencycode") in ("EUR", "GBP")
    }
    assert {("EUR", "2026-11-01"), ("EUR", "2026-11-02"), ("GBP", "2026-11-01"), ("GBP", "2026-11-02")} <= rates


def seed_roles(sandbox: Sandbox, n: int) -> list[str]:
    return [
        sandbox.dataverse.seed(
            "bookableresourcecategory", {"name": f"Role {i}", "msdyn_resourcecategorynumber": f"R{i:03d}"}
        )
        for i in range(n)
    ]


async def test_a_dataverse_row_deleted_after_the_first_page_costs_no_other_row(sandbox: Sandbox) -> None:
    """Found by review: the simulator paged by offset, so a role deleted from page one made it skip a
    role that real Dataverse, paging after the last id read, returns."""
    assert sandbox.runtime is not None
    engine = sandbox.runtime.engine
    ids = seed_roles(sandbox, 6)
    table_map = CATALOG.by_name("resource-roles")

    async def delete_first(fed: list[ChangeEvent]) -> None:
        assert await engine.dataverse.delete("bookableresourcecategories", {"bookableresourcecategoryid": fed[0].key})

    fed = feed_watch(sandbox, table_map, delete_first)
    run = await initial_sync(sandbox.runtime, table_map, page_size=2, prefetch=False)
    await sandbox.wait_quiet()

    assert run.status == "completed"
    assert sorted(event.key for event in fed) == sorted(ids)
    gone = str(field(fed[0], "msdyn_resourcecategorynumber"))
    assert fed[0].key not in sandbox.dataverse.data["bookableresourcecategory"]
    in_finance = {str(row["RoleId"]) for row in sandbox.finance.rows("ResourceCategoriesShared")}
    assert {f"R{i:03d}" for i in range(6)} - {gone} <= in_finance


async def test_the_dataverse_simulator_pages_with_a_cookie_naming_the_last_id(sandbox: Sandbox) -> None:
    """The nextLink's $skiptoken is shaped like Dataverse's: a cookie with the page number and, inside
    it, the primary id of the first and last row of the page, braced and in capitals."""
    assert sandbox.runtime is not None
    seed_roles(sandbox, 5)
    pages = [page async for page in sandbox.runtime.engine.dataverse.pages("bookableresourcecategories", page_size=2)]
    assert [len(page.rows) for page in pages] == [2, 2, 1]
    first = pages[0]
    assert first.next_link is not None
    token = parse_qs(first.next_link.split("?", 1)[1])["$skiptoken"][0]
    match = re.fullmatch(r'<cookie pagenumber="2" pagingcookie="([^"]+)" istracking="False" />', token)
    assert match is not None, token
    cookie = unquote(match.group(1))
    last, first_id = (first.rows[-1]["bookableresourcecategoryid"], first.rows[0]["bookableresourcecategoryid"])
    assert cookie == (
        f'<cookie page="1"><bookableresourcecategoryid last="{{{last.upper()}}}" first="{{{first_id.upper()}}}" />'
        "</cookie>"
    )
