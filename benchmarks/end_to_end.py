"""End-to-end throughput through the local path: plug-in messages → router → flow → Finance.

10,000 msdyn_actual Create messages, as the Dataverse simulator's step would send them, go onto the
topic; both simulators answer every call after a fixed latency. Measured: records per second until
every record is staged in Finance, and HTTP calls per synced record (lookups are cached per process,
so steady state is about one write per record).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from decimal import Decimal

from sandbox.bus import LocalMessage
from sandbox.dataverse.server import LookupValue, WriteEffect
from sandbox.dataverse.steps import Step, remote_execution_context
from sandbox.environment import Sandbox, SandboxOptions
from sandbox.scenario import CATEGORY_ID, USD_ID, USMF_ID, seed_reference_data

PROJECT_ID = "c0a1e000-0000-4000-8000-00000000be01"


@dataclass
class EndToEndResult:
    records: int
    seconds: float
    calls: int
    latency_ms: float
    sessions: int

    @property
    def per_second(self) -> float:
        return self.records / self.seconds

    @property
    def calls_per_record(self) -> float:
        return self.calls / self.records


async def measure(records: int = 10_000, latency_ms: float = 20.0, sessions: int = 32) -> EndToEndResult:
    sandbox = Sandbox(SandboxOptions(max_concurrent_sessions=sessions))
    await sandbox.start()
    try:
        await seed_reference_data(sandbox)
        dv = sandbox.dataverse
        dv.seed(
            "msdyn_project",
            {
                "msdyn_projectid": PROJECT_ID,
                "msdyn_projectnumber": "PRJ-BENCH",
                "msdyn_subject": "Bench",
                "msdyn_OwningCompany@odata.bind": f"/cdm_companies({USMF_ID})",
            },
        )
        sandbox.finance.seed("ProjectsV2", {"dataAreaId": "usmf", "ProjectId": "PRJ-BENCH"})
        table = dv.schema["msdyn_actual"]
        step = Step("bench", "msdyn_actual", "Create", None, False, True, "dataverse-changes", "bench-step")
        messages = []
        for n in range(records):
            record_id = f"be000000-0000-4000-8000-{n:012d}"
            row = {
                "msdyn_actualid": record_id,
                "msdyn_actualimportid": f"be000000-0000-4000-8000-{n:012d}",
                "msdyn_transactionclassification": 192350000,
                "msdyn_transactiontypecode": 192350000,
                "msdyn_billingtype": 192350001,
                "msdyn_quantity": Decimal("1.5"),
                "msdyn_price": Decimal("100.00"),
                "msdyn_amount": Decimal("150.00"),
                "msdyn_project": LookupValue("msdyn_project", PROJECT_ID),
                "msdyn_owningcompany": LookupValue("cdm_company", USMF_ID),
                "transactioncurrencyid": LookupValue("transactioncurrency", USD_ID),
                "msdyn_transactioncategory": LookupValue("msdyn_transactioncategory", CATEGORY_ID),
                "versionnumber": n + 1,
            }
            effect = WriteEffect(
                table, "Create", record_id, None, row, set(row), "5a0d0a55-0000-4000-8000-00000000b002"
            )
            body, properties = remote_execution_context(dv, step, effect)
            assert body is not None
            messages.append(LocalMessage(body, "application/json", properties, message_id=record_id))
        dv.set_faults(latency_ms=latency_ms)
        sandbox.finance.set_faults(latency_ms=latency_ms)
        dv.requests.clear()
        sandbox.finance.requests.clear()
        started = time.perf_counter()
        for message in messages:
            await sandbox.bus.send("dataverse-changes", message)
        await sandbox.wait_quiet(600)
        seconds = time.perf_counter() - started
        staged = len(sandbox.finance.rows("ProjActualsImports"))
        if staged != records:
            raise RuntimeError(f"only {staged} of {records} actuals reached Finance")
        calls = len(dv.requests) + len(sandbox.finance.requests)
        return EndToEndResult(records, seconds, calls, latency_ms, sessions)
    finally:
        await sandbox.stop()


def run(records: int = 10_000, latency_ms: float = 20.0, sessions: int = 32) -> EndToEndResult:
    return asyncio.run(measure(records, latency_ms, sessions))
