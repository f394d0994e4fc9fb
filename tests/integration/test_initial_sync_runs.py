"""Which run an initial-sync request goes on with, what a resumed run reads, and how a background run
that fails ends: against the sandbox, asserting what Finance and Dataverse received."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_plus

import httpx
import pytest

from functions.catalog import CATALOG
from sandbox.demo_documents import expense_line
from sandbox.environment import Sandbox, demo_options
from shared.operations.initial_sync import initial_sync, latest_unfinished, run_to_resume
from tests.integration.conftest import started


def expense_reads(sandbox: Sandbox, since: int = 0) -> list[str]:
    return [
        unquote_plus(r.query)
        for r in sandbox.finance.requests[since:]
        if r.method == "GET" and r.path.endswith("/ProjExpensesExport")
    ]


async def stopped_usmf_run(sandbox: Sandbox) -> Any:
    """Expense lines in two companies, and a run for USMF alone stopped after its first page."""
    assert sandbox.runtime is not None
    for n in range(3):
        await sandbox.finance.post_expense_report("usmf", f"EXP-07{n}", [expense_line(f"Taxi {n}", "42.10")])
        await sandbox.finance.post_expense_report("uspi", f"EXP-08{n}", [expense_line(f"Hotel {n}", "120.00")])
    await sandbox.wait_quiet()
    sandbox.finance.page_size = 1
    with pytest.raises(InterruptedError):
        await initial_sync(sandbox.runtime, CATALOG.by_name("expenses"), companies=["USMF"], stop_after_pages=1)
    stopped = await latest_unfinished(sandbox.runtime, "expenses")
    assert stopped is not None and stopped.options["companies"] == ["USMF"] and stopped.cursor
    return stopped


async def test_a_request_for_another_company_is_refused_not_taken_for_the_unfinished_run(sandbox: Sandbox) -> None:
    """Found by review: asked for USPI, the admin API finished the stopped USMF run and said completed,
    and Finance was never asked for a USPI row."""
    assert sandbox.host is not None and sandbox.runtime is not None
    stopped = await stopped_usmf_run(sandbox)
    before = len(sandbox.finance.requests)
    keyed = {"x-functions-key": sandbox.host.function_key}
    async with httpx.AsyncClient(base_url=sandbox.host.http_url, headers=keyed) as client:
        refused = await client.post("/api/admin/initial-sync/expenses", json={"companies": ["USPI"]})
        assert refused.status_code == 400
        message = refused.json()["error"]
        assert stopped.id in message and "--company USMF" in message and "--restart" in message
        await sandbox.wait_quiet()
        assert expense_reads(sandbox, before) == []  # nothing read, and the stopped run left as it was
        kept = await sandbox.runtime.engine.state.get_run(stopped.id)
        assert kept is not None and kept.status == "failed" and kept.cursor == stopped.cursor

        started = await client.post("/api/admin/initial-sync/expenses", json={"companies": ["USPI"], "restart": True})
        assert started.status_code == 202 and started.json()["id"] != stopped.id
        await sandbox.wait_quiet()
    done = await sandbox.runtime.engine.state.get_run(started.json()["id"])
    assert done is not None and done.status == "completed" and done.options["companies"] == ["USPI"]
    reads = expense_reads(sandbox, before)
    assert reads and all("ReferenceDataAreaId eq 'uspi'" in read for read in reads)
    assert done.counts["fed"] == 3
    # The newer run is the flow's latest: the USMF run stopped before it is not resumed by a later request.
    assert await run_to_resume(sandbox.runtime, CATALOG.by_name("expenses"), companies=None, since=None) is None


async def test_the_same_options_resume_the_unfinished_run_from_its_cursor(sandbox: Sandbox) -> None:
    assert sandbox.runtime is not None
    stopped = await stopped_usmf_run(sandbox)
    table_map = CATALOG.by_name("expenses")
    resumed = await run_to_resume(sandbox.runtime, table_map, companies=["usmf"], since=None)
    assert resumed is not None and resumed.id == stopped.id
    before = len(sandbox.finance.requests)
    done = await initial_sync(sandbox.runtime, table_map, resume=resumed)
    assert done.status == "completed" and done.counts["fed"] == 3
    reads = expense_reads(sandbox, before)
    assert reads[0].endswith("$skip=1") and all("ReferenceDataAreaId eq 'usmf'" in read for read in reads)
    assert await run_to_resume(sandbox.runtime, table_map, companies=["USPI"], since=None) is None


async def test_a_run_resumed_after_the_map_gained_a_column_reads_it_for_every_row() -> None:
    """Found by review: the stored nextLink kept the old $select, the rows after it came without the
    extension's KnownAs and, taken whole as an initial-sync row is, cnt_knownas was written empty."""
    async with started(demo_options()) as sandbox:
        assert sandbox.runtime is not None
        for n in range(6):
            worker = {"PersonnelNumber": f"W{n:03d}", "FirstName": "A", "LastName": f"L{n}", "KnownAs": f"Nick{n}"}
            sandbox.finance.seed("Workers", {**worker, "Name": f"A L{n}"})
        sandbox.finance.page_size = 2
        # Stopped under the map as it was before the extension was deployed: no KnownAs in $select.
        with pytest.raises(InterruptedError):
            await initial_sync(sandbox.runtime, CATALOG.by_name("workers"), stop_after_pages=1)
        extended = sandbox.runtime.maps().by_name("workers")
        assert "KnownAs" in extended.source_columns
        stopped = await run_to_resume(sandbox.runtime, extended, companies=None, since=None)
        assert stopped is not None and "KnownAs" not in unquote_plus(stopped.cursor or "")
        before = len(sandbox.finance.requests)
        done = await initial_sync(sandbox.runtime, extended, resume=stopped)
        await sandbox.wait_quiet()
        assert done.status == "completed" and done.id == stopped.id
        assert any("KnownAs" in error and "first page" in error for error in done.errors)
        reads = [unquote_plus(r.query) for r in sandbox.finance.requests[before:] if r.path.endswith("/Workers")]
        assert "$skip" not in reads[0] and all("KnownAs" in read for read in reads)
        written = {
            row["cdm_workernumber"]: row.get("cnt_knownas")
            for row in sandbox.dataverse.rows("cdm_worker")
            if str(row.get("cdm_workernumber", "")).startswith("W")
        }
        assert written == {f"W{n:03d}": f"Nick{n}" for n in range(6)}
