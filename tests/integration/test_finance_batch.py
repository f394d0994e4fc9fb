"""Finance `$batch` writes under a backlog, through the real flows and clients (issue 17, Finance side).

What Finance received is read from its request log, each `$batch` opened into its changesets."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

import pytest

from functions.catalog import CATALOG
from sandbox.environment import Sandbox, SandboxOptions
from sandbox.odata import parse_batch
from sandbox.scenario import actual_body, import_id
from shared.clients.finance import FinanceClient
from shared.errors import PermanentServiceError, TransientServiceError
from shared.events import session_of, use_session_buckets
from shared.operations.pause import pause, resume
from tests.integration.conftest import parked, send, until
from tests.integration.test_flows import PROJECT, create_project, project_body

STAGING = "ProjActualsImports"


@dataclass(frozen=True)
class Received:
    """One write Finance received: alone, or as a changeset of the `$batch` request `batch` (its index)."""

    method: str
    path: str
    body: dict[str, object]
    batch: int | None
    status: int


def finance_received(sandbox: Sandbox) -> list[Received]:
    writes: list[Received] = []
    for index, request in enumerate(sandbox.finance.requests):
        if request.path == "/data/$batch":
            for part in parse_batch(request.body.encode(), request.headers["content-type"]):
                path = "/data/" + part.url.split("/data/", 1)[-1]
                body = json.loads(part.body) if part.body else {}
                writes.append(Received(part.method, path, body, index, request.status))
        elif request.method in ("POST", "PATCH", "DELETE"):
            writes.append(
                Received(request.method, request.path, json.loads(request.body or "{}"), None, request.status)
            )
    return writes


def batches(sandbox: Sandbox) -> list[int]:
    """How many changesets each `$batch` Finance received held."""
    return [
        request.body.count("Content-Type: application/http")
        for request in sandbox.finance.requests
        if request.path == "/data/$batch"
    ]


async def queued(sandbox: Sandbox, queue: str, messages: int) -> None:
    """Until the routers have put every change on the paused flow's queue."""
    await until(lambda: len(sandbox.bus.entity(queue).ready) >= messages, 60)


SESSIONS = 32


@pytest.fixture
def options() -> SandboxOptions:
    # Enough sessions at once, and a Finance slow enough, for rows to wait for it together.
    return SandboxOptions(max_concurrent_sessions=SESSIONS, finance_faults={"latency_ms": 40})


def _first_row_of_the_last_bucket(rows: int) -> int:
    """The row that goes in the first batches for sure: the first of its session's bucket, so in the
    first round of writes, and of the bucket taken last, so not the round's first row, which goes
    alone while the others gather behind it."""
    firsts: dict[str, int] = {}
    before = use_session_buckets(SESSIONS)  # the buckets of the sandbox's host, not host.json's
    try:
        for n in range(rows):
            firsts.setdefault(session_of(f"c0a1e000-0000-4000-8000-00000b{n:06d}"), n)
    finally:
        use_session_buckets(before)
    return max(firsts.values())


# Five rows a session's bucket on average: a backlog, not a tail of buckets holding one row each.
BACKLOG = 161
BAD = _first_row_of_the_last_bucket(BACKLOG)


async def test_a_backlog_of_actuals_lands_in_batches_and_the_one_bad_row_is_parked_with_its_infolog(
    sandbox: Sandbox,
) -> None:
    assert sandbox.runtime is not None and sandbox.runtime.switch is not None
    await create_project(sandbox)
    actuals = CATALOG.by_name("actuals")
    await pause(sandbox.runtime.switch, actuals)  # a catch-up: the changes wait on the flow's queue
    async with sandbox.person_dataverse() as dv:
        for n in range(BACKLOG):
            body = actual_body(
                f"c0a1e000-0000-4000-8000-00000b{n:06d}",
                f"ACT-B{n}",
                classification=192350000,
                quantity="1",
                price="10",
            )
            body["msdyn_project@odata.bind"] = f"/msdyn_projects({PROJECT})"
            if n == BAD:
                # Finance has no line property for NotAvailable: it refuses this row with its Infolog.
                body["msdyn_billingtype"] = 192350003
            await send(dv, "POST", "msdyn_actuals", body)
    await queued(sandbox, "flow-actuals", BACKLOG)
    sandbox.finance.requests.clear()
    await resume(sandbox.runtime.switch, actuals)
    await sandbox.wait_quiet(120)

    staged = {row["ActualsImportId"] for row in sandbox.finance.rows(STAGING)}
    assert staged == {import_id(f"ACT-B{n}") for n in range(BACKLOG) if n != BAD}
    sizes = batches(sandbox)
    assert sizes and max(sizes) > 1, "no $batch of several rows: the rows went one by one"
    received = finance_received(sandbox)
    refused = [w for w in received if w.body.get("ActualsImportId") == import_id(f"ACT-B{BAD}")]
    assert refused and refused[0].batch is not None, "the bad row never went in a batch"
    # Its batch was answered, and the other rows in it landed.
    neighbours = [w for w in received if w.batch == refused[0].batch and w is not refused[0]]
    assert neighbours and all(w.body["ActualsImportId"] in staged for w in neighbours)
    # Every actual went to Finance once: no redelivery, nothing sent twice because its batch held a bad row.
    posted = [str(w.body["ActualsImportId"]) for w in received if w.method == "POST" and w.path == f"/data/{STAGING}"]
    assert sorted(posted) == sorted([*staged, import_id(f"ACT-B{BAD}")])
    # Fewer requests than rows: the point of batching. Each session drains its bucket row after row,
    # so rows meet in a request less often than when every row had a session of its own: 80-90
    # requests for these 161 rows.
    assert len(sandbox.finance.requests) < BACKLOG * 2 / 3

    problems = await parked(sandbox)
    assert len(problems) == 1
    flow, reason, error = problems[0]
    assert (flow, reason) == ("actuals", "rejected-by-target")
    assert "Line property NotAvailable doesn't exist" in error and "validateWrite failed" in error


async def test_order_per_record_holds_under_finance_batches(sandbox: Sandbox) -> None:
    """A burst: forty projects created while the flow is paused, one of them also renamed twice. Each
    record's writes reach Finance in its order (create, then the renames), the later rename wins, and a
    record is never twice in one batch."""
    assert sandbox.runtime is not None and sandbox.runtime.switch is not None
    projects = CATALOG.by_name("projects-v2")
    await pause(sandbox.runtime.switch, projects)
    async with sandbox.person_dataverse() as dv:
        await send(dv, "POST", "msdyn_projects", project_body("PRJ-ORDER"))
        for n in range(40):
            body = project_body(f"PRJ-B{n:03d}", msdyn_subject=f"Burst {n}")
            body["msdyn_projectid"] = f"c0a1e000-0000-4000-8000-00000c{n:06d}"
            await send(dv, "POST", "msdyn_projects", body)
        await send(dv, "PATCH", f"msdyn_projects({PROJECT})", {"msdyn_subject": "Renamed once"})
        await send(dv, "PATCH", f"msdyn_projects({PROJECT})", {"msdyn_subject": "Renamed twice"})
    await queued(sandbox, "flow-projects-v2", 43)
    await resume(sandbox.runtime.switch, projects)
    await sandbox.wait_quiet(120)

    assert len(sandbox.finance.rows("ProjectsV2")) == 41
    row = sandbox.finance.get("ProjectsV2", dataAreaId="usmf", ProjectId="PRJ-ORDER")
    assert row is not None and row["ProjectName"] == "Renamed twice"
    received = finance_received(sandbox)
    assert max(batches(sandbox)) > 1, "the burst never waited together"
    ordered = [
        (w.method, w.body.get("ProjectName"))
        for w in received
        if w.body.get("ProjectId") == "PRJ-ORDER" or w.path.endswith("ProjectId='PRJ-ORDER')")
    ]
    # The create first, the later rename last; the flow may skip the first rename (it re-reads the project,
    # which already holds the second), never send it after the second.
    assert ordered[0][0] == "POST" and ordered[-1][1] == "Renamed twice"
    versions = ["Warehouse automation", "Renamed once", "Renamed twice"]
    steps = [versions.index(str(name)) for _, name in ordered]
    assert steps == sorted(steps)
    per_batch: dict[int, list[str]] = {}
    for w in received:
        if w.batch is not None:
            per_batch.setdefault(w.batch, []).append(w.path if w.method == "PATCH" else str(w.body["ProjectId"]))
    assert all(len(paths) == len(set(paths)) for paths in per_batch.values())


async def test_each_records_writes_reach_finance_in_order_when_all_records_write_at_once(sandbox: Sandbox) -> None:
    """Forty records updated five times each, every record's updates one after the other (as its session
    delivers them) and all records at once: Finance receives each record's versions in order."""
    assert sandbox.runtime is not None
    finance = sandbox.runtime.engine.finance
    for n in range(40):
        sandbox.finance.seed("ProjectsV2", {"dataAreaId": "usmf", "ProjectId": f"O-{n:02d}"})

    async def record(n: int) -> None:
        for version in range(1, 6):
            await finance.update(
                "ProjectsV2", {"dataAreaId": "usmf", "ProjectId": f"O-{n:02d}"}, {"ProjectName": f"v{version}"}
            )

    await asyncio.gather(*(record(n) for n in range(40)))

    received: dict[str, list[object]] = {}
    for w in finance_received(sandbox):
        if w.method == "PATCH":
            received.setdefault(w.path.split("'")[3], []).append(w.body["ProjectName"])
    assert max(batches(sandbox)) > 1, "the writes never waited together"
    assert received == {f"O-{n:02d}": [f"v{v}" for v in range(1, 6)] for n in range(40)}
    assert {r["ProjectId"]: r["ProjectName"] for r in sandbox.finance.rows("ProjectsV2")} == {
        f"O-{n:02d}": "v5" for n in range(40)
    }


async def test_a_live_single_change_is_a_plain_request(sandbox: Sandbox) -> None:
    await create_project(sandbox)
    async with sandbox.person_dataverse() as dv:
        await send(dv, "PATCH", f"msdyn_projects({PROJECT})", {"msdyn_subject": "Live rename"})
    await sandbox.wait_quiet()
    writes = [(w.method, w.path, w.batch) for w in finance_received(sandbox) if "ProjectsV2" in w.path]
    assert writes == [
        ("POST", "/data/ProjectsV2", None),
        ("PATCH", "/data/ProjectsV2(dataAreaId='usmf',ProjectId='PRJ-1001')", None),
    ]
    assert [r for r in sandbox.finance.requests if r.path == "/data/$batch" and "ProjectsV2" in r.body] == []


def staging_row(label: str, **extra: object) -> dict[str, object]:
    return {"dataAreaId": "usmf", "ActualsImportId": import_id(label), "ProjectId": "PRJ-C", **extra}


async def concurrent_creates(client: FinanceClient, labels: list[str]) -> list[object]:
    return await asyncio.gather(
        *(
            client.create(
                STAGING,
                staging_row(label, BillingType="NotAvailable" if label == "BAD" else "Chargeable"),
                {"dataAreaId": "usmf", "ActualsImportId": import_id(label)},
            )
            for label in labels
        ),
        return_exceptions=True,
    )


async def test_rows_a_finance_that_stops_at_the_first_failure_left_unanswered_are_sent_again(
    sandbox: Sandbox,
) -> None:
    """If Finance ignores continue-on-error (undocumented), the changesets after a failed one are not run
    and get no answer: the client sends those rows again instead of failing them."""
    assert sandbox.runtime is not None
    finance = sandbox.runtime.engine.finance
    assert isinstance(finance, FinanceClient) and finance.batches is not None
    sandbox.finance.seed("ProjectsV2", {"dataAreaId": "usmf", "ProjectId": "PRJ-C"})
    sandbox.finance.honours_continue_on_error = False
    labels = [f"C{n}" for n in range(30)]
    labels.insert(12, "BAD")
    outcomes = await concurrent_creates(finance, labels)

    errors = {label: o for label, o in zip(labels, outcomes, strict=True) if isinstance(o, BaseException)}
    assert list(errors) == ["BAD"]
    assert isinstance(errors["BAD"], PermanentServiceError)
    assert "Line property NotAvailable doesn't exist" in str(errors["BAD"].service_message)
    assert len(sandbox.finance.rows(STAGING)) == 30
    assert finance.batches.figures.unanswered_rows > 0, "no batch stopped early: nothing was under test"


async def test_a_batch_finance_refuses_whole_is_halved_until_it_fits(sandbox: Sandbox) -> None:
    assert sandbox.runtime is not None
    finance = sandbox.runtime.engine.finance
    assert isinstance(finance, FinanceClient) and finance.batches is not None
    sandbox.finance.seed("ProjectsV2", {"dataAreaId": "usmf", "ProjectId": "PRJ-C"})
    sandbox.finance.max_batch_operations = 4
    outcomes = await concurrent_creates(finance, [f"H{n}" for n in range(40)])

    assert [o for o in outcomes if isinstance(o, BaseException)] == []
    assert len(sandbox.finance.rows(STAGING)) == 40
    sent = [r for r in sandbox.finance.requests if r.path == "/data/$batch"]
    assert any(r.status == 400 for r in sent), "no batch was over the limit: nothing was under test"
    assert finance.batches.figures.splits > 0
    answered = [r.body.count("Content-Type: application/http") for r in sent if r.status == 200]
    assert answered and max(answered) <= 4


@pytest.mark.parametrize(
    "options", [SandboxOptions(max_concurrent_sessions=32, finance_faults={"latency_ms": 40}, http_max_retries=1)]
)
async def test_an_outage_of_the_whole_batch_goes_to_every_row_in_it(sandbox: Sandbox) -> None:
    """Finance answers 503 to everything: every row of a batch gets the transient error, for its own flow to
    retry later; none is taken for a bad row."""
    assert sandbox.runtime is not None
    finance = sandbox.runtime.engine.finance
    assert isinstance(finance, FinanceClient) and finance.batches is not None
    sandbox.finance.set_faults(error_share=1.0)
    outcomes = await concurrent_creates(finance, [f"T{n}" for n in range(30)])

    assert all(isinstance(o, TransientServiceError) for o in outcomes)
    assert finance.batches.figures.batch_requests > 0 and finance.batches.figures.splits == 0
    assert any(r.path == "/data/$batch" and r.status == 503 for r in sandbox.finance.requests)
