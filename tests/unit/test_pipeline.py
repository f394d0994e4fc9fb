"""Unit tests of the engine alone (in-memory services): guards, mapping, fan-out, deletes, settlement."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from functions import actuals, actuals_accounting, customers, expense_categories, projects_v2, resource_roles, workers
from shared.cache import TtlCache
from shared.events import ChangeEvent, Initiator, Operation, Source
from shared.maps import each_company_in_scope
from shared.operations.initial_sync import row_event
from shared.outcomes import OUT_OF_SCOPE, OutcomeKind
from shared.pipeline import Engine, apply_event, source_key
from shared.settings import AuthMode, BusBackend, Settings, StateBackend
from shared.settlement import settle
from shared.targets import _cached_chain
from shared.values import Ref
from tests.unit.fakes import FakeDataverse, FakeFinance, MemoryState, RecordingSender

INTEGRATION_USER = "11111111-1111-4111-8111-111111111111"
INTEGRATION_OBJECT = "22222222-2222-4222-8222-222222222222"
PERSON = "33333333-3333-4333-8333-333333333333"
USMF = "c0000000-0000-4000-8000-000000000001"
USPI = "c0000000-0000-4000-8000-000000000002"
PROJECT = "d0000000-0000-4000-8000-000000000001"
USD = "e0000000-0000-4000-8000-000000000001"
CATEGORY = "f0000000-0000-4000-8000-000000000001"


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "dataverse_url": "http://127.0.0.1:1",
        "finance_url": "http://127.0.0.1:2",
        "auth_mode": AuthMode.NONE,
        "integration_user_ids": [INTEGRATION_USER],
        "integration_object_ids": [INTEGRATION_OBJECT],
        "companies": ["USMF", "USPI"],
        "state_backend": StateBackend.SQLITE,
        "bus_backend": BusBackend.LOCAL,
        "retry_max_attempts": 3,
        "retry_base_delay_seconds": 10,
        "retry_max_delay_seconds": 25,
    }
    values.update(overrides)
    return Settings.model_validate(values)


@pytest.fixture
def dataverse() -> FakeDataverse:
    dv = FakeDataverse()
    dv.add("cdm_companies", USMF, {"cdm_companyid": USMF, "cdm_companycode": "USMF"})
    dv.add(
        "msdyn_projects",
        PROJECT,
        {"msdyn_projectid": PROJECT, "msdyn_projectnumber": "PRJ-1", "_msdyn_owningcompany_value": USMF},
    )
    dv.add("transactioncurrencies", USD, {"transactioncurrencyid": USD, "isocurrencycode": "USD"})
    dv.add(
        "msdyn_transactioncategories",
        CATEGORY,
        {"msdyn_transactioncategoryid": CATEGORY, "msdyn_transactioncategorynumber": "TCN-1"},
    )
    return dv


@pytest.fixture
def finance() -> FakeFinance:
    fo = FakeFinance(
        key_fields={
            "ProjectsV2": ("dataAreaId", "ProjectId"),
            "ProjActualsImports": ("dataAreaId", "ActualsImportId"),
            "ResourceCategoriesShared": ("RoleId",),
            "ResourceCategories": ("dataAreaId", "RoleId"),
            "CustomersV3": ("dataAreaId", "CustomerAccount"),
        }
    )
    fo.add("ProjectsV2", {"dataAreaId": "usmf", "ProjectId": "PRJ-1"})
    return fo


@pytest.fixture
def engine(dataverse: FakeDataverse, finance: FakeFinance) -> Engine:
    return Engine(make_settings(), dataverse, finance, MemoryState(), TtlCache(60))


IMPORT_ID = "b0000000-0000-4000-8000-0000000000a1"


def actual_event(version: int = 1, *, user: str = PERSON, **changes: Any) -> ChangeEvent:
    record: dict[str, Any] = {
        "msdyn_actualid": "a0000000-0000-4000-8000-000000000001",
        "msdyn_actualimportid": IMPORT_ID.upper(),
        "msdyn_transactionclassification": 192350000,
        "msdyn_transactiontypecode": 192350000,
        "msdyn_billingtype": 192350001,
        "msdyn_quantity": Decimal("7.5"),
        "msdyn_price": Decimal("150.00"),
        "msdyn_amount": Decimal("1125.00"),
        "msdyn_transactiondate": datetime(2026, 11, 2, tzinfo=UTC),
        "msdyn_project": Ref("msdyn_project", PROJECT),
        "msdyn_owningcompany": Ref("cdm_company", USMF),
        "transactioncurrencyid": Ref("transactioncurrency", USD),
        "msdyn_transactioncategory": Ref("msdyn_transactioncategory", CATEGORY),
    }
    record.update(changes)
    return ChangeEvent(
        event_id=f"e-{version}",
        source=Source.DATAVERSE,
        entity="msdyn_actual",
        operation=Operation.CREATE,
        key=record["msdyn_actualid"],
        record=record,
        version=version,
        initiated_by=Initiator(user_id=user),
    )


def staged(finance: FakeFinance, import_id: str = IMPORT_ID) -> dict[str, Any] | None:
    return finance.tables.get("ProjActualsImports", {}).get(
        (("ActualsImportId", import_id.lower()), ("dataAreaId", "usmf"))
    )


async def test_actual_is_staged_with_exact_values(engine: Engine, finance: FakeFinance) -> None:
    outcome = await apply_event(engine, actuals.MAP, actual_event())
    assert outcome.kind is OutcomeKind.WRITTEN
    row = staged(finance)
    assert row is not None
    assert row["Amount"] == Decimal("1125.00") and isinstance(row["Amount"], Decimal)
    assert row["Quantity"] == Decimal("7.5")
    assert row["ActualsImportId"] == IMPORT_ID  # an Edm.Guid: lower case, no braces
    assert row["TransactionClassification"] == 192350000
    assert row["TransactionType"] == "Cost"
    assert row["BillingType"] == "Chargeable"
    assert row["ProjectId"] == "PRJ-1"
    assert row["ProjectDataAreaId"] == "usmf"  # the project's legal entity, read through the project
    assert row["TransactionCurrencyId"] == "USD"
    assert row["TransactionCategoryId"] == "TCN-1"
    assert row["DocumentDate"] == "2026-11-02T12:00:00Z"
    assert "TransType" not in row and "AmountMST" not in row and "TransactionCategory" not in row


async def test_cached_lookups_through_another_row_make_no_reads(
    engine: Engine, dataverse: FakeDataverse, finance: FakeFinance
) -> None:
    """The project's legal entity is read through the project's owning company: once both rows are
    cached, the next actual takes both answers from the cache and still stages them right."""
    await apply_event(engine, actuals.MAP, actual_event())
    reads = dataverse.gets
    second = "b0000000-0000-4000-8000-0000000000a2"
    another = actual_event(1, msdyn_actualimportid=second, msdyn_actualid="a0000000-0000-4000-8000-000000000002")
    outcome = await apply_event(engine, actuals.MAP, another.replace(key="a0000000-0000-4000-8000-000000000002"))
    assert outcome.kind is OutcomeKind.WRITTEN
    assert dataverse.gets == reads
    row = staged(finance, second)
    assert row is not None and row["ProjectDataAreaId"] == "usmf" and row["dataAreaId"] == "usmf"


def test_a_cached_chain_follows_the_row_in_between(engine: Engine) -> None:
    engine.cache.put(("dv", "msdyn_projects", PROJECT, "_msdyn_owningcompany_value"), USMF)
    chain = ("msdyn_projects", "_msdyn_owningcompany_value", "cdm_companies", "cdm_companycode")
    assert _cached_chain(engine, PROJECT, *chain) is None  # the company's code is not cached yet
    engine.cache.put(("dv", "cdm_companies", USMF, "cdm_companycode"), "USMF")
    assert _cached_chain(engine, PROJECT, *chain) == "USMF"
    assert _cached_chain(engine, USMF, None, None, "cdm_companies", "cdm_companycode") == "USMF"
    assert _cached_chain(engine, CATEGORY, *chain) is None  # another project: its company is unknown


async def test_same_event_twice_writes_once(engine: Engine, finance: FakeFinance) -> None:
    await apply_event(engine, actuals.MAP, actual_event())
    again = await apply_event(engine, actuals.MAP, actual_event())
    assert again.kind is OutcomeKind.SKIPPED and again.reason == "unchanged"
    assert [c[0] for c in finance.calls if c[1] == "ProjActualsImports"] == ["POST"]


async def test_older_version_after_newer_is_stale(engine: Engine, finance: FakeFinance) -> None:
    newer = actual_event(2, msdyn_quantity=Decimal("8"), msdyn_amount=Decimal("1200.00"))
    older = actual_event(1)
    assert (await apply_event(engine, actuals.MAP, newer)).kind is OutcomeKind.WRITTEN
    outcome = await apply_event(engine, actuals.MAP, older)
    assert outcome.reason == "stale"
    assert staged(finance)["Amount"] == Decimal("1200.00")  # type: ignore[index]
    assert len([c for c in finance.calls if c[0] in ("POST", "PATCH")]) == 1


@pytest.mark.parametrize(
    "changes",
    [
        {"msdyn_transactiontypecode": 192350005, "msdyn_istransition": True},  # a transition's unbilled sales
        {"msdyn_transactiontypecode": 192350000, "msdyn_project": None},  # cost without a project
        {"msdyn_transactiontypecode": 192350007},  # resourcing unit cost (intercompany)
        {"msdyn_transactiontypecode": 192350004},  # the contract side
    ],
)
async def test_rows_microsofts_filter_leaves_out_are_not_staged(
    engine: Engine, finance: FakeFinance, changes: dict[str, Any]
) -> None:
    outcome = await apply_event(engine, actuals.MAP, actual_event(**changes))
    assert (outcome.kind, outcome.reason) == (OutcomeKind.SKIPPED, "filtered")
    assert staged(finance) is None


@pytest.mark.parametrize(
    ("changes", "symbol"),
    [
        ({"msdyn_transactiontypecode": 192350005}, "Sales"),
        ({"msdyn_transactiontypecode": 192350005, "msdyn_istransition": False}, "Sales"),
        ({"msdyn_transactiontypecode": 192350006}, "BilledSales"),
    ],
)
async def test_sales_microsofts_filter_passes_are_staged_as_its_symbols(
    engine: Engine, finance: FakeFinance, changes: dict[str, Any], symbol: str
) -> None:
    assert (await apply_event(engine, actuals.MAP, actual_event(**changes))).kind is OutcomeKind.WRITTEN
    assert staged(finance)["TransactionType"] == symbol  # type: ignore[index]


async def test_what_microsofts_logic_does_under_our_identity_is_not_taken_for_an_echo(
    engine: Engine, finance: FakeFinance
) -> None:
    """A plug-in answering our write runs as our user one level deeper (Depth 2): its change is synced."""
    outcome = await apply_event(engine, actuals.MAP, actual_event(user=INTEGRATION_USER).replace(depth=2))
    assert outcome.kind is OutcomeKind.WRITTEN and staged(finance) is not None
    echo = await apply_event(engine, actuals.MAP, actual_event(2, user=INTEGRATION_USER).replace(depth=1))
    assert echo.reason == "echo"


async def test_own_change_is_not_echoed(engine: Engine, finance: FakeFinance) -> None:
    outcome = await apply_event(engine, actuals.MAP, actual_event(user=INTEGRATION_USER))
    assert outcome.reason == "echo"
    assert staged(finance) is None


async def test_update_of_unmapped_column_is_skipped(engine: Engine) -> None:
    event = actual_event().replace(operation=Operation.UPDATE, changed=["msdyn_vouchernumber"])
    outcome = await apply_event(engine, actuals.MAP, event)
    assert outcome.reason == "no-mapped-change"


async def test_project_missing_in_finance_is_retried_naming_it(engine: Engine, finance: FakeFinance) -> None:
    finance.tables["ProjectsV2"].clear()
    outcome = await apply_event(engine, actuals.MAP, actual_event())
    assert outcome.kind is OutcomeKind.RETRY_LATER
    assert outcome.reason == "missing-dependency"
    assert "ProjectsV2(dataAreaId='usmf',ProjectId='PRJ-1')" in (outcome.detail or "")


async def test_a_project_number_another_flow_read_still_waits_for_the_project_in_finance(
    engine: Engine, finance: FakeFinance
) -> None:
    """Lookups are answered from the cache without a call when it holds them: a project number a
    flow without the Finance check read (a milestone's) must not stand in for the check itself."""
    engine.cache.put(("dv", "msdyn_projects", PROJECT, "msdyn_projectnumber"), "PRJ-1")
    finance.tables["ProjectsV2"].clear()
    outcome = await apply_event(engine, actuals.MAP, actual_event())
    assert outcome.kind is OutcomeKind.RETRY_LATER
    assert "ProjectsV2(dataAreaId='usmf',ProjectId='PRJ-1')" in (outcome.detail or "")
    assert staged(finance) is None
    finance.add("ProjectsV2", {"dataAreaId": "usmf", "ProjectId": "PRJ-1"})
    assert (await apply_event(engine, actuals.MAP, actual_event(2))).kind is OutcomeKind.WRITTEN
    finance.tables["ProjectsV2"].clear()  # checked once: from here the cache answers for it
    assert (await apply_event(engine, actuals.MAP, actual_event(3, msdyn_quantity=Decimal(8)))).kind is (
        OutcomeKind.WRITTEN
    )


async def test_a_value_its_value_map_lacks_is_parked_with_the_value(engine: Engine) -> None:
    outcome = await apply_event(engine, actuals.MAP, actual_event(msdyn_isjournalized="maybe"))
    assert outcome.kind is OutcomeKind.PARKED
    assert "msdyn_isjournalized='maybe'" in (outcome.detail or "")


async def test_retry_budget_then_park(engine: Engine, finance: FakeFinance) -> None:
    finance.tables["ProjectsV2"].clear()
    sender = RecordingSender()
    event = actual_event()
    delays = []
    for _ in range(3):
        outcome = await apply_event(engine, actuals.MAP, event)
        final = await settle(engine.settings, engine.state, sender, "actuals", event, outcome)
        if final.kind is OutcomeKind.RETRY_LATER:
            queue, event, delay = sender.sent[-1]
            assert queue == "flow-actuals"
            delays.append(delay)
    assert [e.attempt for _, e, _ in sender.sent] == [2, 3]
    assert delays == [10, 20]
    assert final.kind is OutcomeKind.PARKED
    parked = await engine.state.list_parked()
    assert parked[0].reason == "retry-budget-exhausted: missing-dependency"
    assert "ProjectsV2" in parked[0].error
    assert ChangeEvent.from_json(parked[0].event).key == event.key


def role_event() -> ChangeEvent:
    return ChangeEvent(
        event_id="r1",
        source=Source.DATAVERSE,
        entity="bookableresourcecategory",
        operation=Operation.CREATE,
        key="b0000000-0000-4000-8000-000000000001",
        record={"name": "Architect", "msdyn_resourcecategorynumber": "ARCH", "statecode": 0},
    )


async def test_resource_role_is_one_row_for_all_companies(engine: Engine, finance: FakeFinance) -> None:
    outcome = await apply_event(engine, resource_roles.MAP, role_event())
    assert outcome.writes == 1
    assert finance.calls == [
        (
            "POST",
            "ResourceCategoriesShared",
            {"RoleId": "ARCH", "Description": "Architect", "IsCategoryDisabled": "False"},
        )
    ]
    again = await apply_event(engine, resource_roles.MAP, role_event())
    assert again.reason == "unchanged"


async def test_a_company_rule_of_each_company_in_scope_fans_out(engine: Engine, finance: FakeFinance) -> None:
    # The per-company entity, as a customer who maps it instead of the shared one would.
    per_company = dataclasses.replace(
        resource_roles.MAP,
        target=dataclasses.replace(
            resource_roles.MAP.target, entity_set="ResourceCategories", key_fields=("dataAreaId", "RoleId")
        ),
        company=each_company_in_scope("dataAreaId"),
    )
    outcome = await apply_event(engine, per_company, role_event())
    assert outcome.writes == 2
    roles = finance.tables["ResourceCategories"]
    assert {dict(k)["dataAreaId"] for k in roles} == {"usmf", "uspi"}
    assert all(r["IsCategoryDisabled"] == "False" and r["Description"] == "Architect" for r in roles.values())
    again = await apply_event(engine, per_company, role_event())
    assert again.reason == "unchanged"


async def test_project_delete_uses_remembered_key_and_tombstones(engine: Engine, finance: FakeFinance) -> None:
    finance.add("CustomersV3", {"dataAreaId": "usmf", "CustomerAccount": "US-1"})
    record = {
        "msdyn_projectnumber": "PRJ-9",
        "msdyn_subject": "Rollout",
        "statecode": 0,
        "msdyn_owningcompany": Ref("cdm_company", USMF),
        "msdyn_customer": None,
        "msdyn_description": None,
        "msdyn_scheduledstart": None,
        "msdyn_finish": None,
        "msdyn_actualstart": datetime(2026, 11, 3, 8, tzinfo=UTC),
        "msdyn_actualend": None,
    }
    create = ChangeEvent(
        event_id="p1",
        source=Source.DATAVERSE,
        entity="msdyn_project",
        operation=Operation.CREATE,
        key="p9",
        record=record,
        version=1,
    )
    assert (await apply_event(engine, projects_v2.MAP, create)).kind is OutcomeKind.WRITTEN
    row = finance.tables["ProjectsV2"][(("ProjectId", "prj-9"), ("dataAreaId", "usmf"))]
    assert row["ProjectStage"] == "InProcess" and row["ActualStartDate"] == "2026-11-03T12:00:00Z"
    delete = create.replace(event_id="p2", operation=Operation.DELETE, record=None, version=2)
    assert (await apply_event(engine, projects_v2.MAP, delete)).kind is OutcomeKind.WRITTEN
    assert ("DELETE", "ProjectsV2", {"dataAreaId": "usmf", "ProjectId": "PRJ-9"}) in finance.calls
    late = create.replace(event_id="p3", operation=Operation.UPDATE, version=3)
    assert (await apply_event(engine, projects_v2.MAP, late)).reason == "tombstone"


async def test_write_back_updates_the_actual_by_id(
    engine: Engine, dataverse: FakeDataverse, finance: FakeFinance
) -> None:
    # What Finance holds now: the flow reads it again rather than trusting the event's copy.
    finance.add(
        "ProjActualsImports",
        {
            "dataAreaId": "usmf",
            "ActualsImportId": IMPORT_ID,
            "ActualId": "a0000000-0000-4000-8000-000000000001",
            "VoucherNumber": "PJ-1",
            "AccountingAmount": Decimal("1125.00"),
            "ExchangeRate": Decimal("1"),
            "SalesTaxAmount": Decimal("0"),
        },
    )
    event = ChangeEvent(
        event_id="f1",
        source=Source.FINANCE,
        entity="projactualsimportentity",
        operation=Operation.UPDATE,
        key="",
        company="USMF",
        changed=["vouchernumber", "accountingamount"],
        record={"vouchernumber": "PJ-1", "accountingamount": Decimal("1125.00")},
        before={
            "dataareaid": "usmf",
            "actualsimportid": IMPORT_ID,
            "actualid": "A0000000-0000-4000-8000-000000000001",
            "vouchernumber": "",
            "accountingamount": Decimal("0"),
            "exchangerate": Decimal("1"),
            "salestaxamount": Decimal("0"),
        },
        initiated_by=Initiator(aad_object_id=PERSON),
    )
    assert source_key(actuals_accounting.MAP, event) == f"USMF|{IMPORT_ID}"
    outcome = await apply_event(engine, actuals_accounting.MAP, event)
    assert outcome.kind is OutcomeKind.WRITTEN
    entity_set, mode, key, body = dataverse.writes[-1]
    assert (entity_set, mode) == ("msdyn_actuals", "update")
    assert key == {"msdyn_actualid": "a0000000-0000-4000-8000-000000000001"}
    # Microsoft's stored map: VOUCHERNUMBER > msdyn_vouchernumber, EXCHANGERATE > msdyn_accountexchangerate,
    # SALESTAXAMOUNT = msdyn_accountingtaxamount, ACCOUNTINGAMOUNT > msdyn_accountingamount.
    assert body == {
        "msdyn_vouchernumber": "PJ-1",
        "msdyn_accountingamount": Decimal("1125.00"),
        "msdyn_accountexchangerate": Decimal("1"),
        "msdyn_accountingtaxamount": Decimal("0"),
    }
    own = event.replace(initiated_by=Initiator(aad_object_id=INTEGRATION_OBJECT))
    assert (await apply_event(engine, actuals_accounting.MAP, own)).reason == "echo"


def expense_category_row(finance: FakeFinance, category: str, expense_type: str, inactive: str) -> None:
    """The category as ProjExpenseCategoriesExport holds it now (the flow reads it again)."""
    finance.key_fields["ProjExpenseCategoriesExport"] = ("dataAreaId", "CostType")
    finance.add(
        "ProjExpenseCategoriesExport",
        {
            "dataAreaId": "usmf",
            "CostType": category,
            "CostTxt": f"{category} expenses",
            "ExpType": expense_type,
            "IsInactive": inactive,
            "TransactionCategoryId": "TCN-1",
        },
    )


async def test_expense_category_keyed_by_company_id(
    engine: Engine, dataverse: FakeDataverse, finance: FakeFinance
) -> None:
    expense_category_row(finance, "Travel", "Airline", "No")
    # A data event of ProjExpenseCategoriesExport: lower-cased names, as Finance's virtual entity has them.
    event = ChangeEvent(
        event_id="c1",
        source=Source.FINANCE,
        entity="projexpensecategoryexportentity",
        operation=Operation.CREATE,
        key="",
        company="USMF",
        record={
            "dataareaid": "usmf",
            "costtype": "Travel",
            "costtxt": "Travel expenses",
            "exptype": "Airline",
            "isinactive": "No",
            "transactioncategoryid": "TCN-1",
        },
    )
    assert source_key(expense_categories.MAP, event) == "USMF|Travel"
    outcome = await apply_event(engine, expense_categories.MAP, event.for_flow("expense-categories", "USMF|Travel"))
    assert outcome.kind is OutcomeKind.WRITTEN
    entity_set, mode, key, body = dataverse.writes[-1]
    assert (entity_set, mode) == ("msdyn_expensecategories", "upsert")
    assert key == {"msdyn_name": "Travel", "_msdyn_owningcompany_value": USMF}
    assert body == {
        "msdyn_expensetype": 192350003,
        "statecode": 0,
        "msdyn_expensecategoryuid@odata.bind": "/msdyn_transactioncategories(msdyn_transactioncategorynumber='TCN-1')",
    }


@pytest.mark.parametrize(
    ("finance_type", "dataverse_option"),
    [("Meals", 192350002), ("Expense", 192350007), ("Transport", 192350008), ("Allowance", 192350009), ("Empty", None)],
)
async def test_expense_types_dataverse_names_otherwise(
    engine: Engine, dataverse: FakeDataverse, finance: FakeFinance, finance_type: str, dataverse_option: int | None
) -> None:
    expense_category_row(finance, "Per diem", finance_type, "Yes")
    event = ChangeEvent(
        event_id=f"c-{finance_type}",
        source=Source.FINANCE,
        entity="projexpensecategoryexportentity",
        operation=Operation.CREATE,
        key="USMF|Per diem",
        company="USMF",
        record={"dataareaid": "usmf", "costtype": "Per diem", "exptype": finance_type, "isinactive": "Yes"},
    )
    outcome = await apply_event(engine, expense_categories.MAP, event.for_flow("expense-categories"))
    assert outcome.kind is OutcomeKind.WRITTEN
    body = dataverse.writes[-1][3]
    assert (body["msdyn_expensetype"], body["statecode"]) == (dataverse_option, 1)


def worker_event(event_id: str, name: str, operation: Operation = Operation.UPDATE) -> ChangeEvent:
    """A Finance data event as it arrives: the row as it was when the event was raised."""
    return ChangeEvent(
        event_id=event_id,
        source=Source.FINANCE,
        entity="hcmworkerentity",
        operation=operation,
        key="000123",
        record={"personnelnumber": "000123", "name": name},
        initiated_by=Initiator(aad_object_id=PERSON),
    )


async def test_finance_events_out_of_order_land_the_newest_row(
    engine: Engine, dataverse: FakeDataverse, finance: FakeFinance
) -> None:
    """Finance data events carry no version; the flow reads the row Finance holds now, so an event
    delivered late cannot put an older value back."""
    finance.key_fields["Workers"] = ("PersonnelNumber",)
    finance.add("Workers", {"PersonnelNumber": "000123", "Name": "Third name"})
    for event in (worker_event("w3", "Third name"), worker_event("w1", "First name")):
        await apply_event(engine, workers.MAP, event)
    names = [body.get("cdm_fullname") for entity_set, _, _, body in dataverse.writes if entity_set == "cdm_workers"]
    assert names == ["Third name"]  # the late first event found nothing newer to write


async def test_a_finance_delete_older_than_the_row_is_skipped(engine: Engine, finance: FakeFinance) -> None:
    finance.key_fields["Workers"] = ("PersonnelNumber",)
    finance.add("Workers", {"PersonnelNumber": "000123", "Name": "Created again"})
    workers_that_delete = dataclasses.replace(workers.MAP, operations=frozenset(Operation))
    outcome = await apply_event(engine, workers_that_delete, worker_event("d1", "x", Operation.DELETE))
    assert (outcome.kind, outcome.reason) == (OutcomeKind.SKIPPED, "source-still-exists")


def category_event(event_id: str, operation: Operation, expense_type: str) -> ChangeEvent:
    """A data event of ProjExpenseCategoriesExport for USMF's Travel category."""
    row: dict[str, Any] = {"dataareaid": "usmf", "costtype": "Travel", "exptype": expense_type, "isinactive": "No"}
    deleted = operation is Operation.DELETE
    event = ChangeEvent(
        event_id=event_id,
        source=Source.FINANCE,
        entity="projexpensecategoryexportentity",
        operation=operation,
        key="USMF|Travel",
        company="USMF",
        record=None if deleted else row,
        before=row if deleted else None,
    )
    return event.for_flow("expense-categories")


async def test_a_finance_record_created_again_after_its_delete_syncs_on_what_finance_holds(
    engine: Engine, dataverse: FakeDataverse, finance: FakeFinance
) -> None:
    """A Finance flow reads the row again under the record's session, so that read, not the
    tombstone, says whether the record exists: the same category made again in Finance (its Created
    event missed) reaches Dataverse on an update, an initial sync or a reconcile."""
    table_map = expense_categories.MAP
    expense_category_row(finance, "Travel", "Hotel", "No")
    assert (await apply_event(engine, table_map, category_event("c1", Operation.CREATE, "Hotel"))).kind is (
        OutcomeKind.WRITTEN
    )
    finance.tables["ProjExpenseCategoriesExport"].clear()
    assert (await apply_event(engine, table_map, category_event("c2", Operation.DELETE, "Hotel"))).kind is (
        OutcomeKind.WRITTEN
    )
    assert len(dataverse.deletes) == 1
    # An update that was raised before the delete and delivered after it finds no row: nothing is written.
    late = await apply_event(engine, table_map, category_event("c3", Operation.UPDATE, "Hotel"))
    assert (late.kind, late.reason) == (OutcomeKind.SKIPPED, "source-gone")
    assert len(dataverse.writes) == 1

    expense_category_row(finance, "Travel", "Meals", "No")
    again = await apply_event(engine, table_map, category_event("c4", Operation.UPDATE, "Meals"))
    assert again.kind is OutcomeKind.WRITTEN
    assert dataverse.writes[-1][3]["msdyn_expensetype"] == 192350002
    state = await engine.state.get_state("expense-categories", "USMF|Travel")
    assert state is not None and not state.tombstone
    # Deleted again, then found by an initial sync and by a reconcile: both write it.
    for origin in (Source.INITIAL_SYNC, Source.RECONCILE):
        finance.tables["ProjExpenseCategoriesExport"].clear()
        await apply_event(engine, table_map, category_event(f"d-{origin.value}", Operation.DELETE, "Meals"))
        deleted = await engine.state.get_state("expense-categories", "USMF|Travel")
        assert deleted is not None and deleted.tombstone
        expense_category_row(finance, "Travel", "Airline", "No")
        [found] = finance.tables["ProjExpenseCategoriesExport"].values()
        row = row_event(table_map, found, f"run-{origin.value}", origin)
        outcome = await apply_event(engine, table_map, row.replace(key=source_key(table_map, row)))
        assert outcome.kind is OutcomeKind.WRITTEN, origin
        assert dataverse.writes[-1][3]["msdyn_expensetype"] == 192350003


async def test_a_finance_record_of_a_company_outside_the_scope_is_skipped_not_written(
    engine: Engine, dataverse: FakeDataverse, finance: FakeFinance
) -> None:
    """Finance raises data events for every legal entity; PROJOPS_COMPANIES is USMF,USPI here."""
    dataverse.add("cdm_companies", "c0000000-0000-4000-8000-0000000000de", {"cdm_companycode": "DEMF"})
    row = {"dataAreaId": "demf", "CustomerAccount": "DE-001", "OrganizationName": "Contoso GmbH"}
    finance.add("CustomersV3", {**row, "PartyType": "Organization"})
    event = ChangeEvent(
        event_id="d1",
        source=Source.FINANCE,
        entity="custcustomerv3entity",
        operation=Operation.CREATE,
        key="",
        record=row,
    )
    outcome = await apply_event(engine, customers.MAP, event.for_flow("customers", source_key(customers.MAP, event)))
    assert (outcome.kind, outcome.reason) == (OutcomeKind.SKIPPED, OUT_OF_SCOPE)
    assert outcome.detail is not None and "DEMF is not in scope" in outcome.detail
    assert dataverse.writes == []


async def test_an_intercompany_actual_finds_its_project_in_the_projects_company(
    engine: Engine, dataverse: FakeDataverse, finance: FakeFinance
) -> None:
    """An actual owned by USPI on USMF's project: the project is checked in USMF, where it is."""
    dataverse.add("cdm_companies", USPI, {"cdm_companyid": USPI, "cdm_companycode": "USPI"})
    outcome = await apply_event(engine, actuals.MAP, actual_event(msdyn_owningcompany=Ref("cdm_company", USPI)))
    assert outcome.kind is OutcomeKind.WRITTEN, outcome.detail
    row = finance.tables["ProjActualsImports"][(("ActualsImportId", IMPORT_ID.lower()), ("dataAreaId", "uspi"))]
    assert (row["ProjectId"], row["ProjectDataAreaId"]) == ("PRJ-1", "usmf")


async def test_the_exchange_rate_date_is_the_day_its_user_picked_as_the_rows_other_dates(
    engine: Engine, finance: FakeFinance
) -> None:
    # Picked 2 November in Sydney (UTC+11): stored as 1 November 13:00 UTC, as the accounting date is.
    sydney = datetime(2026, 11, 1, 13, tzinfo=UTC)
    event = actual_event(msdyn_exchangeratedate=sydney, msdyn_accountingdate=sydney)
    assert (await apply_event(engine, actuals.MAP, event)).kind is OutcomeKind.WRITTEN
    row = staged(finance)
    assert row is not None and row["ExchangeRateDate"] == row["AccountingDate"] == "2026-11-02T12:00:00Z"
