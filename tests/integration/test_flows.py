"""Each flow through the sandbox over real sockets: what the other system received."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

from sandbox.demo_documents import expense_category
from sandbox.environment import Sandbox
from sandbox.scenario import (
    CATEGORY_ID,
    CUSTOMER_ID,
    USMF_ID,
    USPI_ID,
    actual_body,
    import_id,
)
from shared.telemetry import FIGURES
from tests.integration.conftest import finance_write_requests, finance_writes, send

PROJECT = "c0a1e000-0000-4000-8000-00000000aa01"


def project_body(number: str = "PRJ-2001", **extra: object) -> dict[str, object]:
    return {
        "msdyn_projectid": PROJECT,
        "msdyn_projectnumber": number,
        "msdyn_subject": "Warehouse automation",
        "msdyn_description": "Phase one",
        "msdyn_scheduledstart": "2026-12-01T08:00:00Z",
        "msdyn_finish": "2027-03-31T17:00:00Z",
        "msdyn_actualstart": "2026-12-02T08:00:00Z",
        "msdyn_OwningCompany@odata.bind": f"/cdm_companies({USMF_ID})",
        "msdyn_customer@odata.bind": f"/accounts({CUSTOMER_ID})",
        **extra,
    }


async def test_projects_v2_create_update_complete_delete(sandbox: Sandbox) -> None:
    async with sandbox.person_dataverse() as dv:
        await send(dv, "POST", "msdyn_projects", project_body())
        await sandbox.wait_quiet()
        row = sandbox.finance.get("ProjectsV2", dataAreaId="usmf", ProjectId="PRJ-2001")
        assert row is not None
        assert row["ProjectName"] == "Warehouse automation"
        assert row["Description"] == "Phase one"
        assert row["ProjectedStartDate"].isoformat() == "2026-12-01T12:00:00+00:00"
        assert row["ProjectedEndDate"].isoformat() == "2027-03-31T12:00:00+00:00"  # from msdyn_finish
        assert row["ActualStartDate"].isoformat() == "2026-12-02T12:00:00+00:00"
        assert row["CustomerAccountNumber"] == "US-001"
        assert row["ProjectStage"] == "InProcess"

        await send(dv, "PATCH", f"msdyn_projects({PROJECT})", {"msdyn_subject": "Warehouse automation II"})
        await sandbox.wait_quiet()
        await send(dv, "PATCH", f"msdyn_projects({PROJECT})", {"statecode": 1, "statuscode": 2})
        await sandbox.wait_quiet()
        row = sandbox.finance.get("ProjectsV2", dataAreaId="usmf", ProjectId="PRJ-2001")
        assert row is not None and row["ProjectName"] == "Warehouse automation II"
        assert row["ProjectStage"] == "Completed"

        await send(dv, "DELETE", f"msdyn_projects({PROJECT})")
        await sandbox.wait_quiet()
    assert sandbox.finance.get("ProjectsV2", dataAreaId="usmf", ProjectId="PRJ-2001") is None
    assert finance_writes(sandbox, "ProjectsV2") == [
        ("POST", "/data/ProjectsV2"),
        ("PATCH", "/data/ProjectsV2(dataAreaId='usmf',ProjectId='PRJ-2001')"),
        ("PATCH", "/data/ProjectsV2(dataAreaId='usmf',ProjectId='PRJ-2001')"),
        ("DELETE", "/data/ProjectsV2(dataAreaId='usmf',ProjectId='PRJ-2001')"),
    ]


async def test_a_date_only_column_in_user_local_time_reaches_finance_as_the_day_its_user_picked(
    sandbox: Sandbox,
) -> None:
    # msdyn_scheduledstart and msdyn_actualstart are DateOnly in format, UserLocal in behaviour (the
    # live schema): a model-driven app stores the picked day as midnight in the user's zone, in UTC.
    # Picked in Berlin (UTC+1) and Sydney (UTC+11), 2 December is on 1 December in UTC.
    # msdyn_finish is DateAndTime: its day stays the UTC one.
    body = project_body(
        msdyn_scheduledstart="2026-12-01T23:00:00Z",
        msdyn_actualstart="2026-12-01T13:00:00Z",
        msdyn_finish="2027-03-31T23:00:00Z",
    )
    async with sandbox.person_dataverse() as dv:
        await send(dv, "POST", "msdyn_projects", body)
        await sandbox.wait_quiet()
    row = sandbox.finance.get("ProjectsV2", dataAreaId="usmf", ProjectId="PRJ-2001")
    assert row is not None
    assert row["ProjectedStartDate"].isoformat() == "2026-12-02T12:00:00+00:00"
    assert row["ActualStartDate"].isoformat() == "2026-12-02T12:00:00+00:00"
    assert row["ProjectedEndDate"].isoformat() == "2027-03-31T12:00:00+00:00"


async def test_update_of_an_unmapped_column_sends_nothing(sandbox: Sandbox) -> None:
    async with sandbox.person_dataverse() as dv:
        await send(dv, "POST", "msdyn_projects", project_body())
        await sandbox.wait_quiet()
        assert finance_writes(sandbox, "ProjectsV2") == [("POST", "/data/ProjectsV2")]
        events = FIGURES.flows["projects-v2"].events
        # msdyn_plannedlaborcost is not mapped: the step's filtering attributes keep it from firing at all,
        # so no event reaches the flow (the flow's own no-mapped-change guard is not what stops it).
        await send(dv, "PATCH", f"msdyn_projects({PROJECT})", {"msdyn_plannedlaborcost": Decimal("1000.00")})
        await sandbox.wait_quiet()
        assert FIGURES.flows["projects-v2"].events == events
        assert len(finance_writes(sandbox, "ProjectsV2")) == 1
        # The control: a mapped column on the same record does fire, reach the flow and write.
        await send(dv, "PATCH", f"msdyn_projects({PROJECT})", {"msdyn_subject": "Warehouse automation II"})
        await sandbox.wait_quiet()
    assert FIGURES.flows["projects-v2"].events == events + 1
    assert finance_writes(sandbox, "ProjectsV2")[1:] == [
        ("PATCH", "/data/ProjectsV2(dataAreaId='usmf',ProjectId='PRJ-2001')")
    ]


async def create_project(sandbox: Sandbox) -> None:
    async with sandbox.person_dataverse() as dv:
        await send(dv, "POST", "msdyn_projects", project_body("PRJ-1001"))
    await sandbox.wait_quiet()


async def test_actuals_stage_exact_amounts_and_a_transitions_unbilled_sales_stay(sandbox: Sandbox) -> None:
    await create_project(sandbox)
    async with sandbox.person_dataverse() as dv:
        body = actual_body(
            "c0a1e000-0000-4000-8000-0000000b0001", "ACT-9001", classification=192350001, quantity="3", price="33.3333"
        )
        body["msdyn_project@odata.bind"] = f"/msdyn_projects({PROJECT})"
        await send(dv, "POST", "msdyn_actuals", body)
        skipped = actual_body(
            "c0a1e000-0000-4000-8000-0000000b0002",
            "ACT-9002",
            classification=192350000,
            quantity="1",
            price="1",
            transition=True,
        )
        skipped["msdyn_project@odata.bind"] = f"/msdyn_projects({PROJECT})"
        await send(dv, "POST", "msdyn_actuals", skipped)
    await sandbox.wait_quiet()
    row = sandbox.finance.get("ProjActualsImports", dataAreaId="usmf", ActualsImportId=import_id("ACT-9001"))
    assert row is not None
    assert row["Amount"] == Decimal("99.9999")
    assert row["UnitPrice"] == Decimal("33.3333")
    assert row["Quantity"] == Decimal("3")
    assert row["TransactionClassification"] == 192350001  # the option value: the staging column is int64
    assert row["TransactionType"] == "Cost"
    assert row["BillingType"] == "Chargeable"
    assert row["ProjectId"] == "PRJ-1001"
    assert row["ProjectDataAreaId"] == "usmf"
    assert row["TransactionCurrencyId"] == "USD"
    assert row["TransactionCategoryId"] == "TCN-0000001000"
    assert row["ActualsImportId"] == import_id("ACT-9001")
    assert row["DocumentDate"].date().isoformat() == "2026-11-02"
    # The exact digits went over the wire, not a float's approximation.
    posted = [r.body for r in sandbox.finance.requests if r.method == "POST" and r.path == "/data/ProjActualsImports"]
    assert len(posted) == 1 and '"Amount":99.9999' in posted[0]
    assert sandbox.finance.get("ProjActualsImports", dataAreaId="usmf", ActualsImportId=import_id("ACT-9002")) is None


async def test_actual_and_its_write_back_settle_after_one_round_trip(sandbox: Sandbox) -> None:
    await create_project(sandbox)
    actual_id = "c0a1e000-0000-4000-8000-0000000b0003"
    async with sandbox.person_dataverse() as dv:
        body = actual_body(actual_id, "ACT-9003", classification=192350000, quantity="8", price="125.50")
        body["msdyn_project@odata.bind"] = f"/msdyn_projects({PROJECT})"
        await send(dv, "POST", "msdyn_actuals", body)
    await sandbox.wait_quiet()
    sandbox.finance.exchange_rates["USD"] = Decimal("0.9215")
    assert await sandbox.finance.post_actuals() == [import_id("ACT-9003")]
    await sandbox.wait_quiet()

    actual = sandbox.dataverse.get_row("msdyn_actual", actual_id)
    assert actual is not None
    assert actual["msdyn_vouchernumber"] == "PJ-000001"
    assert actual["msdyn_accountexchangerate"] == Decimal("0.9215")
    assert actual["msdyn_accountingamount"] == Decimal("925.19")  # 1004.00 * 0.9215, rounded half up
    assert actual["msdyn_accountingtaxamount"] == Decimal("0.00")
    # One staging write, one write-back, and nothing echoing back and forth.
    assert finance_writes(sandbox, "ProjActualsImports") == [("POST", "/data/ProjActualsImports")]
    write_backs = [
        r
        for r in sandbox.dataverse.requests
        if r.method == "PATCH" and r.path.startswith("/api/data/v9.2/msdyn_actuals")
    ]
    assert len(write_backs) == 1
    assert write_backs[0].headers.get("if-match") == "*"


async def test_a_later_change_to_a_journalized_actual_is_not_posted_twice(sandbox: Sandbox) -> None:
    """Finance sets IsJournalized = Yes when it posts a staged actual; an update that sent the source's
    No again would have the next posting run post it a second time."""
    await create_project(sandbox)
    actual_id = "c0a1e000-0000-4000-8000-0000000b0077"
    async with sandbox.person_dataverse() as dv:
        body = actual_body(actual_id, "ACT-9077", classification=192350000, quantity="8", price="125.50")
        body["msdyn_transactiontypecode"] = 192350005  # unbilled sales
        body["msdyn_project@odata.bind"] = f"/msdyn_projects({PROJECT})"
        await send(dv, "POST", "msdyn_actuals", body)
    await sandbox.wait_quiet()
    assert await sandbox.finance.post_actuals() == [import_id("ACT-9077")]
    await sandbox.wait_quiet()
    async with sandbox.person_dataverse() as dv:  # an invoice is created: the billing status moves on
        await send(dv, "PATCH", f"msdyn_actuals({actual_id})", {"msdyn_billingstatus": 192350001})
    await sandbox.wait_quiet()
    [update] = [r for r in sandbox.finance.requests if r.method == "PATCH" and "ProjActualsImports" in r.path]
    assert "IsJournalized" not in json.loads(update.body) and '"BillingStatusId":192350001' in update.body
    row = sandbox.finance.get("ProjActualsImports", dataAreaId="usmf", ActualsImportId=import_id("ACT-9077"))
    assert row is not None and row["IsJournalized"] == "Yes"
    assert await sandbox.finance.post_actuals() == []


async def test_resource_role_is_one_role_for_all_companies_and_is_never_deleted(sandbox: Sandbox) -> None:
    role = "c0a1e000-0000-4000-8000-0000000c0001"
    async with sandbox.person_dataverse() as dv:
        await send(
            dv,
            "POST",
            "bookableresourcecategories",
            {"bookableresourcecategoryid": role, "name": "Developer", "msdyn_resourcecategorynumber": "DEV"},
        )
        await sandbox.wait_quiet()
        await send(
            dv,
            "PATCH",
            f"bookableresourcecategories({role})",
            {"name": "Senior developer", "statecode": 1, "statuscode": 2},
        )
        await sandbox.wait_quiet()
        await send(dv, "DELETE", f"bookableresourcecategories({role})")
        await sandbox.wait_quiet()
    [shared] = sandbox.finance.rows("ResourceCategoriesShared")
    # IsCategoryDisabled is Finance's FalseTrue enum: an inactive role is "True", not "Yes".
    assert (shared["RoleId"], shared["Description"], shared["IsCategoryDisabled"]) == (
        "DEV",
        "Senior developer",
        "True",
    )
    assert finance_writes(sandbox, "ResourceCategoriesShared") == [
        ("POST", "/data/ResourceCategoriesShared"),
        ("PATCH", "/data/ResourceCategoriesShared(RoleId='DEV')"),
    ]
    assert [json.loads(r.body) for r in finance_write_requests(sandbox, "ResourceCategoriesShared")] == [
        {"RoleId": "DEV", "Description": "Developer", "IsCategoryDisabled": "False"},
        {"Description": "Senior developer", "IsCategoryDisabled": "True"},
    ]
    # Finance makes the company-specific role in each legal entity itself; the flow writes none.
    per_company = {r["dataAreaId"]: r for r in sandbox.finance.rows("ResourceCategories")}
    assert set(per_company) == {"usmf", "uspi"}
    assert all(r["RoleId"] == "DEV" and r["IsCategoryDisabled"] == "True" for r in per_company.values())
    assert [r for r in sandbox.finance.requests if r.path.split("(")[0] == "/data/ResourceCategories"] == []


async def test_expense_categories_one_record_per_legal_entity(sandbox: Sandbox) -> None:
    uspi_hotel = "ProjExpenseCategoriesExport(dataAreaId='uspi',CostType='Hotel')"
    async with sandbox.person_finance() as fo:
        for company in ("usmf", "uspi"):
            await send(fo, "POST", "ProjExpenseCategoriesExport", expense_category(company, "Hotel", "Hotel"))
        await sandbox.wait_quiet()
        # Finance's per diem type is Allowance; a category set inactive stays in Dataverse, inactive.
        await send(fo, "PATCH", uspi_hotel, {"ExpType": "Allowance", "IsInactive": "Yes"})
        await sandbox.wait_quiet()
    rows = [r for r in sandbox.dataverse.rows("msdyn_expensecategory") if r["msdyn_name"] == "Hotel"]
    by_company = {r["msdyn_owningcompany"]: r for r in rows}
    assert len(rows) == 2 and len(by_company) == 2
    usmf = by_company[USMF_ID]
    uspi = by_company[USPI_ID]
    assert (usmf["msdyn_expensetype"], usmf["statecode"]) == (192350000, 0)
    assert (uspi["msdyn_expensetype"], uspi["statecode"]) == (192350009, 1)
    assert usmf["msdyn_expensecategoryuid"] == CATEGORY_ID
    # ReceiptRequired is not on Finance's entity: the map leaves Dataverse's column alone.
    assert usmf.get("msdyn_receiptrequired") is None

    async with sandbox.person_finance() as fo:
        await send(fo, "DELETE", uspi_hotel)
    await sandbox.wait_quiet()
    remaining = [r for r in sandbox.dataverse.rows("msdyn_expensecategory") if r["msdyn_name"] == "Hotel"]
    assert [r["msdyn_owningcompany"] for r in remaining] == [USMF_ID]


async def test_transaction_category_gets_its_shared_categories_in_finance(sandbox: Sandbox) -> None:
    category = "c0a1e000-0000-4000-8000-0000000c0a01"
    async with sandbox.person_dataverse() as dv:
        await send(
            dv,
            "POST",
            "msdyn_transactioncategories",
            {
                "msdyn_transactioncategoryid": category,
                "msdyn_name": "Travel",
                "msdyn_transactioncategorynumber": "TCN-0000002000",
                "msdyn_billingtype": 192350001,
            },
        )
        await sandbox.wait_quiet()
        await send(dv, "PATCH", f"msdyn_transactioncategories({category})", {"msdyn_name": "Travel and lodging"})
        await sandbox.wait_quiet()
    row = sandbox.finance.get("ProjectTransactionCategories", CategoryId="TCN-0000002000")
    assert row is not None and row["Name"] == "Travel and lodging"
    # The entity has the category id and its name only: the billing type and Dataverse id stay behind.
    mine = [
        r
        for r in finance_write_requests(sandbox, "ProjectTransactionCategories")
        if "TCN-0000002000" in r.path + r.body
    ]
    assert [(r.method, r.path, json.loads(r.body)) for r in mine] == [
        ("POST", "/data/ProjectTransactionCategories", {"CategoryId": "TCN-0000002000", "Name": "Travel"}),
        (
            "PATCH",
            "/data/ProjectTransactionCategories(CategoryId='TCN-0000002000')",
            {"Name": "Travel and lodging"},
        ),
    ]
    shared = sorted(
        r["CategoryId"]
        for r in sandbox.finance.rows("SharedCategories")
        if r["CategoryId"].startswith("TCN-0000002000-")
    )
    assert shared == [f"TCN-0000002000-{n}" for n in range(1, 6)]


async def test_contract_headers_project_based_only_and_deleted_with_dataverse(sandbox: Sandbox) -> None:
    contract = "c0a1e000-0000-4000-8000-0000000d0c01"
    common = {
        "customerid@odata.bind": f"/accounts({CUSTOMER_ID})",
        "msdyn_owningcompany@odata.bind": f"/cdm_companies({USMF_ID})",
        "transactioncurrencyid@odata.bind": "/transactioncurrencies(isocurrencycode='USD')",
    }
    async with sandbox.person_dataverse() as dv:
        await send(
            dv,
            "POST",
            "salesorders",
            {
                "salesorderid": contract,
                "ordernumber": "ORD-01022",
                "msdyn_salesordernumber": "ORD-01022",
                "name": "Warehouse automation contract",
                "msdyn_ordertype": 192350001,
                "paymenttermscode": 3,
                **common,
            },
        )
        await send(
            dv,
            "POST",
            "salesorders",
            {
                "ordernumber": "SO-777",
                "msdyn_salesordernumber": "SO-777",
                "name": "Spare parts",
                "msdyn_ordertype": 192350000,
                **common,
            },
        )
        await sandbox.wait_quiet()
        header = sandbox.finance.get("ProjectContractHeaders", dataAreaId="usmf", ProjectContractId="ORD-01022")
        assert header is not None
        assert header["Name"] == "Warehouse automation contract" and header["CustomerAccountNumber"] == "US-001"
        assert header["TermsOfPayment"] == "Net45" and header["SalesCurrencyCode"] == "USD"
        assert sandbox.finance.get("ProjectContractHeaders", dataAreaId="usmf", ProjectContractId="SO-777") is None
        await send(dv, "DELETE", f"salesorders({contract})")
        await sandbox.wait_quiet()
    assert sandbox.finance.get("ProjectContractHeaders", dataAreaId="usmf", ProjectContractId="ORD-01022") is None


async def test_contract_line_before_its_header_waits_then_becomes_a_milestone_rule(sandbox: Sandbox) -> None:
    from functions import contract_headers
    from shared.operations.pause import pause, resume

    assert sandbox.runtime is not None and sandbox.runtime.switch is not None
    await pause(sandbox.runtime.switch, contract_headers.MAP)  # the header is held back
    order, line = "c0a1e000-0000-4000-8000-0000000d0c02", "c0a1e000-0000-4000-8000-0000000d0c03"
    async with sandbox.person_dataverse() as dv:
        await send(
            dv,
            "POST",
            "salesorders",
            {
                "salesorderid": order,
                "ordernumber": "ORD-2002",
                "msdyn_salesordernumber": "ORD-2002",
                "name": "Fixed-price rollout",
                "msdyn_ordertype": 192350001,
                "customerid@odata.bind": f"/accounts({CUSTOMER_ID})",
                "msdyn_owningcompany@odata.bind": f"/cdm_companies({USMF_ID})",
            },
        )
        await send(
            dv,
            "POST",
            "salesorderdetails",
            {
                "salesorderdetailid": line,
                "productdescription": "Go-live milestone",
                "sequencenumber": 1,
                "msdyn_billingmethod": 192350001,
                "msdyn_includetime": True,
                "quantity": Decimal("1"),
                "priceperunit": Decimal("48000.00"),
                "tax": Decimal("3840.00"),  # estimated: Finance taxes the line itself
                "salesorderid@odata.bind": f"/salesorders({order})",
                "msdyn_owningcompany@odata.bind": f"/cdm_companies({USMF_ID})",
            },
        )
    for _ in range(500):
        if FIGURES.flows["contract-lines"].retried:
            break
        await asyncio.sleep(0.01)
    assert FIGURES.flows["contract-lines"].retried >= 1
    await resume(sandbox.runtime.switch, contract_headers.MAP)
    await sandbox.wait_quiet()
    rule = sandbox.finance.get(
        "ProjectContractLines", dataAreaId="usmf", ProjectContractId="ORD-2002", LineSequenceNumber=1
    )
    assert rule is not None and rule["ContractLineId"] == line
    assert (rule["BillingMethod"], rule["LineType"]) == ("FixedPrice", "LumpSum")
    assert rule["LineAmount"] == Decimal("48000.00")  # before tax, not extendedamount's 51,840.00
    assert rule["AreHourTransactionsIncluded"] == "Yes" and rule["AreFeeTransactionsIncluded"] == "No"
    assert sandbox.runtime is not None and await sandbox.runtime.engine.state.list_parked() == []


async def test_an_update_beside_the_registered_image_is_not_read_again(sandbox: Sandbox) -> None:
    # The image register-steps registers lists every column the flows read and leaves out only the empty
    # ones (msdyn_description here): one it lacks is empty, not unknown, so the row is not read again.
    async with sandbox.person_dataverse() as dv:
        await send(dv, "POST", "msdyn_projects", project_body(msdyn_description=None))
        await sandbox.wait_quiet()
        since = len(sandbox.dataverse.requests)
        await send(dv, "PATCH", f"msdyn_projects({PROJECT})", {"msdyn_subject": "Warehouse automation II"})
        await sandbox.wait_quiet()
    reads = [
        r
        for r in sandbox.dataverse.requests[since:]
        if r.method == "GET" and r.path.endswith(f"msdyn_projects({PROJECT})")
    ]
    assert reads == []
    row = sandbox.finance.get("ProjectsV2", dataAreaId="usmf", ProjectId="PRJ-2001")
    assert row is not None and row["ProjectName"] == "Warehouse automation II"
    assert finance_writes(sandbox, "ProjectsV2") == [
        ("POST", "/data/ProjectsV2"),
        ("PATCH", "/data/ProjectsV2(dataAreaId='usmf',ProjectId='PRJ-2001')"),
    ]
