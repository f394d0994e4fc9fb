"""Reconcile throughput and memory: resource-roles with N rows in Dataverse and N in Finance.

The simulators hold both tables in the benchmark's own process; reconcile runs in a child process
of its own against them over HTTP, so its peak memory is its own: the interpreter and imports,
one page of each side, the spill's SQLite cache. Measured at two sizes, the peak must not grow with
the row count. One row in a thousand differs, one in ten thousand is missing in Finance.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from sandbox.environment import Sandbox


@dataclass
class ReconcileResult:
    rows: int
    seconds: float
    peak_rss_mb: float
    growth_mb: float
    different: int
    missing: int

    @property
    def per_second(self) -> float:
        return self.rows / self.seconds


def _rss_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


async def _child(settings_json: str) -> None:
    """In the child: reconcile resource-roles against the parent's simulators, print the figures."""
    from functions.catalog import CATALOG
    from shared.operations.reconcile import reconcile
    from shared.runtime import build_runtime
    from shared.settings import Settings
    from tests.unit.fakes import RecordingSender

    settings = Settings.model_validate_json(settings_json)
    runtime = build_runtime(settings, sender=RecordingSender())
    before = _rss_kb("VmRSS")
    started = time.perf_counter()
    report = await reconcile(runtime, CATALOG.by_name("resource-roles"))
    seconds = time.perf_counter() - started
    await runtime.close()
    totals = report.totals
    figures = {
        "seconds": seconds,
        "peak_kb": _rss_kb("VmHWM"),
        "growth_kb": _rss_kb("VmHWM") - before,
        "different": totals["different"],
        "missing": totals["missing"],
        "source_rows": totals["source_rows"],
    }
    print(json.dumps(figures))


async def measure(rows: int) -> ReconcileResult:
    sandbox = Sandbox()
    await sandbox.start()
    try:
        assert sandbox.runtime is not None
        for n in range(rows):
            number = f"R{n:06d}"
            sandbox.dataverse.seed(
                "bookableresourcecategory", {"name": f"Role {n}", "msdyn_resourcecategorynumber": number}
            )
            if n % 10_000 == 9_999:
                continue  # missing in Finance
            description = f"Role {n}" if n % 1000 else f"Role {n} (renamed in Finance)"
            sandbox.finance.data["ResourceCategoriesShared"][(number.lower(),)] = {
                "RoleId": number,
                "Description": description,
                "IsCategoryDisabled": "False",
            }
        with tempfile.TemporaryDirectory(prefix="projops-bench-") as folder:
            settings_path = Path(folder) / "settings.json"
            settings = sandbox.runtime.settings.model_copy(update={"state_sqlite_path": str(Path(folder) / "s.db")})
            settings_path.write_text(settings.model_dump_json())
            child = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "benchmarks.reconcile_throughput",
                str(settings_path),
                stdout=asyncio.subprocess.PIPE,
            )
            out, _ = await child.communicate()
        if child.returncode != 0:
            raise RuntimeError(f"the reconcile child failed ({child.returncode})")
        figures = json.loads(out.decode().strip().splitlines()[-1])
        if figures["source_rows"] != rows:
            raise RuntimeError(f"reconcile read {figures['source_rows']} source rows, expected {rows}")
        return ReconcileResult(
            rows,
            figures["seconds"],
            figures["peak_kb"] / 1024,
            figures["growth_kb"] / 1024,
            figures["different"],
            figures["missing"],
        )
    finally:
        await sandbox.stop()


def run(rows: int) -> ReconcileResult:
    return asyncio.run(measure(rows))


if __name__ == "__main__":
    asyncio.run(_child(Path(sys.argv[1]).read_text()))
