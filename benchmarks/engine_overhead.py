"""Engine overhead per event with no network: decode + route + map + serialize the target request.

The message is a realistic asynchronous post-operation Create of an msdyn_actual (35 columns in
Target, the post image the step register-steps registers sends, the Claims properties). Lookups are
answered from a warm cache, as they are in steady state. The figures are ratios measured in the same
run: the cost per event to the floor (orjson parsing the same message and serializing the same
Finance body), and a bookable resource category Create of 200 columns to one of 10, both read by the
resource-roles map (3 columns).

The width ratio is measured on two shapes of message. The goal's is what the step `register-steps`
registers sends: Target holds every column the Create set, the post image only the columns the flows
read (and versionnumber), under the alias that says so, so Target's columns are skipped unread. The
other is a step registered by hand with a whole-row post image, so every column arrives twice and
Target is merged with the image; for it the run also measures what msgspec's scanner costs to skip
the wide body's extra bytes and nothing else, the least any reader built on it can pay for them.
"""

from __future__ import annotations

import asyncio
import copy
import gc
import json
import resource
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import orjson

from functions import actuals, resource_roles
from functions.catalog import CATALOG
from shared.cache import TtlCache
from shared.decoding.dataverse import IncomingMessage, decode_dataverse
from shared.events import ChangeEvent
from shared.jsonio import dumps
from shared.operations.register_steps import plan_steps
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
    floor_us: float = 0.0
    narrow_us: float = 0.0
    wide_us: float = 0.0
    full_narrow_us: float = 0.0
    full_wide_us: float = 0.0
    engine_block_us: float = 0.0
    # Medians of the ratios of neighbouring blocks (measure()).
    to_floor: float = 0.0
    wide_to_narrow: float = 0.0
    full_wide_to_narrow: float = 0.0
    # The whole-row-image ratio if reading the wide body's extra pairs cost only msgspec's skipping them.
    full_scan_bound: float = 0.0

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
    """What the router and the flow do with one message, the queue hop's JSON included."""
    event = decode_dataverse(message, CATALOG.dataverse_columns)
    size = 0
    for table_map in CATALOG.for_dataverse_entity(event.entity):
        wire = event.for_flow(table_map.name, source_key(table_map, event)).to_json()
        received = ChangeEvent.from_json(wire)
        for row in await build_target_rows(engine, table_map, received, dict(received.record or {})):
            size += len(dumps(row.payload))
    return size


def _message(body: bytes, entity: str) -> IncomingMessage:
    return IncomingMessage(
        body=body,
        content_type="application/json",
        properties={
            CLAIMS + "Organization": "contoso.crm.dynamics.com",
            CLAIMS + "User": "5a0d0a55-0000-4000-8000-00000000b002",
            CLAIMS + "InitiatingUser": "5a0d0a55-0000-4000-8000-00000000b002",
            CLAIMS + "EntityLogicalName": entity,
            CLAIMS + "RequestName": "Create",
        },
        message_id="m-1",
    )


_OPTION = "OptionSetValue:http://schemas.microsoft.com/xrm/2011/Contracts"
_MONEY = "Money:http://schemas.microsoft.com/xrm/2011/Contracts"
_REFERENCE = "EntityReference:http://schemas.microsoft.com/xrm/2011/Contracts"


def _filler(n: int) -> dict[str, object]:
    """An unmapped column of one of the kinds a real row is full of."""
    name = f"cnt_column{n:03d}"
    kind = n % 5
    if kind == 0:
        return {"key": name, "value": f"free text of column {n}, as long as a description is"}
    if kind == 1:
        return {"key": name, "value": {"__type": _OPTION, "Value": 192350000 + n}}
    if kind == 2:
        return {"key": name, "value": {"__type": _MONEY, "Value": 1234.5 + n}}
    if kind == 3:
        return {"key": name, "value": "/Date(1762300800000)/"}
    reference = {"__type": _REFERENCE, "Id": f"c0a1e000-0000-4000-8000-{n:012d}", "LogicalName": "account"}
    return {"key": name, "value": {**reference, "Name": f"Account {n}", "KeyAttributes": [], "RowVersion": None}}


def registered_image(entity: str) -> tuple[str, frozenset[str]]:
    """The alias and the columns of the post image register-steps registers on `entity`'s Create step."""
    [plan] = [plan for plan in plan_steps(CATALOG) if plan.entity == entity and plan.message == "Create"]
    assert plan.image is not None and plan.image_attributes is not None
    return plan.image[1], frozenset(plan.image_attributes.split(","))


def _register(context: dict[str, Any], image: tuple[str, frozenset[str]] | None) -> None:
    """The message's post image as the registered step sends it: under its alias, its columns only."""
    if image is None:
        return
    alias, columns = image
    for post in context["PostEntityImages"]:
        if post["key"] == "PostImage":
            post["key"] = alias
            post["value"]["Attributes"] = [pair for pair in post["value"]["Attributes"] if pair["key"] in columns]


def actual_message() -> IncomingMessage:
    """The msdyn_actual Create as the step register-steps registers sends it."""
    context = json.loads(MESSAGE.read_bytes())
    _register(context, registered_image("msdyn_actual"))
    return _message(json.dumps(context).encode(), "msdyn_actual")


def resource_category_message(columns: int, image: tuple[str, frozenset[str]] | None = None) -> IncomingMessage:
    """A bookable resource category Create of `columns` columns in Target, three of them mapped; the
    post image holds the same columns under the alias "PostImage" (a whole-row image registered by
    hand), or as the registered `image` holds them."""
    context = json.loads(MESSAGE.read_bytes())
    record_id = "c0a1e000-0000-4000-8000-0000000000e1"
    attributes: list[dict[str, object]] = [
        {"key": "bookableresourcecategoryid", "value": record_id},
        {"key": "name", "value": "Solution architect"},
        {"key": "msdyn_resourcecategorynumber", "value": "ARCHITECT"},
        {"key": "statecode", "value": {"__type": _OPTION, "Value": 0}},
        {"key": "versionnumber", "value": 1001},
    ]
    attributes += [_filler(n) for n in range(columns - len(attributes))]
    context["PrimaryEntityName"] = "bookableresourcecategory"
    context["PrimaryEntityId"] = record_id
    target = context["InputParameters"][0]["value"]
    target["LogicalName"], target["Id"], target["Attributes"] = "bookableresourcecategory", record_id, attributes
    for post in context["PostEntityImages"]:
        post["value"].update(LogicalName="bookableresourcecategory", Id=record_id)
        post["value"]["Attributes"] = copy.deepcopy(attributes)
    _register(context, image)
    return _message(json.dumps(context).encode(), "bookableresourcecategory")


BLOCK = 250  # events per block; the measurements take turns block by block


class _MessageNameOnly(msgspec.Struct):
    MessageName: str


# Reads one field and skips the rest of the body: what the scanner costs for the bytes alone.
_SKIPPER = msgspec.json.Decoder(_MessageNameOnly)


def _skip(message: IncomingMessage) -> Callable[[], Awaitable[None]]:
    body = message.body

    async def once() -> None:
        _SKIPPER.decode(body)

    return once


async def _block_us(once: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    for _ in range(BLOCK):
        await once()
    return (time.perf_counter() - started) * 1e6 / BLOCK


async def _floor(engine: Engine, message: IncomingMessage) -> Callable[[], Awaitable[None]]:
    """orjson parsing the message and serializing the body the flow sends: no engine can do less."""
    event = decode_dataverse(message, CATALOG.dataverse_columns)
    rows = await build_target_rows(engine, actuals.MAP, event, dict(event.record or {}))
    payload = orjson.loads(dumps(rows[0].payload))  # plain JSON values, as orjson can serialize them
    body = message.body

    async def once() -> None:
        orjson.loads(body)
        orjson.dumps(payload)

    return once


async def measure(events: int = 20_000) -> OverheadResult:
    """The engine, the floor and the two widths measured in alternating blocks, and each ratio the
    median of the ratios of neighbouring blocks: on a shared machine the speed drifts by half within
    a run, so figures measured one after another compared the machine's moods as much as the code."""
    message = actual_message()
    engine = _engine()
    for _ in range(200):  # warm the lookup cache and the interpreter
        assert await _one(engine, message) > 0
    floor = await _floor(engine, message)
    image = registered_image("bookableresourcecategory")
    assert {"name", "msdyn_resourcecategorynumber"} <= image[1] and len(image[1]) < 10
    narrow, wide = resource_category_message(10, image), resource_category_message(200, image)
    full_narrow, full_wide = resource_category_message(10), resource_category_message(200)
    assert resource_roles.MAP in CATALOG.for_dataverse_entity("bookableresourcecategory")
    for _ in range(200):
        for width in (narrow, wide, full_narrow, full_wide):
            assert await _one(engine, width) > 0
    skip_narrow, skip_wide = _skip(full_narrow), _skip(full_wide)
    gc.collect()
    samples: list[int] = []
    names = ("engine", "floor", "narrow", "wide", "full_narrow", "full_wide", "skip_narrow", "skip_wide")
    blocks: dict[str, list[float]] = {name: [] for name in names}
    engine_seconds = 0.0
    while len(samples) < events:
        block_started = time.perf_counter()
        for _ in range(BLOCK):
            t0 = time.perf_counter_ns()
            await _one(engine, message)
            samples.append(time.perf_counter_ns() - t0)
        block = time.perf_counter() - block_started
        engine_seconds += block
        blocks["engine"].append(block * 1e6 / BLOCK)
        blocks["floor"].append(await _block_us(floor))
        blocks["narrow"].append(await _block_us(lambda: _one(engine, narrow)))
        blocks["wide"].append(await _block_us(lambda: _one(engine, wide)))
        blocks["full_narrow"].append(await _block_us(lambda: _one(engine, full_narrow)))
        blocks["full_wide"].append(await _block_us(lambda: _one(engine, full_wide)))
        blocks["skip_narrow"].append(await _block_us(skip_narrow))
        blocks["skip_wide"].append(await _block_us(skip_wide))
    samples.sort()
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return OverheadResult(
        events=len(samples),
        seconds=engine_seconds,
        p50_us=samples[len(samples) // 2] / 1000,
        p99_us=samples[int(len(samples) * 0.99)] / 1000,
        peak_rss_mb=peak_kb / 1024,
        floor_us=statistics.median(blocks["floor"]),
        narrow_us=statistics.median(blocks["narrow"]),
        wide_us=statistics.median(blocks["wide"]),
        full_narrow_us=statistics.median(blocks["full_narrow"]),
        full_wide_us=statistics.median(blocks["full_wide"]),
        engine_block_us=statistics.median(blocks["engine"]),
        to_floor=_median_ratio(blocks["engine"], blocks["floor"]),
        wide_to_narrow=_median_ratio(blocks["wide"], blocks["narrow"]),
        full_wide_to_narrow=_median_ratio(blocks["full_wide"], blocks["full_narrow"]),
        full_scan_bound=statistics.median(
            (n + w - s) / n
            for n, w, s in zip(blocks["full_narrow"], blocks["skip_wide"], blocks["skip_narrow"], strict=True)
        ),
    )


def _median_ratio(numerators: list[float], denominators: list[float]) -> float:
    return statistics.median(a / b for a, b in zip(numerators, denominators, strict=True))


def run(events: int = 20_000) -> OverheadResult:
    return asyncio.run(measure(events))
