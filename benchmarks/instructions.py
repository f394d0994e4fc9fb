"""Engine overhead counted in machine instructions, under valgrind's callgrind.

The timed ratios in engine_overhead swing by half from one run to the next on a shared machine, which
hides any change of a few percent. An instruction count does not depend on the neighbours: the same
code on the same input executes the same instructions, run after run, so a change is seen for what it
is. It is not the cost itself: orjson's tight loops retire more instructions per cycle than the
interpreter does, so the timed ratio is larger than the counted one (both are recorded).

Each workload runs in a child process under callgrind, once with no events and once with `EVENTS`:
the difference, divided by `EVENTS`, is one event's instructions, start-up and warm-up cancelled out.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

EVENTS = 1000
WORKLOADS = ("engine", "floor", "narrow", "wide")
_COLLECTED = re.compile(rb"Collected : ([\d,]+)")


@dataclass
class InstructionCounts:
    per_event: dict[str, int]

    @property
    def to_floor(self) -> float:
        return self.per_event["engine"] / self.per_event["floor"]

    @property
    def wide_to_narrow(self) -> float:
        return self.per_event["wide"] / self.per_event["narrow"]


def available() -> bool:
    return shutil.which("valgrind") is not None


def run(events: int = EVENTS) -> InstructionCounts:
    """Every workload's instructions per event, the children two at a time (valgrind uses one core)."""
    jobs = [("engine", 0), *((workload, events) for workload in WORKLOADS)]
    with ThreadPoolExecutor(max_workers=max(1, min(len(jobs), os.cpu_count() or 1))) as pool:
        counts = dict(zip(jobs, pool.map(lambda job: _count(*job), jobs), strict=True))
    baseline = counts[("engine", 0)]
    return InstructionCounts({w: round((counts[(w, events)] - baseline) / events) for w in WORKLOADS})


def _count(workload: str, events: int) -> int:
    with tempfile.TemporaryDirectory() as scratch:
        out = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={Path(scratch) / 'callgrind.out'}",
                sys.executable,
                "-m",
                "benchmarks.instructions",
                workload,
                str(events),
            ],
            capture_output=True,
            check=True,
            # String hashes differ per process otherwise, and with them every dict's probing.
            env={**os.environ, "PYTHONHASHSEED": "0"},
            cwd=Path(__file__).resolve().parent.parent,
        )
    found = _COLLECTED.search(out.stderr)
    if found is None:
        raise RuntimeError(f"callgrind printed no count: {out.stderr[-2000:].decode(errors='replace')}")
    return int(found.group(1).replace(b",", b""))


async def _workloads() -> dict[str, Callable[[], Awaitable[object]]]:
    """The engine_overhead workloads, each warmed as there, so every child executes the same start."""
    from benchmarks import engine_overhead as overhead

    message = overhead.actual_message()
    engine = overhead._engine()
    image = overhead.registered_image("bookableresourcecategory")
    narrow = overhead.resource_category_message(10, image)
    wide = overhead.resource_category_message(200, image)
    floor = await overhead._floor(engine, message)
    workloads: dict[str, Callable[[], Awaitable[object]]] = {
        "engine": lambda: overhead._one(engine, message),
        "floor": floor,
        "narrow": lambda: overhead._one(engine, narrow),
        "wide": lambda: overhead._one(engine, wide),
    }
    for _ in range(200):
        for once in workloads.values():
            await once()
    return workloads


async def _child(workload: str, events: int) -> None:
    once = (await _workloads())[workload]
    for _ in range(events):
        await once()


if __name__ == "__main__":
    asyncio.run(_child(sys.argv[1], int(sys.argv[2])))
