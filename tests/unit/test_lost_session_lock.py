"""Two instances on one record after a Service Bus session lock is lost (the engine with in-memory
services): instance A has read the record's state and stalls in its target write, the session goes to
instance B, which applies the same event again and the next one; then A's write lands. What the
target finally holds, and the version stored, must be the source's newest."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from functions import customers
from shared.cache import TtlCache
from shared.events import ChangeEvent, Initiator, Operation, Source
from shared.maps import TableMap
from shared.outcomes import Outcome, OutcomeKind
from shared.pipeline import Engine, apply_event, source_key
from shared.settlement import settle
from tests.unit.fakes import FakeDataverse, FakeFinance, MemoryState, RecordingSender
from tests.unit.test_pipeline import PERSON, USMF, make_settings

ACCOUNT = "a1000000-0000-4000-8000-000000000001"


@pytest.fixture
def dataverse() -> FakeDataverse:
    dv = FakeDataverse()
    dv.add("cdm_companies", USMF, {"cdm_companyid": USMF, "cdm_companycode": "USMF"})
    return dv


@pytest.fixture
def finance() -> FakeFinance:
    return FakeFinance(key_fields={"CustomersV3": ("dataAreaId", "CustomerAccount")})


@pytest.fixture
def engine(dataverse: FakeDataverse, finance: FakeFinance) -> Engine:
    return Engine(make_settings(), dataverse, finance, MemoryState(), TtlCache(60))


class Stall:
    """Holds the target write of the task named "A" until released, as a stalled instance would."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    def around(self, write: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def stalled(*args: Any, **kwargs: Any) -> Any:
            task = asyncio.current_task()
            if task is not None and task.get_name() == "A":
                self.entered.set()
                await self.release.wait()
            return await write(*args, **kwargs)

        return stalled


async def delivered(engine: Engine, table_map: TableMap, event: ChangeEvent, outcome: Outcome) -> None:
    """Settle the outcome as the flow function would, then deliver what it sent to the flow queue
    (in the record's session, after B), until nothing more is sent."""
    sender = RecordingSender()
    await settle(engine.settings, engine.state, sender, table_map.name, event, outcome)
    while sender.sent:
        _queue, again, _delay = sender.sent.pop(0)
        outcome = await apply_event(engine, table_map, again)
        await settle(engine.settings, engine.state, sender, table_map.name, again, outcome)


def account_row(dataverse: FakeDataverse, name: str, version: int) -> None:
    dataverse.add(
        "accounts",
        ACCOUNT,
        {
            "accountid": ACCOUNT,
            "accountnumber": "US-500",
            "name": name,
            "customertypecode": 3,
            "_msdyn_company_value": USMF,
            "_msdyn_company_value@Microsoft.Dynamics.CRM.lookuplogicalname": "cdm_company",
            "versionnumber": version,
        },
    )


def account_event(name: str, version: int) -> ChangeEvent:
    return ChangeEvent(
        event_id=f"e{version}",
        source=Source.DATAVERSE,
        entity="account",
        operation=Operation.UPDATE,
        key=ACCOUNT,
        record={"accountid": ACCOUNT, "name": name},
        changed=["name"],
        version=version,
        initiated_by=Initiator(user_id=PERSON),
    ).for_flow(customers.REVERSE_MAP.name)


def finance_name(finance: FakeFinance) -> Any:
    [row] = finance.tables["CustomersV3"].values()
    return row["OrganizationName"]


async def test_an_account_written_by_a_stalled_instance_after_the_next_one_ends_as_the_newest(
    engine: Engine, dataverse: FakeDataverse, finance: FakeFinance, monkeypatch: pytest.MonkeyPatch
) -> None:
    table_map = customers.REVERSE_MAP
    account_row(dataverse, "V1", 1)
    assert (await apply_event(engine, table_map, account_event("V1", 1))).kind is OutcomeKind.WRITTEN

    stall = Stall()
    monkeypatch.setattr(finance, "update", stall.around(finance.update))
    account_row(dataverse, "V5", 5)
    e5 = account_event("V5", 5)
    a = asyncio.create_task(apply_event(engine, table_map, e5), name="A")
    await stall.entered.wait()  # A has read the state and the row (V5) and is inside its Finance write

    account_row(dataverse, "V6", 6)  # a user changes the account again; A's lock has expired
    e6 = account_event("V6", 6)
    for event in (e5, e6):  # B: e5 again (A never completed it), then e6
        await delivered(engine, table_map, event, await apply_event(engine, table_map, event))
    assert finance_name(finance) == "V6"

    stall.release.set()
    outcome = await a
    await delivered(engine, table_map, e5, outcome)

    assert finance_name(finance) == "V6"
    state = await engine.state.get_state(table_map.name, ACCOUNT)
    assert state is not None and state.version == 6
    # A's write landed over B's: not reported done, but sent again to be written from the source.
    assert outcome.kind is OutcomeKind.RETRY_LATER


async def test_a_customer_written_by_a_stalled_instance_after_the_next_one_ends_as_the_newest(
    engine: Engine, dataverse: FakeDataverse, finance: FakeFinance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finance to Dataverse: the row is read again under the session, and B's newer write left a
    payload hash that says "unchanged" of what A's older write replaced."""
    table_map = customers.MAP

    def customer(name: str) -> ChangeEvent:
        finance.add(
            "CustomersV3",
            {"dataAreaId": "usmf", "CustomerAccount": "US-500", "OrganizationName": name, "PartyType": "Organization"},
        )
        event = ChangeEvent(
            event_id=f"f-{name}",
            source=Source.FINANCE,
            entity="custcustomerv3entity",
            operation=Operation.UPDATE,
            key="",
            record={"dataAreaId": "USMF", "CustomerAccount": "US-500", "OrganizationName": name},
        )
        return event.for_flow(table_map.name, source_key(table_map, event))

    def dataverse_name() -> Any:
        return dataverse.writes[-1][3]["name"]

    assert (await apply_event(engine, table_map, customer("V1"))).kind is OutcomeKind.WRITTEN
    stall = Stall()
    monkeypatch.setattr(dataverse, "write", stall.around(dataverse.write))
    e5 = customer("V5")
    a = asyncio.create_task(apply_event(engine, table_map, e5), name="A")
    await stall.entered.wait()

    e6 = customer("V6")
    for event in (e5, e6):
        await delivered(engine, table_map, event, await apply_event(engine, table_map, event))
    assert dataverse_name() == "V6"

    stall.release.set()
    outcome = await a
    assert dataverse_name() == "V5"  # A's older write landed last
    await delivered(engine, table_map, e5, outcome)
    assert dataverse_name() == "V6"
    assert outcome.kind is OutcomeKind.RETRY_LATER
