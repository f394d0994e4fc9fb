"""Both simulators in a process of their own, for benchmarks that measure the functions alone.

In one process the simulators' request handling, validation and logging share the CPU with the flows,
so a throughput figure says as much about the simulators as about the code under test. Here the
parent starts this module as a child, reads the two URLs it prints, and asks it over its stdin for the
figures that only the simulators know (requests received, rows held, the child's own CPU).

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
from typing import Any

from sandbox.environment import Sandbox, SandboxOptions
from sandbox.scenario import seed_reference_data

PROJECT_ID = "c0a1e000-0000-4000-8000-00000000be01"


async def _seed_actuals_bench(sandbox: Sandbox) -> None:
    """The reference data and the one project every benchmark actual books on."""
    from sandbox.scenario import USMF_ID

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
                "rows": {name: len(sandbox.finance.rows(name)) for name in ask.get("stats", [])},
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

    def __init__(self, latency_ms: float) -> None:
        self.latency_ms = latency_ms
        self._process: subprocess.Popen[str] | None = None
        self.urls: tuple[str, str] = ("", "")

    def __enter__(self) -> SimulatorProcess:
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        self._process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.simulator_process", json.dumps({"latency_ms": self.latency_ms})],
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
