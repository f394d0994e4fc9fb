"""The demo's planning and billing part: what a project manager does in Dataverse after the project exists.

Funding the contract, breaking the work down, estimating hours, expenses and material, a fixed-price
milestone, linking actuals, confirming a proforma invoice and naming the worker behind a resource;
each reaches Finance through its own flow, and each expectation reads Finance to prove it.
"""

from __future__ import annotations

from decimal import Decimal

from sandbox.demo_data import (
    CATEGORY_ID,
    CUSTOMER_ID,
    EXPENSE_ACTUAL_ID,
    ORDER_ID,
    PROJECT_ID,
    RESOURCE_ID,
    TIME_ACTUAL_ID,
    USD_ID,
    USMF_ID,
    Expectation,
    call,
)
from sandbox.environment import Sandbox

FUNDING_ID = "c0a1e000-0000-4000-8000-0000000f0001"
TASK_ID = "c0a1e000-0000-4000-8000-0000000b0001"
SUBTASK_ID = "c0a1e000-0000-4000-8000-0000000b0002"
# Finance knows tasks by activity number: the estimates name their task by it.
TASK_NUMBER, SUBTASK_NUMBER = "A-0001", "A-0002"
ASSIGNMENT_ID = "c0a1e000-0000-4000-8000-0000000b0101"
EXPENSE_ESTIMATE_ID = "c0a1e000-0000-4000-8000-0000000e0001"
MATERIAL_ESTIMATE_ID = "c0a1e000-0000-4000-8000-0000000e0002"
TIME_ESTIMATE_ID = "c0a1e000-0000-4000-8000-0000000e0003"
PRODUCT_ID = "c0a1e000-0000-4000-8000-0000000d0001"
FIXED_PRICE_LINE_ID = "c0a1e000-0000-4000-8000-0000000c0d03"
MILESTONE_ID = "c0a1e000-0000-4000-8000-0000000c0e01"
CONNECTION_ID = "c0a1e000-0000-4000-8000-0000000c0f01"
INVOICE_ID = "c0a1e000-0000-4000-8000-0000000c1001"
WORKER_NUMBER = "000042"

PROJECT = f"/msdyn_projects({PROJECT_ID})"
COMPANY = f"/cdm_companies({USMF_ID})"
CURRENCY = f"/transactioncurrencies({USD_ID})"


def estimate_line(
    line_id: str, classification: int, transaction_type: int, task: str | None = None, **extra: object
) -> dict[str, object]:
    if task is not None:
        extra["msdyn_task@odata.bind"] = f"/msdyn_projecttasks({task})"
    return {
        "msdyn_estimatelineid": line_id,
        "msdyn_description": "Estimate",
        "msdyn_transactionclassification": classification,
        "msdyn_transactiontypecode": transaction_type,
        "msdyn_billingtype": 192350001,
        "msdyn_quantity": Decimal("2"),
        "msdyn_price": Decimal("350.00"),
        "msdyn_startdatetime": "2026-12-01T08:00:00Z",
        "msdyn_project@odata.bind": PROJECT,
        "transactioncurrencyid@odata.bind": CURRENCY,
        **extra,
    }


async def plan_and_bill(sandbox: Sandbox) -> None:
    """Needs the project, its contract and worker 000042 in Dataverse (the main scenario's work)."""
    async with sandbox.person_dataverse() as dv:
        await call(
            dv,
            "post",
            "msdyn_projectcontractsplitbillingrules",
            {
                "msdyn_projectcontractsplitbillingruleid": FUNDING_ID,
                "msdyn_projectcontractsplitbillingrulenumber": "FS-1001",
                "msdyn_name": "Forest Wholesales",
                "msdyn_billingsplitpercent": Decimal("100"),
                "msdyn_isprimary": True,
                "msdyn_paymentterms": 2,
                "msdyn_projectcontractid@odata.bind": f"/salesorders({ORDER_ID})",
                "msdyn_customer@odata.bind": f"/accounts({CUSTOMER_ID})",
                "msdyn_owningcompany@odata.bind": COMPANY,
            },
        )
        await call(
            dv,
            "post",
            "msdyn_projecttasks",
            {
                "msdyn_projecttaskid": TASK_ID,
                "msdyn_activitynumber": TASK_NUMBER,
                "msdyn_subject": "Design",
                "msdyn_outlinelevel": 1,
                "msdyn_displaysequence": Decimal("1"),
                "msdyn_project@odata.bind": PROJECT,
            },
        )
        await call(
            dv,
            "post",
            "msdyn_projecttasks",
            {
                "msdyn_projecttaskid": SUBTASK_ID,
                "msdyn_activitynumber": SUBTASK_NUMBER,
                "msdyn_subject": "Solution blueprint",
                "msdyn_outlinelevel": 2,
                "msdyn_displaysequence": Decimal("2"),
                "msdyn_project@odata.bind": PROJECT,
                "msdyn_parenttask@odata.bind": f"/msdyn_projecttasks({TASK_ID})",
            },
        )
        await call(
            dv,
            "post",
            "bookableresources",
            {
                "bookableresourceid": RESOURCE_ID,
                "name": "Ana Bowman",
                "resourcetype": 3,
                "msdyn_worker@odata.bind": f"/cdm_workers(cdm_workernumber='{WORKER_NUMBER}')",
            },
        )
        await call(dv, "post", "products", {"productid": PRODUCT_ID, "msdyn_productnumber": "D0001", "name": "Speaker"})
    await sandbox.wait_quiet()

    async with sandbox.person_dataverse() as dv:
        await call(
            dv,
            "post",
            "msdyn_resourceassignments",
            {
                "msdyn_resourceassignmentid": ASSIGNMENT_ID,
                "msdyn_name": "Ana on design",
                "msdyn_effort": Decimal("40"),
                "msdyn_plannedcost": Decimal("4000.00"),
                "msdyn_plannedsales": Decimal("6000.00"),
                "msdyn_start": "2026-12-01T08:00:00Z",
                "msdyn_finish": "2026-12-05T17:00:00Z",
                "msdyn_projectid@odata.bind": PROJECT,
                "msdyn_taskid@odata.bind": f"/msdyn_projecttasks({TASK_ID})",
                "msdyn_bookableresourceid@odata.bind": f"/bookableresources({RESOURCE_ID})",
                "transactioncurrencyid@odata.bind": CURRENCY,
            },
        )
        for line in (
            estimate_line(
                EXPENSE_ESTIMATE_ID,
                192350001,
                192350000,
                TASK_ID,
                **{"msdyn_transactioncategory@odata.bind": f"/msdyn_transactioncategories({CATEGORY_ID})"},
            ),
            estimate_line(
                MATERIAL_ESTIMATE_ID, 192350002, 192350005, **{"msdyn_product@odata.bind": f"/products({PRODUCT_ID})"}
            ),
            estimate_line(TIME_ESTIMATE_ID, 192350000, 192350000),
        ):
            await call(dv, "post", "msdyn_estimatelines", line)
        await call(
            dv,
            "post",
            "salesorderdetails",
            {
                "salesorderdetailid": FIXED_PRICE_LINE_ID,
                "productdescription": "Design, fixed price",
                "sequencenumber": 2,
                "msdyn_billingmethod": 192350001,
                "salesorderid@odata.bind": f"/salesorders({ORDER_ID})",
                "msdyn_owningcompany@odata.bind": COMPANY,
            },
        )
        await call(
            dv,
            "post",
            "msdyn_contractlinescheduleofvalues",
            {
                "msdyn_contractlinescheduleofvalueid": MILESTONE_ID,
                "msdyn_name": "Design sign-off",
                "msdyn_amount": Decimal("12000.00"),
                "msdyn_invoicedate": "2026-12-15T00:00:00Z",
                "msdyn_invoicestatus": 192350000,
                "msdyn_contractlineid@odata.bind": f"/salesorderdetails({FIXED_PRICE_LINE_ID})",
                "msdyn_project@odata.bind": PROJECT,
                "transactioncurrencyid@odata.bind": CURRENCY,
            },
        )
        await call(
            dv,
            "post",
            "msdyn_transactionconnections",
            {
                "msdyn_transactionconnectionid": CONNECTION_ID,
                "msdyn_transaction1": TIME_ACTUAL_ID,
                "msdyn_transaction1role": "Unbilled Sales",
                "msdyn_transaction1type": "msdyn_actual",
                "msdyn_transaction2": EXPENSE_ACTUAL_ID,
                "msdyn_transaction2role": "Cost",
                "msdyn_transaction2type": "msdyn_actual",
            },
        )
        await call(
            dv,
            "post",
            "invoices",
            {
                "invoiceid": INVOICE_ID,
                "invoicenumber": "INV-01001-X5Y6Z7",
                "msdyn_invoicenumber": "PINV-0001",
                "name": "ERP rollout, November",
                "msdyn_invoicedate": "2026-11-30",
                "msdyn_ordertype": 192350001,
                "msdyn_projectinvoicestatus": 192350000,
                "paymenttermscode": 1,
                "salesorderid@odata.bind": f"/salesorders({ORDER_ID})",
                "customerid@odata.bind": f"/accounts({CUSTOMER_ID})",
                "transactioncurrencyid@odata.bind": CURRENCY,
            },
        )
    await sandbox.wait_quiet()

    async with sandbox.person_dataverse() as dv:
        # The milestone becomes ready for invoicing; the project manager confirms the proforma invoice.
        await call(
            dv, "patch", f"msdyn_contractlinescheduleofvalues({MILESTONE_ID})", {"msdyn_invoicestatus": 192350001}
        )
        await call(dv, "patch", f"invoices({INVOICE_ID})", {"msdyn_projectinvoicestatus": 192350002})
    await sandbox.wait_quiet()


def planning_expectations(sandbox: Sandbox) -> list[Expectation]:
    fo = sandbox.finance

    async def funding() -> str | None:
        row = fo.get(
            "ProjectFundingSources", dataAreaId="usmf", ProjectContractID="ORD-1001", FundingSourceId="FS-1001"
        )
        ok = row and row["TermsOfPayment"] == "2%10Net30" and row["IsPrimaryFundingSource"] == "Yes"
        return None if ok else f"funding source FS-1001 of ORD-1001: {row}"

    async def tasks() -> str | None:
        row = fo.get("ProjectTasks", dataAreaId="usmf", ProjectId="PRJ-1001", TaskId=SUBTASK_NUMBER)
        ok = row and row["ParentTaskElementId"] == TASK_ID and row["TaskElementId"] == SUBTASK_ID
        return None if ok else f"task {SUBTASK_NUMBER} of PRJ-1001: {row}"

    async def hours() -> str | None:
        row = fo.get("ProjEstimateHoursImport", dataAreaId="usmf", EstimateHoursImportId=ASSIGNMENT_ID)
        ok = row and row["Duration"] == Decimal("40") and row["PlannedSalesAmount"] == Decimal("6000.00")
        ok = ok and row and (row["ProjCDSResourceId"], row["ActivityNumber"]) == (RESOURCE_ID, TASK_NUMBER)
        return None if ok else f"hour estimate: {row}"

    async def expenses() -> str | None:
        row = fo.get("ProjEstimateExpensesImports", dataAreaId="usmf", EstimateExpensesImportId=EXPENSE_ESTIMATE_ID)
        others = [
            r["EstimateExpensesImportId"]
            for r in fo.rows("ProjEstimateExpensesImports")
            if r["EstimateExpensesImportId"] != EXPENSE_ESTIMATE_ID
        ]
        ok = row and (row["TransType"], row["BillingType"], row["Price"]) == ("Cost", "Chargeable", Decimal("350.00"))
        ok = ok and row and row["ActivityNumber"] == TASK_NUMBER
        return None if ok and not others else f"expense estimates: {row}, others {others}"

    async def material() -> str | None:
        row = fo.get("ProjForecastSalesImport", dataAreaId="usmf", ImportId=MATERIAL_ESTIMATE_ID)
        count = len(fo.rows("ProjForecastSalesImport"))
        ok = row and row["TransType"] == "Sales" and row["ItemId"] == "D0001" and count == 1
        return None if ok and row and row["SalesQty"] == Decimal("2") else f"material estimates ({count}): {row}"

    async def milestone() -> str | None:
        key = {"dataAreaId": "usmf", "ContractLineMilestoneIdentifier": MILESTONE_ID}
        row = fo.get("ProjectContractLineMilestones", **key)
        # Ready for invoicing in Dataverse; still to be invoiced in Finance (Invoiced is for the cutover).
        ok = row and row["Amount"] == Decimal("12000.00") and row["TransStatus"] != "Invoiced"
        return None if ok and row and row["ContractLineId"] == FIXED_PRICE_LINE_ID else f"milestone: {row}"

    async def connection() -> str | None:
        row = fo.get("ProjectTransactionRelationships", ConnectionId=CONNECTION_ID)
        ok = row and row["Transaction1Id"] == TIME_ACTUAL_ID and row["Transaction2Role"] == "Cost"
        return None if ok else f"transaction relationship: {row}"

    async def invoice() -> str | None:
        row = fo.get("ProjectInvoiceProposalsV2", dataAreaId="usmf", InvoiceProposalId="PINV-0001")
        ok = row and row["ProjectContractId"] == "ORD-1001" and row["FundingSourceId"] == "US-001"
        return None if ok and row and row["TermsOfPayment"] == "Net30" else f"invoice proposal PINV-0001: {row}"

    async def worker() -> str | None:
        row = fo.get("WorkerResourceImports", ProjCDSResourceId=RESOURCE_ID)
        return None if row and row["PersonnelNumber"] == WORKER_NUMBER else f"worker resource: {row}"

    return [
        Expectation("funding-sources", "funding source FS-1001 of US-001 funds ORD-1001, with terms", funding),
        Expectation("project-tasks", "the design task and its subtask in Finance, parent kept", tasks),
        Expectation("hour-estimates", "40 hours, 6,000.00 planned sales for Ana on design", hours),
        Expectation("expense-estimates", "the expense cost estimate, and no other class", expenses),
        Expectation("material-estimates", "the material sales estimate for item D0001, and no other", material),
        Expectation("contract-milestones", "the 12,000.00 milestone, left for Finance to invoice", milestone),
        Expectation("transaction-connections", "the time actual linked to the expense actual", connection),
        Expectation("invoice-proposals", "proforma PINV-0001 confirmed → proposal header in Finance", invoice),
        Expectation("worker-resources", "Ana's bookable resource with personnel number 000042", worker),
    ]
