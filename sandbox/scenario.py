"""The demo scenario: reference data, then people working in both apps, then what must have landed.

Every change is made over HTTP the way a user's app would make it, so the plug-in steps and Finance
events fire exactly as they would for real, and every expectation is checked by reading the other
system's data.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sandbox.demo_data import (
    CATEGORY_ID,
    CUSTOMER_GROUP_ID,
    CUSTOMER_ID,
    EXPENSE_ACTUAL_ID,
    ORDER_ID,
    ORDER_LINE_ID,
    PROJECT_ID,
    ROLE_ID,
    SKIPPED_ACTUAL_ID,
    TIME_ACTUAL_ID,
    USD_ID,
    USMF_ID,
    USPI_ID,
    Check,
    Expectation,
    ok,
    send,
)
from sandbox.demo_documents import create_vendor, document_expectations, expense_category, post_documents
from sandbox.demo_planning import plan_and_bill, planning_expectations
from sandbox.environment import Sandbox


@dataclass
class ScenarioResult:
    expectations: list[Expectation] = field(default_factory=list)

    @property
    def missing(self) -> list[Expectation]:
        return [e for e in self.expectations if e.problem is not None]


async def seed_reference_data(sandbox: Sandbox) -> None:
    """Prerequisite data both sides must already share (dual-write's prerequisite maps)."""
    async with sandbox.person_dataverse() as dv:
        for company_id, code, name in (
            (USMF_ID, "USMF", "Contoso Entertainment USA"),
            (USPI_ID, "USPI", "Contoso Consulting USA"),
        ):
            await ok(
                await send(
                    dv,
                    "post",
                    "cdm_companies",
                    {"cdm_companyid": company_id, "cdm_companycode": code, "cdm_name": name},
                )
            )
        await ok(
            await send(
                dv,
                "post",
                "transactioncurrencies",
                {"transactioncurrencyid": USD_ID, "isocurrencycode": "USD", "currencyname": "US Dollar"},
            )
        )
        await ok(
            await send(
                dv,
                "post",
                "accounts",
                {
                    "accountid": CUSTOMER_ID,
                    "accountnumber": "US-001",
                    "name": "Forest Wholesales",
                    "msdyn_company@odata.bind": f"/cdm_companies({USMF_ID})",
                },
            )
        )
        await ok(
            await send(
                dv,
                "post",
                "msdyn_transactioncategories",
                {
                    "msdyn_transactioncategoryid": CATEGORY_ID,
                    "msdyn_name": "Consulting hours",
                    "msdyn_transactioncategorynumber": "TCN-0000001000",
                },
            )
        )
        # The ledger's own prerequisites (chart of accounts, fiscal calendar, exchange rate types).
        await ok(await send(dv, "post", "msdyn_chartofaccountses", {"msdyn_name": "Shared"}))
        await ok(await send(dv, "post", "msdyn_fiscalcalendars", {"msdyn_calendar": "Fiscal"}))
        await ok(await send(dv, "post", "msdyn_exchangeratetypes", {"msdyn_name": "Default"}))
        # Customer group 30 of USMF, which a customer created from Dataverse names for Finance.
        await ok(
            await send(
                dv,
                "post",
                "msdyn_customergroups",
                {
                    "msdyn_customergroupid": CUSTOMER_GROUP_ID,
                    "msdyn_groupid": "30",
                    "msdyn_description": "Wholesale customers",
                    "msdyn_company@odata.bind": f"/cdm_companies({USMF_ID})",
                },
            )
        )
        # Vendor invoice lines' units (dual-write's Units map keeps them in Dataverse).
        await ok(await send(dv, "post", "uoms", {"name": "Hour", "msdyn_symbol": "h"}))
    async with sandbox.person_finance() as fo:
        for code, name in (("USMF", "Contoso Entertainment USA"), ("USPI", "Contoso Consulting USA (Finance)")):
            await ok(await send(fo, "post", "LegalEntities", {"LegalEntityId": code, "Name": name}))
        # Finance refuses a customer whose group it does not have.
        await ok(
            await send(
                fo,
                "post",
                "CustomerGroups",
                {"dataAreaId": "usmf", "CustomerGroupId": "30", "Description": "Wholesale customers"},
            )
        )
        await ok(
            await send(
                fo,
                "post",
                "CustomersV3",
                {
                    "dataAreaId": "usmf",
                    "CustomerAccount": "US-001",
                    "OrganizationName": "Forest Wholesales",
                    "PartyType": "Organization",
                    "CustomerGroupId": "30",
                },
            )
        )


def import_id(label: str) -> str:
    """The integration key of an actual: a Guid in Finance (ProjActualsImports.ActualsImportId is an
    Edm.Guid), made from a readable label so tests and the demo can name their actuals."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"projops-sync/actual/{label}"))


def actual_body(
    actual_id: str, label: str, *, classification: int, quantity: str, price: str, transition: bool = False
) -> dict[str, Any]:
    """A cost actual; `transition` makes it the unbilled sales of a transition, which Microsoft's
    actuals map leaves out."""
    amount = Decimal(quantity) * Decimal(price)
    return {
        "msdyn_actualid": actual_id,
        "msdyn_actualimportid": import_id(label),
        "msdyn_description": f"{'Time' if classification == 192350000 else 'Expense'} on the rollout",
        "msdyn_transactionclassification": classification,
        "msdyn_transactiontypecode": 192350005 if transition else 192350000,
        "msdyn_istransition": transition,
        "msdyn_billingtype": 192350001,
        "msdyn_quantity": Decimal(quantity),
        "msdyn_price": Decimal(price),
        "msdyn_amount": amount,
        "msdyn_transactiondate": "2026-11-02",
        "msdyn_project@odata.bind": f"/msdyn_projects({PROJECT_ID})",
        "msdyn_owningcompany@odata.bind": f"/cdm_companies({USMF_ID})",
        "transactioncurrencyid@odata.bind": f"/transactioncurrencies({USD_ID})",
        "msdyn_transactioncategory@odata.bind": f"/msdyn_transactioncategories({CATEGORY_ID})",
    }


async def create_project_setup(sandbox: Sandbox) -> None:
    """A role, a project-based contract with a time-and-material line, and its project, made in Dataverse."""
    async with sandbox.person_dataverse() as dv:
        # resource-roles: one Dataverse role becomes one Finance role per company in scope.
        await ok(
            await send(
                dv,
                "post",
                "bookableresourcecategories",
                {
                    "bookableresourcecategoryid": ROLE_ID,
                    "name": "Solution architect",
                    "msdyn_resourcecategorynumber": "ARCHITECT",
                },
            )
        )
        # contract-headers: the project's contract, project-based, for the same customer.
        await ok(
            await send(
                dv,
                "post",
                "salesorders",
                {
                    "salesorderid": ORDER_ID,
                    "ordernumber": "ORD-1001",
                    "msdyn_salesordernumber": "ORD-1001",
                    "name": "ERP rollout contract",
                    "msdyn_ordertype": 192350001,
                    "paymenttermscode": 1,
                    "customerid@odata.bind": f"/accounts({CUSTOMER_ID})",
                    "msdyn_owningcompany@odata.bind": f"/cdm_companies({USMF_ID})",
                },
            )
        )
        # contract-lines: a time-and-material line on that contract.
        await ok(
            await send(
                dv,
                "post",
                "salesorderdetails",
                {
                    "salesorderdetailid": ORDER_LINE_ID,
                    "productdescription": "Consulting, time and material",
                    "sequencenumber": 1,
                    "msdyn_billingmethod": 192350000,
                    "msdyn_includetime": True,
                    "msdyn_includeexpense": True,
                    "salesorderid@odata.bind": f"/salesorders({ORDER_ID})",
                    "msdyn_owningcompany@odata.bind": f"/cdm_companies({USMF_ID})",
                },
            )
        )
        # projects-v2
        await ok(
            await send(
                dv,
                "post",
                "msdyn_projects",
                {
                    "msdyn_projectid": PROJECT_ID,
                    "msdyn_projectnumber": "PRJ-1001",
                    "msdyn_subject": "ERP rollout",
                    "msdyn_scheduledstart": "2026-11-02T08:00:00Z",
                    "msdyn_actualstart": "2026-11-03T08:00:00Z",
                    "msdyn_OwningCompany@odata.bind": f"/cdm_companies({USMF_ID})",
                    "msdyn_customer@odata.bind": f"/accounts({CUSTOMER_ID})",
                    "msdyn_salesorderid@odata.bind": f"/salesorders({ORDER_ID})",
                    **({"cnt_costcenter": "cc-4100"} if extended(sandbox) else {}),
                },
            )
        )
    await sandbox.wait_quiet()


def extended(sandbox: Sandbox) -> bool:
    """Whether the demo runs with the customer's map extensions (`make sandbox` does)."""
    return sandbox.options.map_extensions is not None


async def run_scenario(sandbox: Sandbox) -> ScenarioResult:
    """Drive every flow, wait for quiet, and check what reached the other side."""
    result = ScenarioResult()
    await seed_reference_data(sandbox)

    await create_project_setup(sandbox)

    async with sandbox.person_dataverse() as dv:
        await ok(await send(dv, "patch", f"msdyn_projects({PROJECT_ID})", {"msdyn_subject": "ERP rollout, phase 1"}))
        # actuals: time and expense rows sync; a transition's unbilled sales do not (Microsoft's filter).
        await ok(
            await send(
                dv,
                "post",
                "msdyn_actuals",
                actual_body(TIME_ACTUAL_ID, "ACT-0001", classification=192350000, quantity="7.5", price="150.00"),
            )
        )
        await ok(
            await send(
                dv,
                "post",
                "msdyn_actuals",
                actual_body(EXPENSE_ACTUAL_ID, "ACT-0002", classification=192350001, quantity="1", price="42.75"),
            )
        )
        await ok(
            await send(
                dv,
                "post",
                "msdyn_actuals",
                actual_body(
                    SKIPPED_ACTUAL_ID,
                    "ACT-0003",
                    classification=192350000,
                    quantity="2",
                    price="150.00",
                    transition=True,
                ),
            )
        )
    await sandbox.wait_quiet()

    # vendors and vendor-accounts: purchasing sets up a subcontractor in Finance.
    await create_vendor(sandbox)
    # workers and customers: HR hires someone in Finance; sales adds a customer account in Dataverse.
    async with sandbox.person_finance() as fo:
        await ok(
            await send(
                fo,
                "post",
                "Workers",
                {
                    "PersonnelNumber": "000042",
                    "FirstName": "Ana",
                    "LastName": "Bowman",
                    "Name": "Ana Bowman",
                    **({"KnownAs": "Annie"} if extended(sandbox) else {}),
                },
            )
        )
    async with sandbox.person_dataverse() as dv:
        await ok(
            await send(
                dv,
                "post",
                "accounts",
                {
                    "accountnumber": "US-077",
                    "name": "Lakeshore Retail",
                    "customertypecode": 3,
                    "creditlimit": Decimal("15000.00"),
                    "msdyn_customergroupid@odata.bind": f"/msdyn_customergroups({CUSTOMER_GROUP_ID})",
                    "msdyn_company@odata.bind": f"/cdm_companies({USMF_ID})",
                },
            )
        )
    # exchange-rates: Finance's treasurer enters this month's rate.
    async with sandbox.person_finance() as fo:
        await ok(
            await send(
                fo,
                "post",
                "ExchangeRatesCDSEntity",
                {
                    "ExchangeRateTypeName": "Default",
                    "FromCurrencyCode": "EUR",
                    "ToCurrencyCode": "USD",
                    "Rate": Decimal("1.08375"),
                    "ValidFrom": "2026-11-01T12:00:00Z",
                    "ValidTo": "2026-11-30T12:00:00Z",
                },
            )
        )
    # Finance posts the staged actuals: the accounting write-back flows to Dataverse.
    await sandbox.finance.post_actuals()
    # expense-categories: a Finance user creates a category in USMF.
    async with sandbox.person_finance() as fo:
        await ok(await send(fo, "post", "ProjExpenseCategoriesExport", expense_category("usmf")))
    await sandbox.wait_quiet()

    await plan_and_bill(sandbox)
    await post_documents(sandbox)

    fo_sim, dv_sim = sandbox.finance, sandbox.dataverse

    def expect(flow: str, description: str, check: Check) -> None:
        result.expectations.append(Expectation(flow, description, check))

    async def roles() -> str | None:
        shared = [r["RoleId"] for r in fo_sim.rows("ResourceCategoriesShared")]
        # Finance makes the company-specific roles from the shared one.
        got = {(r["dataAreaId"].upper(), r["RoleId"]) for r in fo_sim.rows("ResourceCategories")}
        want = {("USMF", "ARCHITECT"), ("USPI", "ARCHITECT")}
        return None if shared == ["ARCHITECT"] and want <= got else f"Finance roles {shared}, per company {sorted(got)}"

    async def project() -> str | None:
        row = fo_sim.get("ProjectsV2", dataAreaId="usmf", ProjectId="PRJ-1001")
        if row is None:
            return "ProjectsV2 PRJ-1001 not in usmf"
        if row.get("ProjectContractId") != "ORD-1001":
            return f"ProjectsV2 PRJ-1001 is on contract {row.get('ProjectContractId')!r}, not ORD-1001"
        if row.get("ProjectName") != "ERP rollout, phase 1" or row.get("CustomerAccountNumber") != "US-001":
            return f"ProjectsV2 PRJ-1001 has {row.get('ProjectName')!r}, customer {row.get('CustomerAccountNumber')!r}"
        if extended(sandbox) and row.get("DimensionDisplayValue") != "CC-4100":
            return f"the map extension's cost centre reached Finance as {row.get('DimensionDisplayValue')!r}"
        return None

    async def actuals() -> str | None:
        time_row = fo_sim.get("ProjActualsImports", dataAreaId="usmf", ActualsImportId=import_id("ACT-0001"))
        expense_row = fo_sim.get("ProjActualsImports", dataAreaId="usmf", ActualsImportId=import_id("ACT-0002"))
        skipped = fo_sim.get("ProjActualsImports", dataAreaId="usmf", ActualsImportId=import_id("ACT-0003"))
        if time_row is None or expense_row is None:
            return "ACT-0001/ACT-0002 not staged"
        if time_row["Amount"] != Decimal("1125.00") or time_row["TransactionClassification"] != 192350000:
            return f"ACT-0001 staged as {time_row['Amount']} {time_row['TransactionClassification']}"
        if expense_row["Amount"] != Decimal("42.75") or expense_row["ProjectId"] != "PRJ-1001":
            return f"ACT-0002 staged as {expense_row['Amount']} for {expense_row['ProjectId']}"
        if skipped is not None:
            return "ACT-0003 is a transition's unbilled sales and must not be staged"
        return None

    async def write_back() -> str | None:
        row = dv_sim.get_row("msdyn_actual", TIME_ACTUAL_ID)
        if not row or not row.get("msdyn_vouchernumber"):
            return "msdyn_actual ACT-0001 has no voucher number"
        if row.get("msdyn_accountingamount") != Decimal("1125.00"):
            return f"msdyn_actual ACT-0001 accounting amount {row.get('msdyn_accountingamount')}"
        return None

    async def categories() -> str | None:
        rows = [r for r in dv_sim.rows("msdyn_expensecategory") if r.get("msdyn_name") == "Travel"]
        if len(rows) != 1:
            return f"{len(rows)} Dataverse expense categories named Travel"
        row = rows[0]
        if (
            row.get("msdyn_expensetype") != 192350003
            or row.get("msdyn_expensecategoryuid") != CATEGORY_ID
            or row.get("msdyn_owningcompany") != USMF_ID
            or row.get("statecode") != 0
        ):
            return f"Travel is {row}"
        return None

    async def companies() -> str | None:
        row = next((r for r in dv_sim.rows("cdm_company") if r.get("cdm_companycode") == "USPI"), None)
        # Finance's name for the legal entity wins over the one first typed in Dataverse.
        return (
            None if row and row.get("cdm_name") == "Contoso Consulting USA (Finance)" else f"cdm_company USPI is {row}"
        )

    async def rates() -> str | None:
        rows = [r for r in dv_sim.rows("msdyn_currencyexchangerate") if r.get("msdyn_fromcurrencycode") == "EUR"]
        if len(rows) != 1 or rows[0].get("msdyn_exchangerate") != Decimal("1.08375"):
            return f"EUR→USD rates in Dataverse: {[r.get('msdyn_exchangerate') for r in rows]}"
        return None

    async def workers() -> str | None:
        found = [r for r in dv_sim.rows("cdm_worker") if r.get("cdm_workernumber") == "000042"]
        if not found or found[0].get("cdm_fullname") != "Ana Bowman":
            return "worker 000042 not in Dataverse"
        if extended(sandbox) and found[0].get("cnt_knownas") != "Annie":
            return f"the map extension's known-as name reached Dataverse as {found[0].get('cnt_knownas')!r}"
        return None

    async def customers() -> str | None:
        account = next((r for r in dv_sim.rows("account") if r.get("accountnumber") == "US-001"), None)
        if account is None or account.get("customertypecode") != 3:
            return "Finance's customer US-001 did not update its Dataverse account"
        return None

    async def accounts_to_customers() -> str | None:
        finance_side = fo_sim.get("CustomersV3", dataAreaId="usmf", CustomerAccount="US-077")
        if (
            finance_side is None
            or finance_side.get("CreditLimit") != Decimal("15000.00")
            or finance_side.get("CustomerGroupId") != "30"
        ):
            return f"CustomersV3 US-077 is {finance_side}"
        return None

    async def vendors() -> str | None:
        found = [r for r in dv_sim.rows("msdyn_vendor") if r.get("msdyn_vendoraccountnumber") == "V-100"]
        return None if len(found) == 1 and found[0].get("msdyn_company") == USMF_ID else f"vendors V-100: {found}"

    expect("legal-entities", "USPI's Finance name on its Dataverse company", companies)

    async def vendor_accounts() -> str | None:
        found = [r for r in dv_sim.rows("account") if r.get("accountnumber") == "V-100"]
        ok = len(found) == 1 and found[0].get("msdyn_company") == USMF_ID and found[0].get("customertypecode") == 11
        return None if ok else f"accounts V-100: {found}"

    expect("vendors", "vendor V-100 of USMF in Dataverse", vendors)
    expect("vendor-accounts", "vendor V-100 as a Vendor account of USMF, for vendor invoices to find", vendor_accounts)
    expect("workers", "worker 000042 from Finance in Dataverse, with the extension's known-as name", workers)
    expect("customers", "Finance customer US-001 on its Dataverse customer account", customers)
    expect(
        "accounts-to-customers",
        "account US-077 from Dataverse created in Finance with its credit limit and group",
        accounts_to_customers,
    )
    expect("exchange-rates", "EUR→USD 1.08375 for November in Dataverse, exactly", rates)

    async def categories_in_finance() -> str | None:
        category = fo_sim.get("ProjectTransactionCategories", CategoryId="TCN-0000001000")
        shared = [r for r in fo_sim.rows("SharedCategories") if r["CategoryId"].startswith("TCN-0000001000-")]
        if category is None or category.get("Name") != "Consulting hours" or len(shared) != 5:
            return f"Finance has {category} with {len(shared)} shared categories"
        return None

    expect("transaction-categories", "TCN-0000001000 in Finance with its five shared categories", categories_in_finance)

    async def contract() -> str | None:
        header = fo_sim.get("ProjectContractHeaders", dataAreaId="usmf", ProjectContractId="ORD-1001")
        return None if header and header.get("TermsOfPayment") == "Net30" else f"contract ORD-1001 in Finance: {header}"

    expect("resource-roles", "role ARCHITECT in USMF and USPI", roles)

    async def contract_line() -> str | None:
        rule = fo_sim.get("ProjectContractLines", dataAreaId="usmf", ProjectContractId="ORD-1001", LineSequenceNumber=1)
        ok = rule and (rule["ContractLineId"], rule["BillingMethod"], rule["LineType"]) == (
            ORDER_LINE_ID,
            "TimeMaterial",
            "TAndM",
        )
        return None if ok else f"contract line in Finance: {rule}"

    expect("contract-headers", "project contract ORD-1001 in usmf with its terms of payment", contract)
    expect("contract-lines", "its time-and-material line as a time-and-material billing rule", contract_line)
    expect("projects-v2", "project PRJ-1001 in usmf: new name, customer, the extension's cost centre", project)
    expect("actuals", "time and expense actuals staged exactly; a transition's unbilled sales left out", actuals)
    expect("actuals-accounting", "voucher and accounting amount written back onto the time actual", write_back)
    expect("expense-categories", "Finance category Travel in Dataverse for USMF", categories)

    result.expectations += planning_expectations(sandbox) + document_expectations(sandbox)
    for expectation in result.expectations:
        expectation.problem = await expectation.check()
    return result
