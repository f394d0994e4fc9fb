"""Setup, planning and billing maps through the sandbox: what Finance received for each operation."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

import pytest

from sandbox.demo_data import CATEGORY_ID, CUSTOMER_ID, ORDER_ID, ORDER_LINE_ID, PROJECT_ID, USD_ID, USMF_ID
from sandbox.demo_planning import estimate_line
from sandbox.environment import Sandbox, SandboxOptions
from sandbox.scenario import actual_body, create_project_setup, import_id
from shared.telemetry import FIGURES
from tests.integration.conftest import finance_write_requests, finance_writes, parked, send, until

COMPANY = f"/cdm_companies({USMF_ID})"
PROJECT = f"/msdyn_projects({PROJECT_ID})"
TASK = "c0a1e000-0000-4000-8000-0000000b1001"


@pytest.fixture
async def project(sandbox: Sandbox) -> Sandbox:
    """Project PRJ-1001 with contract ORD-1001 and its time-and-material line, in both systems."""
    await create_project_setup(sandbox)
    row = sandbox.finance.get("ProjectsV2", dataAreaId="usmf", ProjectId="PRJ-1001")
    assert row is not None and row["ProjectContractId"] == "ORD-1001"
    return sandbox


async def dataverse(sandbox: Sandbox, method: str, url: str, body: dict[str, Any] | None = None) -> None:
    async with sandbox.person_dataverse() as dv:
        await send(dv, method, url, body)
    await sandbox.wait_quiet()


def landed(sandbox: Sandbox, collection: str, **key: Any) -> dict[str, Any]:
    row = sandbox.finance.get(collection, **key)
    assert row is not None, f"{collection} {key} is not in Finance"
    return row


def methods(sandbox: Sandbox, collection: str) -> list[str]:
    return [method for method, _ in finance_writes(sandbox, collection)]


async def test_funding_source_terms_sync_but_split_percentages_never_do(project: Sandbox) -> None:
    rule = "c0a1e000-0000-4000-8000-0000000f1001"
    await dataverse(
        project,
        "POST",
        "msdyn_projectcontractsplitbillingrules",
        {
            "msdyn_projectcontractsplitbillingruleid": rule,
            "msdyn_projectcontractsplitbillingrulenumber": "FS-0060",
            "msdyn_billingsplitpercent": Decimal("60"),
            "msdyn_paymentterms": 1,
            "msdyn_projectcontractid@odata.bind": f"/salesorders({ORDER_ID})",
            "msdyn_customer@odata.bind": f"/accounts({CUSTOMER_ID})",
            "msdyn_owningcompany@odata.bind": COMPANY,
        },
    )
    key = {"dataAreaId": "usmf", "ProjectContractID": "ORD-1001", "FundingSourceId": "FS-0060"}
    row = project.finance.get("ProjectFundingSources", **key)
    assert row is not None
    assert (row["CustomerOrOrganization"], row["TermsOfPayment"], row["FundingType"]) == ("US-001", "Net30", "Customer")
    assert row["IsPrimaryFundingSource"] == "No"

    await dataverse(
        project, "PATCH", f"msdyn_projectcontractsplitbillingrules({rule})", {"msdyn_billingsplitpercent": 40}
    )
    assert methods(project, "ProjectFundingSources") == ["POST"]  # split percentages are not synced

    await dataverse(project, "PATCH", f"msdyn_projectcontractsplitbillingrules({rule})", {"msdyn_paymentterms": 3})
    assert landed(project, "ProjectFundingSources", **key)["TermsOfPayment"] == "Net45"

    await dataverse(project, "DELETE", f"msdyn_projectcontractsplitbillingrules({rule})")
    assert project.finance.get("ProjectFundingSources", **key) is None
    assert methods(project, "ProjectFundingSources") == ["POST", "PATCH", "DELETE"]


async def create_task(sandbox: Sandbox, task_id: str, number: str, subject: str, **extra: Any) -> None:
    body = {
        "msdyn_projecttaskid": task_id,
        "msdyn_activitynumber": number,
        "msdyn_subject": subject,
        "msdyn_project@odata.bind": PROJECT,
        **extra,
    }
    await dataverse(sandbox, "POST", "msdyn_projecttasks", body)


def task_key(number: str) -> dict[str, str]:
    return {"dataAreaId": "usmf", "ProjectId": "PRJ-1001", "TaskId": number}


async def test_tasks_keep_their_hierarchy_and_every_task_syncs(project: Sandbox) -> None:
    # Project Operations has no resource line tasks (nor msdyn_islinetask): a leaf task is an ordinary task.
    child, leaf = "c0a1e000-0000-4000-8000-0000000b1002", "c0a1e000-0000-4000-8000-0000000b1003"
    await create_task(project, TASK, "A-100", "Build", msdyn_outlinelevel=1)
    parent = {"msdyn_parenttask@odata.bind": f"/msdyn_projecttasks({TASK})"}
    await create_task(project, child, "A-110", "Configure", msdyn_outlinelevel=2, **parent)
    parent = {"msdyn_parenttask@odata.bind": f"/msdyn_projecttasks({child})"}
    await create_task(project, leaf, "A-111", "Ana's work", msdyn_outlinelevel=3, **parent)
    # Finance knows a task by its project and activity number; the hierarchy goes by element id.
    row = landed(project, "ProjectTasks", **task_key("A-110"))
    assert (row["TaskName"], row["TaskOutlineLevel"]) == ("Configure", 2)
    assert (row["TaskElementId"], row["ParentTaskElementId"]) == (child, TASK)
    assert landed(project, "ProjectTasks", **task_key("A-100"))["TaskElementId"] == TASK
    leaf_row = landed(project, "ProjectTasks", **task_key("A-111"))
    assert (leaf_row["TaskElementId"], leaf_row["ParentTaskElementId"], leaf_row["TaskOutlineLevel"]) == (
        leaf,
        child,
        3,
    )

    await dataverse(project, "PATCH", f"msdyn_projecttasks({child})", {"msdyn_subject": "Configure and test"})
    assert landed(project, "ProjectTasks", **task_key("A-110"))["TaskName"] == "Configure and test"
    await dataverse(project, "DELETE", f"msdyn_projecttasks({child})")
    assert project.finance.get("ProjectTasks", **task_key("A-110")) is None
    url = "/data/ProjectTasks(dataAreaId='usmf',ProjectId='PRJ-1001',TaskId='A-110')"
    assert finance_writes(project, "ProjectTasks") == [
        ("POST", "/data/ProjectTasks"),
        ("POST", "/data/ProjectTasks"),
        ("POST", "/data/ProjectTasks"),
        ("PATCH", url),
        ("DELETE", url),
    ]
    # A top-level task renamed: its parent (an Edm.String) stays empty, not the zero Guid.
    await dataverse(project, "PATCH", f"msdyn_projecttasks({TASK})", {"msdyn_subject": "Build and ship"})
    top = landed(project, "ProjectTasks", **task_key("A-100"))
    assert (top["TaskName"], top["ParentTaskElementId"]) == ("Build and ship", "")


MILESTONE = "c0a1e000-0000-4000-8000-0000000c1e01"


async def create_milestone(sandbox: Sandbox, status: int) -> None:
    await dataverse(
        sandbox,
        "POST",
        "msdyn_contractlinescheduleofvalues",
        {
            "msdyn_contractlinescheduleofvalueid": MILESTONE,
            "msdyn_name": "Go-live",
            "msdyn_amount": Decimal("25000.10"),
            "msdyn_invoicedate": "2027-01-31T00:00:00Z",
            "msdyn_invoicestatus": status,
            "msdyn_contractlineid@odata.bind": f"/salesorderdetails({ORDER_LINE_ID})",
            "msdyn_project@odata.bind": PROJECT,
            "transactioncurrencyid@odata.bind": f"/transactioncurrencies({USD_ID})",
        },
    )


def milestone_writes(sandbox: Sandbox) -> list[dict[str, Any]]:
    return [
        json.loads(r.body)
        for r in finance_write_requests(sandbox, "ProjectContractLineMilestones")
        if r.method in ("POST", "PATCH")
    ]


MILESTONE_KEY = {"dataAreaId": "usmf", "ContractLineMilestoneIdentifier": MILESTONE}


async def test_milestone_lands_with_its_amount_and_ready_for_invoicing_stays_to_be_invoiced(project: Sandbox) -> None:
    await create_milestone(project, 192350000)
    row = landed(project, "ProjectContractLineMilestones", **MILESTONE_KEY)
    assert (row["Amount"], row["CurrencyCode"], row["Description"]) == (Decimal("25000.10"), "USD", "Go-live")
    assert (row["ContractLineId"], row["ProjectNumber"], row["ContractLineMilestoneGuid"]) == (
        ORDER_LINE_ID,
        "PRJ-1001",
        MILESTONE,
    )
    assert row["TransactionDate"] == datetime(2027, 1, 31, 12, tzinfo=UTC)

    await dataverse(project, "PATCH", f"msdyn_contractlinescheduleofvalues({MILESTONE})", {"msdyn_amount": 26000})
    await dataverse(
        project, "PATCH", f"msdyn_contractlinescheduleofvalues({MILESTONE})", {"msdyn_invoicestatus": 192350001}
    )
    assert landed(project, "ProjectContractLineMilestones", **MILESTONE_KEY)["Amount"] == Decimal("26000")
    # Outside the cutover the invoice status is not Finance's to receive: marking it invoiced would
    # mean the milestone is never billed there.
    assert all("TransStatus" not in body for body in milestone_writes(project))
    assert methods(project, "ProjectContractLineMilestones") == ["POST", "PATCH"]

    await dataverse(project, "DELETE", f"msdyn_contractlinescheduleofvalues({MILESTONE})")
    assert project.finance.get("ProjectContractLineMilestones", **MILESTONE_KEY) is None
    assert finance_writes(project, "ProjectContractLineMilestones")[-1] == (
        "DELETE",
        f"/data/ProjectContractLineMilestones(dataAreaId='usmf',ContractLineMilestoneIdentifier='{MILESTONE}')",
    )


@pytest.mark.parametrize("options", [SandboxOptions(extra_settings={"milestone_invoiced_cutover": True})])
async def test_milestone_cutover_sends_the_invoice_status_value_map(project: Sandbox) -> None:
    await create_milestone(project, 192350000)
    assert landed(project, "ProjectContractLineMilestones", **MILESTONE_KEY)["TransStatus"] == "NoStatus"
    await dataverse(
        project, "PATCH", f"msdyn_contractlinescheduleofvalues({MILESTONE})", {"msdyn_invoicestatus": 192350001}
    )
    assert landed(project, "ProjectContractLineMilestones", **MILESTONE_KEY)["TransStatus"] == "Invoiced"
    # ProjTransStatus members by name, as OData takes them: 0 is NoStatus, 4 Invoiced.
    assert [body.get("TransStatus") for body in milestone_writes(project)] == ["NoStatus", "Invoiced"]


async def test_milestone_waits_for_its_contract_line_which_finance_finds_by_its_line_id(project: Sandbox) -> None:
    from functions import contract_lines
    from shared.operations.pause import pause, resume

    assert project.runtime is not None and project.runtime.switch is not None
    await pause(project.runtime.switch, contract_lines.MAP)  # the line is held back
    line = "c0a1e000-0000-4000-8000-0000000c1d01"
    fixed_price_line = {
        "salesorderdetailid": line,
        "productdescription": "Go-live, fixed price",
        "sequencenumber": 2,
        "msdyn_billingmethod": 192350001,
        "salesorderid@odata.bind": f"/salesorders({ORDER_ID})",
        "msdyn_owningcompany@odata.bind": COMPANY,
    }
    milestone = {
        "msdyn_contractlinescheduleofvalueid": MILESTONE,
        "msdyn_name": "Go-live",
        "msdyn_amount": Decimal("9000.00"),
        "msdyn_contractlineid@odata.bind": f"/salesorderdetails({line})",
        "msdyn_project@odata.bind": PROJECT,
    }
    async with project.person_dataverse() as dv:
        await send(dv, "POST", "salesorderdetails", fixed_price_line)
        await send(dv, "POST", "msdyn_contractlinescheduleofvalues", milestone)
    await until(lambda: FIGURES.flows["contract-milestones"].retried >= 1)
    assert project.finance.rows("ProjectContractLineMilestones") == []
    # The check is a filter on ContractLineId: it is not the contract line's key in Finance.
    checks = [r for r in project.finance.requests if r.method == "GET" and r.path == "/data/ProjectContractLines"]
    assert checks and all(f"ContractLineId eq '{line}'" in parse_qs(r.query)["$filter"][0] for r in checks)

    await resume(project.runtime.switch, contract_lines.MAP)
    await project.wait_quiet()
    row = landed(project, "ProjectContractLineMilestones", **MILESTONE_KEY)
    assert (row["ContractLineId"], row["Amount"]) == (line, Decimal("9000.00"))
    assert await parked(project) == []


async def test_hour_estimate_amounts_are_exact_and_follow_changes(project: Sandbox) -> None:
    assignment, resource = "c0a1e000-0000-4000-8000-0000000b1101", "c0a1e000-0000-4000-8000-0000000b1102"
    await create_task(project, TASK, "A-100", "Build")
    await dataverse(project, "POST", "bookableresources", {"bookableresourceid": resource, "name": "Architect"})
    await dataverse(
        project,
        "POST",
        "msdyn_resourceassignments",
        {
            "msdyn_resourceassignmentid": assignment,
            "msdyn_name": "Generic architect",
            "msdyn_effort": Decimal("37.5"),
            "msdyn_plannedcost": Decimal("3375.00"),
            "msdyn_plannedsales": Decimal("5625.01"),
            "msdyn_start": "2026-12-07T08:00:00Z",
            "msdyn_finish": "2026-12-11T17:00:00Z",
            "msdyn_projectid@odata.bind": PROJECT,
            "msdyn_taskid@odata.bind": f"/msdyn_projecttasks({TASK})",
            "msdyn_bookableresourceid@odata.bind": f"/bookableresources({resource})",
            "transactioncurrencyid@odata.bind": f"/transactioncurrencies({USD_ID})",
        },
    )
    key = {"dataAreaId": "usmf", "EstimateHoursImportId": assignment}
    row = landed(project, "ProjEstimateHoursImport", **key)
    assert (row["Duration"], row["PlannedCostAmount"], row["PlannedSalesAmount"]) == (
        Decimal("37.5"),
        Decimal("3375.00"),
        Decimal("5625.01"),
    )
    assert (row["ProjectId"], row["ActivityNumber"], row["ProjCDSResourceId"]) == ("PRJ-1001", "A-100", resource)
    assert row["StartDate"] == datetime(2026, 12, 7, 12, tzinfo=UTC)
    # The staging entity has no end date, exchange rate or currency: none is sent.
    [created] = [json.loads(r.body) for r in finance_write_requests(project, "ProjEstimateHoursImport")]
    assert not {"EndDate", "ExchangeRate", "CurrencyId"} & set(created)
    await dataverse(project, "PATCH", f"msdyn_resourceassignments({assignment})", {"msdyn_effort": Decimal("40")})
    assert landed(project, "ProjEstimateHoursImport", **key)["Duration"] == Decimal("40")
    await dataverse(project, "DELETE", f"msdyn_resourceassignments({assignment})")
    assert project.finance.get("ProjEstimateHoursImport", **key) is None
    # The key is an Edm.Guid: bare in the URL.
    url = f"/data/ProjEstimateHoursImport(dataAreaId='usmf',EstimateHoursImportId={assignment})"
    assert finance_writes(project, "ProjEstimateHoursImport") == [
        ("POST", "/data/ProjEstimateHoursImport"),
        ("PATCH", url),
        ("DELETE", url),
    ]


async def test_estimate_lines_split_by_class_with_their_value_maps(project: Sandbox) -> None:
    cost, sales, material, time_line = (f"c0a1e000-0000-4000-8000-0000000e100{n}" for n in range(1, 5))
    category = {"msdyn_transactioncategory@odata.bind": f"/msdyn_transactioncategories({CATEGORY_ID})"}
    await create_task(project, TASK, "A-100", "Build")
    await dataverse(project, "POST", "products", {"msdyn_productnumber": "D0002", "name": "Cable"})
    for body in (
        estimate_line(cost, 192350001, 192350000, TASK, **category),
        estimate_line(sales, 192350001, 192350005, msdyn_billingtype=192350002, **category),
        estimate_line(
            material,
            192350002,
            192350000,
            TASK,
            **{"msdyn_product@odata.bind": "/products(msdyn_productnumber='D0002')"},
        ),
        estimate_line(time_line, 192350000, 192350000),
    ):
        await dataverse(project, "POST", "msdyn_estimatelines", body)

    expenses = {r["EstimateExpensesImportId"]: r for r in project.finance.rows("ProjEstimateExpensesImports")}
    assert set(expenses) == {cost, sales}
    assert all(r["EstimateLineId"] == line for line, r in expenses.items())
    assert (expenses[cost]["TransType"], expenses[cost]["BillingType"]) == ("Cost", "Chargeable")
    assert (expenses[sales]["TransType"], expenses[sales]["BillingType"]) == ("Sales", "Complimentary")
    assert expenses[cost]["TransactionCategoryId"] == "TCN-0000001000" and expenses[cost]["Price"] == Decimal("350.00")
    assert (expenses[cost]["ActivityNumber"], expenses[cost]["ProjectId"], expenses[cost]["CurrencyId"]) == (
        "A-100",
        "PRJ-1001",
        "USD",
    )
    assert expenses[sales]["ActivityNumber"] == ""  # no task
    materials = {r["ImportId"]: r for r in project.finance.rows("ProjForecastSalesImport")}
    assert set(materials) == {material}
    item = materials[material]
    assert (item["ItemId"], item["ForecastLineId"], item["ItemDescription"]) == ("D0002", material, "Estimate")
    assert (item["SalesQty"], item["ProjId"], item["Currency"], item["ActivityNumber"]) == (
        Decimal("2"),
        "PRJ-1001",
        "USD",
        "A-100",
    )

    await dataverse(project, "PATCH", f"msdyn_estimatelines({cost})", {"msdyn_quantity": Decimal("3.25")})
    expense_key = {"dataAreaId": "usmf", "EstimateExpensesImportId": cost}
    assert landed(project, "ProjEstimateExpensesImports", **expense_key)["Quantity"] == Decimal("3.25")
    await dataverse(project, "PATCH", f"msdyn_estimatelines({material})", {"msdyn_price": Decimal("12.34")})
    material_key = {"dataAreaId": "usmf", "ImportId": material}
    assert landed(project, "ProjForecastSalesImport", **material_key)["Price"] == Decimal("12.34")
    for line in (material, sales):
        await dataverse(project, "DELETE", f"msdyn_estimatelines({line})")
    assert project.finance.rows("ProjForecastSalesImport") == []
    assert [r["EstimateExpensesImportId"] for r in project.finance.rows("ProjEstimateExpensesImports")] == [cost]
    assert methods(project, "ProjForecastSalesImport") == ["POST", "PATCH", "DELETE"]
    assert methods(project, "ProjEstimateExpensesImports") == ["POST", "POST", "PATCH", "DELETE"]
    assert finance_writes(project, "ProjForecastSalesImport")[-1] == (
        "DELETE",
        f"/data/ProjForecastSalesImport(dataAreaId='usmf',ImportId={material})",
    )


async def test_transaction_connection_lands_and_goes(project: Sandbox) -> None:
    connection, one, two = (f"c0a1e000-0000-4000-8000-0000000c2f0{n}" for n in range(1, 4))
    body = {
        "msdyn_transactionconnectionid": connection,
        "msdyn_transaction1": one,
        "msdyn_transaction1role": "Billed Sales",
        "msdyn_transaction1type": "msdyn_invoicelinetransaction",
        "msdyn_transaction2": two,
        "msdyn_transaction2role": "Unbilled Sales",
        "msdyn_transaction2type": "msdyn_actual",
    }
    await dataverse(project, "POST", "msdyn_transactionconnections", body)
    row = project.finance.get("ProjectTransactionRelationships", ConnectionId=connection)
    assert row is not None
    assert (row["Transaction1Id"], row["Transaction1Type"], row["Transaction2Id"]) == (
        one,
        "msdyn_invoicelinetransaction",
        two,
    )
    await dataverse(
        project, "PATCH", f"msdyn_transactionconnections({connection})", {"msdyn_transaction2role": "Original"}
    )
    assert landed(project, "ProjectTransactionRelationships", ConnectionId=connection)["Transaction2Role"] == "Original"
    await dataverse(project, "DELETE", f"msdyn_transactionconnections({connection})")
    assert project.finance.get("ProjectTransactionRelationships", ConnectionId=connection) is None
    assert methods(project, "ProjectTransactionRelationships") == ["POST", "PATCH", "DELETE"]


async def test_invoice_proposal_only_once_confirmed_and_never_deleted_from_dataverse(project: Sandbox) -> None:
    invoice = "c0a1e000-0000-4000-8000-0000000c2001"
    await dataverse(
        project,
        "POST",
        "invoices",
        {
            "invoiceid": invoice,
            "invoicenumber": "INV-01100-X5Y6Z7",  # the CE invoice id, not Finance's
            "msdyn_invoicenumber": "PINV-0100",
            "name": "December",
            "msdyn_invoicedate": "2026-12-31",
            "msdyn_ordertype": 192350001,
            "msdyn_projectinvoicestatus": 192350000,
            "paymenttermscode": 4,
            "salesorderid@odata.bind": f"/salesorders({ORDER_ID})",
            "customerid@odata.bind": f"/accounts({CUSTOMER_ID})",
            "transactioncurrencyid@odata.bind": f"/transactioncurrencies({USD_ID})",
        },
    )
    assert project.finance.rows("ProjectInvoiceProposalsV2") == []  # a draft stays in Dataverse

    await dataverse(project, "PATCH", f"invoices({invoice})", {"msdyn_projectinvoicestatus": 192350002})
    row = project.finance.get("ProjectInvoiceProposalsV2", dataAreaId="usmf", InvoiceProposalId="PINV-0100")
    assert row is not None
    assert (row["ProjectContractId"], row["FundingSourceId"], row["SalesCurrency"]) == ("ORD-1001", "US-001", "USD")
    assert (row["TermsOfPayment"], row["InvoiceHeaderText"], row["InvoiceDate"].isoformat()) == (
        "Net60",
        "December",
        "2026-12-31T12:00:00+00:00",
    )

    # A confirmed proforma's header text corrected in Dataverse is corrected on the proposal.
    await dataverse(project, "PATCH", f"invoices({invoice})", {"name": "December, corrected"})
    key = {"dataAreaId": "usmf", "InvoiceProposalId": "PINV-0100"}
    assert landed(project, "ProjectInvoiceProposalsV2", **key)["InvoiceHeaderText"] == "December, corrected"

    await dataverse(project, "DELETE", f"invoices({invoice})")
    assert project.finance.get("ProjectInvoiceProposalsV2", **key)
    assert methods(project, "ProjectInvoiceProposalsV2") == ["POST", "PATCH"]
    assert await parked(project) == []


async def test_only_worker_linked_resources_reach_finance(project: Sandbox) -> None:
    async with project.person_finance() as fo:
        await send(fo, "POST", "Workers", {"PersonnelNumber": "000777", "FirstName": "Kim", "Name": "Kim Abercrombie"})
    await project.wait_quiet()
    linked, crew = "c0a1e000-0000-4000-8000-0000000b2001", "c0a1e000-0000-4000-8000-0000000b2002"
    await dataverse(
        project,
        "POST",
        "bookableresources",
        {
            "bookableresourceid": linked,
            "name": "Kim Abercrombie",
            "resourcetype": 3,
            "msdyn_worker@odata.bind": "/cdm_workers(cdm_workernumber='000777')",
        },
    )
    await dataverse(
        project, "POST", "bookableresources", {"bookableresourceid": crew, "name": "Crew", "resourcetype": 6}
    )
    rows = project.finance.rows("WorkerResourceImports")
    assert [(r["ProjCDSResourceId"], r["PersonnelNumber"]) for r in rows] == [(linked, "000777")]
    assert json.loads(finance_write_requests(project, "WorkerResourceImports")[0].body) == {
        "ProjCDSResourceId": linked,
        "PersonnelNumber": "000777",
    }
    # Finance's worker resource has no name: renaming the resource is not Finance's business.
    await dataverse(project, "PATCH", f"bookableresources({linked})", {"name": "Kim A."})
    await dataverse(project, "DELETE", f"bookableresources({linked})")
    assert landed(project, "WorkerResourceImports", ProjCDSResourceId=linked)  # Finance keeps its worker resource
    assert methods(project, "WorkerResourceImports") == ["POST"]


async def test_contract_header_and_its_time_and_material_line_follow_changes(project: Sandbox) -> None:
    header_key = {"dataAreaId": "usmf", "ProjectContractId": "ORD-1001"}
    # Finance keys a contract line by its contract and line number; the Dataverse id is a plain field.
    line_key = {"dataAreaId": "usmf", "ProjectContractId": "ORD-1001", "LineSequenceNumber": 1}
    line = landed(project, "ProjectContractLines", **line_key)
    assert (line["ContractLineId"], line["BillingMethod"], line["LineType"]) == (ORDER_LINE_ID, "TimeMaterial", "TAndM")
    assert (line["AreHourTransactionsIncluded"], line["AreExpenseTransactionsIncluded"]) == ("Yes", "Yes")
    assert line["AreItemTransactionsIncluded"] == "No"

    await dataverse(
        project, "PATCH", f"salesorders({ORDER_ID})", {"name": "ERP rollout, phase 2", "paymenttermscode": 4}
    )
    header = landed(project, "ProjectContractHeaders", **header_key)
    assert (header["Name"], header["TermsOfPayment"]) == ("ERP rollout, phase 2", "Net60")

    await dataverse(
        project,
        "PATCH",
        f"salesorderdetails({ORDER_LINE_ID})",
        {"msdyn_includematerial": True, "priceperunit": Decimal("1250.50")},
    )
    line = landed(project, "ProjectContractLines", **line_key)
    assert (line["AreItemTransactionsIncluded"], line["UnitPrice"]) == ("Yes", Decimal("1250.50"))

    await dataverse(project, "DELETE", f"salesorderdetails({ORDER_LINE_ID})")
    assert project.finance.get("ProjectContractLines", **line_key) is None
    # LineSequenceNumber is an Edm.Int32 key part: bare in the URL.
    url = "/data/ProjectContractLines(dataAreaId='usmf',ProjectContractId='ORD-1001',LineSequenceNumber=1)"
    assert finance_writes(project, "ProjectContractLines") == [
        ("POST", "/data/ProjectContractLines"),
        ("PATCH", url),
        ("DELETE", url),
    ]
    assert methods(project, "ProjectContractHeaders") == ["POST", "PATCH"]


async def test_actual_carries_its_contract_and_funding_source_as_microsofts_map_reads_them(project: Sandbox) -> None:
    """Microsoft's stored actuals map reads both through the actual's funding source: CONTRACTID <
    msdyn_projectcontractsplitbillingrule.msdyn_projectcontractid.msdyn_salesordernumber, and
    FUNDINGSOURCE < msdyn_projectcontractsplitbillingrule.msdyn_projectcontractsplitbillingrulenumber."""
    rule = "c0a1e000-0000-4000-8000-0000000f1002"
    await dataverse(
        project,
        "POST",
        "msdyn_projectcontractsplitbillingrules",
        {
            "msdyn_projectcontractsplitbillingruleid": rule,
            "msdyn_projectcontractsplitbillingrulenumber": "FS-0042",
            "msdyn_billingsplitpercent": Decimal("100"),
            "msdyn_projectcontractid@odata.bind": f"/salesorders({ORDER_ID})",
            "msdyn_customer@odata.bind": f"/accounts({CUSTOMER_ID})",
            "msdyn_owningcompany@odata.bind": COMPANY,
        },
    )
    body = actual_body(
        "c0a1e000-0000-4000-8000-0000000b3001", "ACT-7001", classification=192350000, quantity="2", price="187.50"
    )
    body["msdyn_transactiontypecode"] = 192350005  # unbilled sales
    body["msdyn_projectcontractsplitbillingrule@odata.bind"] = f"/msdyn_projectcontractsplitbillingrules({rule})"
    await dataverse(project, "POST", "msdyn_actuals", body)
    row = landed(project, "ProjActualsImports", dataAreaId="usmf", ActualsImportId=import_id("ACT-7001"))
    assert (row["ContractId"], row["FundingSource"], row["TransactionType"], row["TransactionClassification"]) == (
        "ORD-1001",
        "FS-0042",
        "Sales",
        192350000,
    )
    assert row["Amount"] == Decimal("375.00")


async def test_a_sales_order_line_without_billing_method_is_no_billing_rule_and_waits_for_nothing(
    project: Sandbox,
) -> None:
    order, line = "c0a1e000-0000-4000-8000-0000000d0d01", "c0a1e000-0000-4000-8000-0000000d0d02"
    # The setup's own line may have waited for its header; only this order's events count.
    retried_before = FIGURES.flows["contract-lines"].retried
    filtered = {flow: FIGURES.flows[flow].skipped["filtered"] for flow in ("contract-headers", "contract-lines")}
    await dataverse(
        project,
        "POST",
        "salesorders",
        {
            "salesorderid": order,
            "ordernumber": "SO-3001",
            "msdyn_salesordernumber": "SO-3001",
            "name": "Spare parts",
            "msdyn_ordertype": 192350000,
            "customerid@odata.bind": f"/accounts({CUSTOMER_ID})",
            "msdyn_owningcompany@odata.bind": COMPANY,
        },
    )
    await dataverse(
        project,
        "POST",
        "salesorderdetails",
        {
            "salesorderdetailid": line,
            "productdescription": "Cable, 10 m",
            "quantity": Decimal("4"),
            "priceperunit": Decimal("12.50"),
            "salesorderid@odata.bind": f"/salesorders({order})",
            "msdyn_owningcompany@odata.bind": COMPANY,
        },
    )
    assert [r for r in project.finance.rows("ProjectContractLines") if r["ContractLineId"] == line] == []
    assert methods(project, "ProjectContractLines") == ["POST"]  # only the project's own line, at setup
    assert FIGURES.flows["contract-lines"].retried == retried_before
    assert await parked(project) == []
    # Both events did arrive and were filtered out (an item-based order), rather than never sent.
    assert {flow: FIGURES.flows[flow].skipped["filtered"] - count for flow, count in filtered.items()} == {
        "contract-headers": 1,
        "contract-lines": 1,
    }
