"""Both simulators in a process of their own, for benchmarks that measure the functions alone.

In one process the simulators' request handling, validation and logging share the CPU with the flows,
so a throughput figure says as much about the simulators as about the code under test. Here the
parent starts this module as a child, reads the two URLs it prints, and asks it over its stdin for the
figures that only the simulators know (requests received, rows held, the child's own CPU).

Started with `actuals`, the child's Dataverse holds that many msdyn_actual rows (an initial sync's
source) before it serves.

Protocol, one JSON object a line: the child prints {"dataverse_url", "finance_url"} once it serves;
then for each line the parent writes ({"stats": [collections]} or {"clear": true}) it prints one answer.
End of stdin stops it.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sandbox.dataverse.server import LookupValue
from sandbox.environment import Sandbox, SandboxOptions
from sandbox.scenario import CATEGORY_ID, USD_ID, USMF_ID, seed_reference_data

PROJECT_ID = "c0a1e000-0000-4000-8000-00000000be01"


def actual_id(n: int) -> str:
    return f"be000000-0000-4000-8000-{n:012d}"


def actual_columns() -> dict[str, Any]:
    """A cost actual of 1.5 hours at 100.00 on the bench project, every bench actual's columns but its ids."""
    return {
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
    }


def seed_actuals(sandbox: Sandbox, count: int) -> None:
    """`count` bench actuals already in Dataverse (an initial sync's backlog), seeded without steps as
    rows that were there before the integration."""
    for n in range(count):
        record_id = actual_id(n)
        sandbox.dataverse.seed(
            "msdyn_actual", {"msdyn_actualid": record_id, "msdyn_actualimportid": record_id, **actual_columns()}
        )


async def _seed_actuals_bench(sandbox: Sandbox) -> None:
    """The reference data and the one project every benchmark actual books on."""
    await seed_reference_data(sandbox)
    sandbox.dataverse.seed(
        "msdyn_project",
        {
            "msdyn_projectid": PROJECT_ID,
            "msdyn_projectnumber": "PRJ-BENCH",
            "msdyn_subject": "Bench",
            "msdyn_OwningCompany@odata.bind": f"/cdm_companies({USMF_ID})",
        },
    )
    sandbox.finance.seed("ProjectsV2", {"dataAreaId": "usmf", "ProjectId": "PRJ-BENCH"})


async def _child(config: dict[str, Any]) -> None:
    sandbox = Sandbox(SandboxOptions())
    await sandbox.start_simulators()
    await _seed_actuals_bench(sandbox)
    seed_actuals(sandbox, int(config.get("actuals", 0)))
    latency = float(config.get("latency_ms", 0))
    sandbox.dataverse.set_faults(latency_ms=latency)
    sandbox.finance.set_faults(latency_ms=latency)
    sandbox.dataverse.requests.clear()
    sandbox.finance.requests.clear()
    print(json.dumps({"dataverse_url": sandbox.dataverse.url, "finance_url": sandbox.finance.url}), flush=True)
    try:
        while True:
            line = await asyncio.to_thread(sys.stdin.readline)
            if not line:
                return
            ask = json.loads(line)
            if ask.get("clear"):
                sandbox.dataverse.requests.clear()
                sandbox.finance.requests.clear()
            answer = {
                "dataverse_requests": sandbox.dataverse.requests.total,
                "finance_requests": sandbox.finance.requests.total,
                # Counted, not copied: a bench polls this while 100,000 rows land.
                "rows": {name: len(sandbox.finance.data[name]) for name in ask.get("stats", [])},
                "cpu_seconds": time.process_time(),
                "peak_rss_kb": _peak_rss_kb(),
            }
            print(json.dumps(answer), flush=True)
    finally:
        await sandbox.dataverse.stop()
        await sandbox.finance.stop()


def _peak_rss_kb() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


@dataclass
class SimulatorStats:
    dataverse_requests: int
    finance_requests: int
    rows: dict[str, int]
    cpu_seconds: float
    peak_rss_kb: int

    @property
    def requests(self) -> int:
        return self.dataverse_requests + self.finance_requests


class SimulatorProcess:
    """The parent's handle on the child: start, ask, stop."""

    def __init__(self, latency_ms: float, *, actuals: int = 0) -> None:
        self.latency_ms = latency_ms
        self.actuals = actuals  # msdyn_actual rows in Dataverse before the run
        self._process: subprocess.Popen[str] | None = None
        self.urls: tuple[str, str] = ("", "")

    def __enter__(self) -> SimulatorProcess:
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks.simulator_process",
                json.dumps({"latency_ms": self.latency_ms, "actuals": self.actuals}),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=root,
        )
        first = self._read()
        self.urls = (first["dataverse_url"], first["finance_url"])
        return self

    def _read(self) -> dict[str, Any]:
        assert self._process is not None and self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError(f"the simulator process ended (exit code {self._process.poll()})")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def ask(self, collections: list[str] | None = None, *, clear: bool = False) -> SimulatorStats:
        assert self._process is not None and self._process.stdin is not None
        self._process.stdin.write(json.dumps({"stats": collections or [], "clear": clear}) + "\n")
        self._process.stdin.flush()
        return SimulatorStats(**self._read())

    def __exit__(self, *exc: object) -> None:
        if self._process is None:
            return
        assert self._process.stdin is not None
        self._process.stdin.close()
        try:
            self._process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


if __name__ == "__main__":
    asyncio.run(_child(json.loads(sys.argv[1])))
