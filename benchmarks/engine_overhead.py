"""Engine overhead per event with no network: decode + route + map + serialize the target request.

The message is a realistic asynchronous post-operation Create of an msdyn_actual (35 columns, a post
image, the Claims properties). Lookups are answered from a warm cache, as they are in steady state.
"""

from __future__ import annotations

import asyncio
import gc
import resource
import time
from dataclasses import dataclass
from pathlib import Path

from functions import actuals
from functions.catalog import CATALOG
from shared.cache import TtlCache
from shared.decoding.dataverse import IncomingMessage, decode_dataverse
from shared.events import ChangeEvent
from shared.jsonio import dumps
from shared.pipeline import Engine, build_target_rows, source_key
from shared.settings import AuthMode, BusBackend, Settings, StateBackend
from tests.unit.fakes import FakeDataverse, FakeFinance, MemoryState

MESSAGE = Path(__file__).with_name("msdyn_actual_create.json")
CLAIMS = "http://schemas.microsoft.com/xrm/2011/Claims/"


@dataclass
class OverheadResult:
    events: int
    seconds: float
    p50_us: float
    p99_us: float
    peak_rss_mb: float

    @property
    def per_second(self) -> float:
        return self.events / self.seconds


def _engine() -> Engine:
    settings = Settings.model_validate(
        {
            "dataverse_url": "http://127.0.0.1:1",
            "finance_url": "http://127.0.0.1:2",
            "auth_mode": AuthMode.NONE,
            "state_backend": StateBackend.SQLITE,
            "bus_backend": BusBackend.LOCAL,
            "companies": ["USMF"],
        }
    )
    dataverse = FakeDataverse()
    dataverse.add("cdm_companies", "c0a1e000-0000-4000-8000-000000000001", {"cdm_companycode": "USMF"})
    dataverse.add(
        "msdyn_projects",
        "c0a1e000-0000-4000-8000-000000000f01",
        {"msdyn_projectnumber": "PRJ-1001", "_msdyn_owningcompany_value": "c0a1e000-0000-4000-8000-000000000001"},
    )
    dataverse.add("msdyn_projecttasks", "c0a1e000-0000-4000-8000-000000000f11", {"msdyn_activitynumber": "A-100"})
    dataverse.add("transactioncurrencies", "c0a1e000-0000-4000-8000-0000000000d1", {"isocurrencycode": "USD"})
    dataverse.add(
        "msdyn_transactioncategories",
        "c0a1e000-0000-4000-8000-0000000000c1",
        {"msdyn_transactioncategorynumber": "TCN-0000001000"},
    )
    finance = FakeFinance(key_fields={"ProjectsV2": ("dataAreaId", "ProjectId")})
    finance.add("ProjectsV2", {"dataAreaId": "usmf", "ProjectId": "PRJ-1001"})
    return Engine(settings, dataverse, finance, MemoryState(), TtlCache(3600))


async def _one(engine: Engine, message: IncomingMessage) -> int:
    event = decode_dataverse(message)
    size = 0
    for table_map in CATALOG.for_dataverse_entity(event.entity):
        wire = event.for_flow(table_map.name, source_key(table_map, event)).to_json()
        received = ChangeEvent.from_json(wire)
        for row in await build_target_rows(engine, actuals.MAP, received, dict(received.record or {})):
            size += len(dumps(row.payload))
    return size


async def measure(events: int = 20_000) -> OverheadResult:
    body = MESSAGE.read_bytes()
    message = IncomingMessage(
        body=body,
        content_type="application/json",
        properties={
            CLAIMS + "Organization": "contoso.crm.dynamics.com",
            CLAIMS + "User": "5a0d0a55-0000-4000-8000-00000000b002",
            CLAIMS + "InitiatingUser": "5a0d0a55-0000-4000-8000-00000000b002",
            CLAIMS + "EntityLogicalName": "msdyn_actual",
            CLAIMS + "RequestName": "Create",
        },
        message_id="m-1",
    )
    engine = _engine()
    for _ in range(200):  # warm the lookup cache and the interpreter
        assert await _one(engine, message) > 0
    gc.collect()
    samples: list[int] = []
    started = time.perf_counter()
    for _ in range(events):
        t0 = time.perf_counter_ns()
        await _one(engine, message)
        samples.append(time.perf_counter_ns() - t0)
    seconds = time.perf_counter() - started
    samples.sort()
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return OverheadResult(
        events=events,
        seconds=seconds,
        p50_us=samples[len(samples) // 2] / 1000,
        p99_us=samples[int(len(samples) * 0.99)] / 1000,
        peak_rss_mb=peak_kb / 1024,
    )


def run(events: int = 20_000) -> OverheadResult:
    return asyncio.run(measure(events))
