"""A Finance data event is a virtual-table row: no Guid columns, the entity key as text in
mserp_primaryfield. A map keyed on a Guid reads its key from there, and keeps one state key (and one
session) whether the record comes as that event, an initial-sync row or a row read again."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from functions import actuals_accounting
from functions.catalog import CATALOG
from shared.cache import TtlCache
from shared.decoding.dataverse import IncomingMessage
from shared.decoding.finance import decode_finance
from shared.errors import MappingError
from shared.events import ChangeEvent, session_of
from shared.operations.initial_sync import row_event
from shared.operations.parked import replay
from shared.outcomes import MAPPING, OutcomeKind
from shared.pipeline import Engine, apply_event, source_key
from shared.routing import route_finance
from shared.runtime import Runtime
from shared.settlement import park
from shared.targets import finance_source_key_fields
from tests.unit.fakes import FakeDataverse, FakeFinance, MemoryState, RecordingSender
from tests.unit.test_pipeline import make_settings

IMPORT_ID = "b0000000-0000-4000-8000-0000000000a1"
ACTUAL_ID = "a0000000-0000-4000-8000-000000000001"
VIRTUAL_ROW = "1b2c3d4e-0000-0000-0a0b-0c0d0e0f1011"
PERSON = "33333333-3333-4333-8333-333333333333"


def entity(attributes: dict[str, Any]) -> dict[str, Any]:
    return {
        "__type": "Entity:http://schemas.microsoft.com/xrm/2011/Contracts",
        "Attributes": [{"key": k, "value": v} for k, v in attributes.items()],
        "EntityState": None,
        "FormattedValues": [],
        "Id": VIRTUAL_ROW,
        "KeyAttributes": [],
        "LogicalName": "mserp_projactualsimportentity",
        "RelatedEntities": [],
        "RowVersion": None,
    }


def posting_event(primary_field: str | None) -> bytes:
    """Finance's posting of a staged actual as its data event: what the virtual table has, so no
    ActualsImportId and no ActualId (both Edm.Guid), the key only inside mserp_primaryfield."""
    before: dict[str, Any] = {
        "mserp_dataareaid": "usmf",
        "mserp_vouchernumber": "",
        "mserp_accountingamount": 0,
        "mserp_projectid": "PRJ-1",
        "mserp_projactualsimportentityid": VIRTUAL_ROW,
    }
    if primary_field is not None:
        before["mserp_primaryfield"] = primary_field
    target = {
        "mserp_dataareaid": "usmf",
        "mserp_vouchernumber": "PJ-000001",
        "mserp_accountingamount": 1125.5,
        "mserp_projactualsimportentityid": VIRTUAL_ROW,
    }
    context = {
        "InputParameters": [
            {"key": "Target", "value": entity(target)},
            {"key": "PreImage", "value": entity(before)},
        ],
        "InitiatingUserAzureActiveDirectoryObjectId": PERSON,
        "MessageName": "OnExternalUpdated",
        "PrimaryEntityId": VIRTUAL_ROW,
        "PrimaryEntityName": "mserp_projactualsimportentity",
        "OperationId": "c3c3c3c3-0000-4000-8000-000000000001",
        "OperationCreatedOn": "/Date(1718064123000+0000)/",
        "PreEntityImages": [],
        "PostEntityImages": [],
        "OutputParameters": [],
        "Depth": 1,
    }
    return json.dumps(context).encode()


def decoded(primary_field: str | None) -> ChangeEvent:
    [event] = decode_finance(IncomingMessage(posting_event(primary_field), "application/json"))
    return event


def staging_row() -> dict[str, Any]:
    """The staging row as Finance's OData returns it: here the Guids are."""
    return {
        "dataAreaId": "usmf",
        "ActualsImportId": IMPORT_ID,
        "ActualId": ACTUAL_ID,
        "VoucherNumber": "PJ-000001",
        "AccountingAmount": Decimal("1125.50"),
        "ExchangeRate": Decimal("0.9215"),
        "SalesTaxAmount": Decimal("0.00"),
    }


@pytest.fixture
def finance() -> FakeFinance:
    fo = FakeFinance(key_fields={"ProjActualsImports": ("dataAreaId", "ActualsImportId")})
    fo.add("ProjActualsImports", staging_row())
    return fo


@pytest.mark.parametrize(
    "primary_field",
    [
        "{B0000000-0000-4000-8000-0000000000A1}",  # X++ guid2str: braces, upper case
        "usmf | b0000000-0000-4000-8000-0000000000a1",  # the company as a part, the Guid bare
        "USMF|{b0000000-0000-4000-8000-0000000000A1}",
    ],
)
def test_the_guid_key_comes_from_the_primary_field_as_the_odata_row_gives_it(primary_field: str) -> None:
    event = decoded(primary_field)
    assert "actualsimportid" not in {**(event.before or {}), **(event.record or {})}
    key = source_key(actuals_accounting.MAP, event)
    # The same state key and session as the initial-sync row and the row read again.
    assert key == source_key(actuals_accounting.MAP, row_event(actuals_accounting.MAP, staging_row(), "c1"))
    assert key == f"USMF|{IMPORT_ID}"
    assert finance_source_key_fields(actuals_accounting.MAP, event, {**(event.before or {})}) == {
        "dataAreaId": "usmf",
        "ActualsImportId": IMPORT_ID,
    }


@pytest.mark.parametrize(
    ("primary_field", "says"),
    [
        (None, "no mserp_primaryfield to read it from"),
        ("", "no mserp_primaryfield to read it from"),
        ("usmf | PRJ-1", "holds 0 Guid(s) for 1 missing"),
        (f"{IMPORT_ID} | {ACTUAL_ID}", "holds 2 Guid(s) for 1 missing"),
        (f"{IMPORT_ID[:30]}", "holds 0 Guid(s)"),  # cut at 255 characters: not a Guid any more
        ("x" * 200 + " | " + IMPORT_ID + " | " + "y" * 100, "more than the 255 Finance writes"),
    ],
)
def test_a_primary_field_that_does_not_name_the_guid_is_refused_with_why(primary_field: str | None, says: str) -> None:
    event = decoded(primary_field)
    with pytest.raises(MappingError, match=r"no key field ActualsImportId|ActualsImportId is not read") as raised:
        source_key(actuals_accounting.MAP, event)
    assert says in str(raised.value)


async def test_a_posting_event_without_guids_writes_the_accounting_values_back(finance: FakeFinance) -> None:
    state, sender = MemoryState(), RecordingSender()
    dataverse = FakeDataverse()
    engine = Engine(make_settings(), dataverse, finance, state, TtlCache(60))
    runtime = Runtime(engine=engine, sender=sender, registry=CATALOG)
    message = IncomingMessage(posting_event("{B0000000-0000-4000-8000-0000000000A1}"), "application/json")

    routed = await route_finance(runtime, CATALOG, message)

    assert routed.parked == [] and routed.sent == {"actuals-accounting": 1}
    [(queue, event, _)] = sender.sent
    assert queue == actuals_accounting.MAP.flow_queue and event.key == f"USMF|{IMPORT_ID}"
    outcome = await apply_event(engine, actuals_accounting.MAP, event)
    assert outcome.kind is OutcomeKind.WRITTEN
    # The row was read by the key the primary field gave, and Dataverse received its values.
    assert ("GET", "ProjActualsImports", {"dataAreaId": "usmf", "ActualsImportId": IMPORT_ID}) in [
        (method, entity_set, {k: str(v) for k, v in key.items()}) for method, entity_set, key in finance.calls
    ]
    entity_set, mode, key, body = dataverse.writes[-1]
    assert (entity_set, mode, key) == ("msdyn_actuals", "update", {"msdyn_actualid": ACTUAL_ID})
    assert body == {
        "msdyn_vouchernumber": "PJ-000001",
        "msdyn_accountingamount": Decimal("1125.50"),
        "msdyn_accountexchangerate": Decimal("0.9215"),
        "msdyn_accountingtaxamount": Decimal("0.00"),
    }


async def test_a_replayed_event_its_router_parked_goes_out_under_the_record_key() -> None:
    """The router parks an event it cannot key with the event as it came: for a Finance data event
    that key is the virtual row's id. Every posting parked before primary fields were read is such
    an event; replayed, it must reach the flow under the record's key and session, not that id."""
    state, sender = MemoryState(), RecordingSender()
    engine = Engine(make_settings(), FakeDataverse(), FakeFinance(), state, TtlCache(60))
    runtime = Runtime(engine=engine, sender=sender, registry=CATALOG)
    event = decoded("{B0000000-0000-4000-8000-0000000000A1}")
    assert event.key == VIRTUAL_ROW
    parked = await park(
        state,
        parked_id="parked-by-the-router",
        flow=actuals_accounting.MAP.name,
        key=event.key,
        reason=MAPPING,
        error="the ProjActualsImportEntity event has no key field ActualsImportId",
        attempts=1,
        event=event.for_flow(actuals_accounting.MAP.name).to_json(),
    )

    report = await replay(runtime, CATALOG, [parked], by="operator")

    assert report.replayed == [parked.id]
    [(queue, sent, _)] = sender.sent
    assert queue == actuals_accounting.MAP.flow_queue
    assert (sent.key, sent.session_id) == (f"USMF|{IMPORT_ID}", session_of(f"USMF|{IMPORT_ID}"))


async def test_a_replayed_event_that_still_has_no_key_is_parked_again_with_why() -> None:
    state, sender = MemoryState(), RecordingSender()
    engine = Engine(make_settings(), FakeDataverse(), FakeFinance(), state, TtlCache(60))
    runtime = Runtime(engine=engine, sender=sender, registry=CATALOG)
    event = decoded(None)
    parked = await park(
        state,
        parked_id="parked-by-the-router",
        flow=actuals_accounting.MAP.name,
        key=event.key,
        reason=MAPPING,
        error="the ProjActualsImportEntity event has no key field ActualsImportId",
        attempts=1,
        event=event.for_flow(actuals_accounting.MAP.name).to_json(),
    )

    report = await replay(runtime, CATALOG, [parked], by="operator")

    assert sender.sent == []
    [again] = [p for p in state.parked.values() if p.id != parked.id]
    assert again.flow == actuals_accounting.MAP.name and again.reason == MAPPING
    assert "no mserp_primaryfield to read it from" in again.error
    # Not reported as replayed: the operator is told it was parked again, and why.
    assert report.replayed == []
    assert report.failed[parked.id] == f"parked again: {again.error}"
    assert [(p.id, p.status) for p in state.parked.values()] == [(parked.id, "replayed"), (again.id, "parked")]


async def test_a_replayed_notification_goes_out_under_the_key_it_was_sent_with() -> None:
    """An event over its flow queue's message size goes to the flow as a notification under the record's
    key, with no record: keyed again from a record on replay it could only be parked again."""
    state, sender = MemoryState(), RecordingSender()
    engine = Engine(make_settings(), FakeDataverse(), FakeFinance(), state, TtlCache(60))
    runtime = Runtime(engine=engine, sender=sender, registry=CATALOG)
    key = f"USMF|{IMPORT_ID}"
    event = decoded("{B0000000-0000-4000-8000-0000000000A1}").for_flow(actuals_accounting.MAP.name, key)
    notification = event.replace(record=None, before=None, changed=None, partial=False, notification_only=True)
    parked = await park(
        state,
        parked_id="parked-by-the-flow",
        flow=actuals_accounting.MAP.name,
        key=key,
        reason="retry-budget-exhausted: transient",
        error="Finance answered 503",
        attempts=6,
        event=notification.to_json(),
    )

    report = await replay(runtime, CATALOG, [parked], by="operator")

    assert report.replayed == [parked.id]
    [(queue, sent, _)] = sender.sent
    assert queue == actuals_accounting.MAP.flow_queue
    assert (sent.key, sent.notification_only, sent.attempt) == (key, True, 1)
    assert [p.id for p in state.parked.values()] == [parked.id]
