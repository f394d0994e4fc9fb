"""Prerequisite maps through the sandbox: Finance master data reaching Dataverse."""

from __future__ import annotations

import json
from decimal import Decimal

from functions import exchange_rates
from sandbox.environment import Sandbox
from shared.events import ChangeEvent, Operation, Source
from shared.outcomes import OutcomeKind
from shared.pipeline import apply_event
from shared.telemetry import FIGURES
from tests.integration.conftest import parked, send, until


def dataverse_writes(sandbox: Sandbox, entity_set: str) -> list[str]:
    return [
        r.method
        for r in sandbox.dataverse.requests
        if r.method in ("POST", "PATCH", "DELETE") and f"/{entity_set}" in r.path
    ]


async def test_legal_entity_reaches_dataverse_and_is_never_deleted_there(sandbox: Sandbox) -> None:
    async with sandbox.person_finance() as fo:
        await send(fo, "POST", "LegalEntities", {"LegalEntityId": "demf", "Name": "Contoso Entertainment Germany"})
        await sandbox.wait_quiet()
        await send(fo, "PATCH", "LegalEntities(LegalEntityId='DEMF')", {"Name": "Contoso Entertainment GmbH"})
        await sandbox.wait_quiet()
        await send(fo, "DELETE", "LegalEntities(LegalEntityId='DEMF')")
        await sandbox.wait_quiet()
    [company] = [r for r in sandbox.dataverse.rows("cdm_company") if r["cdm_companycode"] == "DEMF"]
    assert company["cdm_name"] == "Contoso Entertainment GmbH"
    patches = [r for r in sandbox.dataverse.requests if r.method == "PATCH" and "cdm_companycode='DEMF'" in r.path]
    assert len(patches) == 2 and all('"cdm_companycode"' not in r.body for r in patches)  # key only in the URL


async def test_exchange_rates_are_exact_and_unchanged_rates_are_not_rewritten(sandbox: Sandbox) -> None:
    # ValidFrom is an Edm.DateTimeOffset key part: bare in the URL, with a time (Finance dates are at noon).
    key = (
        "ExchangeRatesCDSEntity(ExchangeRateTypeName='Default',FromCurrencyCode='GBP',ToCurrencyCode='USD',"
        "ValidFrom=2026-12-01T12:00:00Z)"
    )
    body = {
        "ExchangeRateTypeName": "Default",
        "FromCurrencyCode": "GBP",
        "ToCurrencyCode": "USD",
        "Rate": Decimal("1.2712345678"),
        "ValidFrom": "2026-12-01T12:00:00Z",
        "ValidTo": "2026-12-31T12:00:00Z",
    }
    async with sandbox.person_finance() as fo:
        await send(fo, "POST", "ExchangeRatesCDSEntity", body)
        await sandbox.wait_quiet()
        await send(fo, "PATCH", key, {"Rate": Decimal("1.2700")})
        await sandbox.wait_quiet()
        await send(fo, "PATCH", key, {"ValidTo": "2026-12-31T12:00:00Z"})
        await sandbox.wait_quiet()
    [rate] = [r for r in sandbox.dataverse.rows("msdyn_currencyexchangerate") if r["msdyn_fromcurrencycode"] == "GBP"]
    assert rate["msdyn_exchangerate"] == Decimal("1.2700")
    assert str(rate["msdyn_validfrom"]) == "2026-12-01" and str(rate["msdyn_validto"]) == "2026-12-31"
    assert dataverse_writes(sandbox, "msdyn_currencyexchangerates") == [
        "PATCH",
        "PATCH",
    ]  # the same-value update wrote nothing


async def test_an_exchange_rate_read_again_is_read_by_its_dated_key(sandbox: Sandbox) -> None:
    """An event that carries no whole row (a replay of a partial one) makes the flow read the rate
    from Finance by its key."""
    sandbox.finance.seed(
        "ExchangeRatesCDSEntity",
        {
            "ExchangeRateTypeName": "Default",
            "FromCurrencyCode": "CAD",
            "ToCurrencyCode": "USD",
            "Rate": Decimal("0.7312"),
            "ValidFrom": "2026-12-01T12:00:00Z",
            "ValidTo": "2026-12-31T12:00:00Z",
        },
    )
    record = {
        "ExchangeRateTypeName": "Default",
        "FromCurrencyCode": "CAD",
        "ToCurrencyCode": "USD",
        "ValidFrom": "2026-12-01T12:00:00Z",  # as a replayed event carries it: text
    }
    event = ChangeEvent(
        event_id="rate-1",
        source=Source.FINANCE,
        entity="exchangeratecdsentity",
        operation=Operation.UPDATE,
        key="",
        record=record,
        partial=True,
    )
    assert sandbox.runtime is not None
    outcome = await apply_event(sandbox.runtime.engine, exchange_rates.MAP, event.for_flow("exchange-rates", "k"))
    assert outcome.kind is OutcomeKind.WRITTEN, outcome
    [read] = [r for r in sandbox.finance.requests if r.method == "GET" and "ExchangeRatesCDSEntity(" in r.path]
    assert read.path.endswith(",ValidFrom=2026-12-01T12:00:00Z)")
    [rate] = [r for r in sandbox.dataverse.rows("msdyn_currencyexchangerate") if r["msdyn_fromcurrencycode"] == "CAD"]
    assert rate["msdyn_exchangerate"] == Decimal("0.7312") and str(rate["msdyn_validto"]) == "2026-12-31"


async def test_worker_reaches_dataverse(sandbox: Sandbox) -> None:
    async with sandbox.person_finance() as fo:
        await send(
            fo,
            "POST",
            "Workers",
            {
                "PersonnelNumber": "000123",
                "FirstName": "Julia",
                "LastName": "Funderburk",
                "Name": "Julia Funderburk",
                "BirthDate": "1985-04-12T12:00:00Z",
                "PrimaryContactEmail": "julia@contoso.com",
            },
        )
    await sandbox.wait_quiet()
    [worker] = [r for r in sandbox.dataverse.rows("cdm_worker") if r["cdm_workernumber"] == "000123"]
    assert worker["cdm_fullname"] == "Julia Funderburk" and str(worker["cdm_birthdate"]) == "1985-04-12"
    assert worker["cdm_primaryemailaddress"] == "julia@contoso.com"

    async with sandbox.person_finance() as fo:
        await send(fo, "PATCH", "Workers(PersonnelNumber='000123')", {"LastName": "Funderburk-Lee"})
    await sandbox.wait_quiet()
    [worker] = [r for r in sandbox.dataverse.rows("cdm_worker") if r["cdm_workernumber"] == "000123"]
    assert worker["cdm_lastname"] == "Funderburk-Lee"
    assert dataverse_writes(sandbox, "cdm_workers") == ["PATCH", "PATCH"]


async def test_customers_flow_both_ways_and_settle(sandbox: Sandbox) -> None:
    async with sandbox.person_finance() as fo:
        await send(
            fo,
            "POST",
            "CustomersV3",
            {
                "dataAreaId": "usmf",
                "CustomerAccount": "US-200",
                "OrganizationName": "Lakeshore Retail",
                "PartyType": "Organization",
                "CustomerGroupId": "30",
                "CreditLimit": Decimal("25000.00"),
                "SalesCurrencyCode": "USD",
                "DeliveryAddressCity": "Chicago",
            },
        )
        await send(
            fo,
            "POST",
            "CustomersV3",
            {
                "dataAreaId": "usmf",
                "CustomerAccount": "US-201",
                "OrganizationName": "A person",
                "PartyType": "Person",
                "CustomerGroupId": "30",
            },
        )
    await sandbox.wait_quiet()
    accounts = {r["accountnumber"]: r for r in sandbox.dataverse.rows("account")}
    assert "US-201" not in accounts  # filtered: only organizations
    lakeshore = accounts["US-200"]
    assert lakeshore["name"] == "Lakeshore Retail" and lakeshore["creditlimit"] == Decimal("25000.00")
    assert lakeshore["customertypecode"] == 3 and lakeshore["address1_city"] == "Chicago"
    assert lakeshore["msdyn_company"] == "c0a1e000-0000-4000-8000-000000000001"
    assert lakeshore["transactioncurrencyid"] == "c0a1e000-0000-4000-8000-0000000000d1"

    # A salesperson raises the credit limit in Dataverse: it reaches Finance once, and nothing comes back.
    before = len([r for r in sandbox.dataverse.requests if r.method == "PATCH" and "/accounts(" in r.path])
    async with sandbox.person_dataverse() as dv:
        await send(dv, "PATCH", f"accounts({lakeshore['accountid']})", {"creditlimit": Decimal("30000.00")})
    await sandbox.wait_quiet()
    customer = sandbox.finance.get("CustomersV3", dataAreaId="usmf", CustomerAccount="US-200")
    assert customer is not None and customer["CreditLimit"] == Decimal("30000.00")
    after = len([r for r in sandbox.dataverse.requests if r.method == "PATCH" and "/accounts(" in r.path])
    assert after == before + 1  # only the salesperson's own PATCH: the integration did not write the account back


async def test_new_dataverse_customer_account_is_created_in_finance_with_its_group(sandbox: Sandbox) -> None:
    usmf = "/cdm_companies(cdm_companycode='USMF')"
    group = "/msdyn_customergroups(msdyn_groupid='30',msdyn_company=c0a1e000-0000-4000-8000-000000000001)"
    async with sandbox.person_dataverse() as dv:
        for number, name, kind, extra in (
            ("US-300", "Fabrikam Retail", 3, {"msdyn_customergroupid@odata.bind": group}),
            ("US-301", "A competitor", 1, {}),
            ("US-302", "No group yet", 3, {}),
        ):
            body = {"accountnumber": number, "name": name, "customertypecode": kind, "msdyn_company@odata.bind": usmf}
            await send(dv, "POST", "accounts", {**body, **extra})
    await sandbox.wait_quiet()
    created = sandbox.finance.get("CustomersV3", dataAreaId="usmf", CustomerAccount="US-300")
    assert created is not None
    assert (created["OrganizationName"], created["PartyType"], created["CustomerGroupId"]) == (
        "Fabrikam Retail",
        "Organization",
        "30",
    )
    assert sandbox.finance.get("CustomersV3", dataAreaId="usmf", CustomerAccount="US-301") is None
    # Finance refuses a customer without a group: parked with its own words, for a person to act on.
    [(flow, reason, error)] = await parked(sandbox)
    assert (flow, reason) == ("accounts-to-customers", "rejected-by-target")
    assert "Field 'Customer group' must be filled in" in error

    # An account that came from Finance has no group in Dataverse; updating it keeps Finance's group.
    [account] = [r for r in sandbox.dataverse.rows("account") if r["accountnumber"] == "US-001"]
    async with sandbox.person_dataverse() as dv:
        await send(dv, "PATCH", f"accounts({account['accountid']})", {"telephone1": "+1 555 0100"})
    await sandbox.wait_quiet()
    customer = sandbox.finance.get("CustomersV3", dataAreaId="usmf", CustomerAccount="US-001")
    assert customer is not None and (customer["PrimaryContactPhone"], customer["CustomerGroupId"]) == (
        "+1 555 0100",
        "30",
    )


async def test_vendor_reaches_dataverse_per_company(sandbox: Sandbox) -> None:
    async with sandbox.person_finance() as fo:
        for company in ("usmf", "uspi"):
            await send(
                fo,
                "POST",
                "VendorsV2",
                {
                    "dataAreaId": company,
                    "VendorAccountNumber": "V-100",
                    "VendorOrganizationName": "Northwind Subcontracting",
                    "CreditLimit": Decimal("50000.00"),
                    "CurrencyCode": "USD",
                },
            )
    await sandbox.wait_quiet()
    vendors = [r for r in sandbox.dataverse.rows("msdyn_vendor") if r["msdyn_vendoraccountnumber"] == "V-100"]
    assert len(vendors) == 2 and {v["msdyn_company"] for v in vendors} == {
        "c0a1e000-0000-4000-8000-000000000001",
        "c0a1e000-0000-4000-8000-000000000002",
    }
    assert all(v["msdyn_vendorcreditlimit"] == Decimal("50000.00") for v in vendors)
    assert all(v["msdyn_currencycode"] == "c0a1e000-0000-4000-8000-0000000000d1" for v in vendors)

    async with sandbox.person_finance() as fo:
        await send(
            fo,
            "PATCH",
            "VendorsV2(dataAreaId='uspi',VendorAccountNumber='V-100')",
            {"CreditLimit": Decimal("75000.00"), "CurrencyCode": ""},
        )
    await sandbox.wait_quiet()
    after = {
        r["msdyn_company"]: (r["msdyn_vendorcreditlimit"], r.get("msdyn_currencycode"))
        for r in sandbox.dataverse.rows("msdyn_vendor")
        if r["msdyn_vendoraccountnumber"] == "V-100"
    }
    assert after == {  # the currency emptied in Finance is cleared in Dataverse, not left stale
        "c0a1e000-0000-4000-8000-000000000001": (Decimal("50000.00"), "c0a1e000-0000-4000-8000-0000000000d1"),
        "c0a1e000-0000-4000-8000-000000000002": (Decimal("75000.00"), None),
    }
    cleared = [r for r in sandbox.dataverse.requests if r.method == "PATCH" and "/msdyn_vendors(" in r.path][-1]
    assert '"msdyn_currencycode@odata.bind":null' in cleared.body.replace(" ", "")


async def test_ledger_waits_for_its_chart_of_accounts_then_lands_with_its_references(sandbox: Sandbox) -> None:
    ledger = {
        "LegalEntityId": "USPI",
        "Name": "USPI",
        "Description": "Consulting ledger",
        "AccountingCurrency": "USD",
        "ChartOfAccounts": "Consulting",
        "FiscalCalendar": "Fiscal",
        "ExchangeRateType": "Default",
        "IsBudgetControlEnabled": "No",
    }
    async with sandbox.person_finance() as fo:
        await send(fo, "POST", "Ledgers", ledger)
    await until(lambda: FIGURES.flows["ledgers"].retried > 0)
    assert sandbox.dataverse.rows("msdyn_ledger") == []
    async with sandbox.person_dataverse() as dv:
        await send(dv, "POST", "msdyn_chartofaccountses", {"msdyn_name": "Consulting"})
    await sandbox.wait_quiet()
    [row] = sandbox.dataverse.rows("msdyn_ledger")
    chart = next(r for r in sandbox.dataverse.rows("msdyn_chartofaccounts") if r["msdyn_name"] == "Consulting")
    assert row["msdyn_company"] == "c0a1e000-0000-4000-8000-000000000002"
    assert row["msdyn_chartofaccounts"] == chart["msdyn_chartofaccountsid"]
    assert row["msdyn_accountingcurrency"] == "c0a1e000-0000-4000-8000-0000000000d1"
    assert row["msdyn_isbudgetcontrolenabled"] is False and row.get("msdyn_reportingcurrency") is None

    async with sandbox.person_finance() as fo:
        await send(fo, "PATCH", "Ledgers(LegalEntityId='USPI')", {"Description": "Consulting USA ledger"})
    await sandbox.wait_quiet()
    [row] = sandbox.dataverse.rows("msdyn_ledger")
    assert row["msdyn_description"] == "Consulting USA ledger"
    landed = [r for r in sandbox.dataverse.requests if "/msdyn_ledgers(" in r.path and r.status < 400]
    assert [r.method for r in landed] == ["PATCH", "PATCH"]  # the refused first tries changed nothing
    assert await parked(sandbox) == []


async def test_vendor_becomes_a_vendor_account_that_never_turns_into_a_customer(sandbox: Sandbox) -> None:
    async with sandbox.person_finance() as fo:
        for number, name, party in (
            ("V-200", "Fabrikam Supplies", "Organization"),
            ("V-201", "Jo Freelance", "Person"),
        ):
            await send(
                fo,
                "POST",
                "VendorsV2",
                {
                    "dataAreaId": "usmf",
                    "VendorAccountNumber": number,
                    "VendorOrganizationName": name,
                    "VendorPartyType": party,
                    "CreditLimit": Decimal("1000.00"),
                    "CurrencyCode": "USD",
                },
            )
        await sandbox.wait_quiet()
        await send(
            fo,
            "PATCH",
            "VendorsV2(dataAreaId='usmf',VendorAccountNumber='V-200')",
            {"VendorOrganizationName": "Fabrikam Supplies Inc.", "CreditLimit": Decimal("2500.50")},
        )
    await sandbox.wait_quiet()
    accounts = {r["accountnumber"]: r for r in sandbox.dataverse.rows("account")}
    assert "V-201" not in accounts  # a person vendor is not an organization account
    vendor = accounts["V-200"]
    assert (vendor["name"], vendor["creditlimit"], vendor["customertypecode"]) == (
        "Fabrikam Supplies Inc.",
        Decimal("2500.50"),
        11,
    )
    assert vendor["msdyn_company"] == "c0a1e000-0000-4000-8000-000000000001"
    assert vendor["transactioncurrencyid"] == "c0a1e000-0000-4000-8000-0000000000d1"
    mine = [r.method for r in sandbox.dataverse.requests if "/accounts(" in r.path and "V-200" in r.path]
    assert mine == ["PATCH", "PATCH"]  # an upsert by account number + company, then the update
    # Both person and organization vendors are in msdyn_vendors; neither became a Finance customer.
    assert {r["msdyn_vendoraccountnumber"] for r in sandbox.dataverse.rows("msdyn_vendor")} == {"V-200", "V-201"}
    assert sandbox.finance.get("CustomersV3", dataAreaId="usmf", CustomerAccount="V-200") is None
    assert await parked(sandbox) == []


async def test_a_customer_account_dataverse_cannot_address_is_created_with_its_company_bound(
    sandbox: Sandbox,
) -> None:
    """accounts are keyed by accountnumber + _msdyn_company_value: "C&A-001" cannot be in a key segment,
    so the account is created by POST, its company bound as msdyn_company@odata.bind."""
    body = {
        "dataAreaId": "usmf",
        "CustomerAccount": "C&A-001",
        "OrganizationName": "C and A",
        "PartyType": "Organization",
    }
    async with sandbox.person_finance() as fo:
        await send(fo, "POST", "CustomersV3", {**body, "CustomerGroupId": "30"})
    await sandbox.wait_quiet()
    assert await parked(sandbox) == []
    [account] = [r for r in sandbox.dataverse.rows("account") if r["accountnumber"] == "C&A-001"]
    assert account["name"] == "C and A" and account["msdyn_company"] == "c0a1e000-0000-4000-8000-000000000001"
    [create] = [
        json.loads(r.body)
        for r in sandbox.dataverse.requests
        if r.method == "POST" and r.path.endswith("/accounts") and "C&A-001" in r.body
    ]
    assert create["msdyn_company@odata.bind"] == "/cdm_companies(c0a1e000-0000-4000-8000-000000000001)"

    async with sandbox.person_finance() as fo:
        await send(
            fo, "PATCH", "CustomersV3(dataAreaId='usmf',CustomerAccount='C%26A-001')", {"OrganizationName": "C&A"}
        )
    await sandbox.wait_quiet()
    assert [r["name"] for r in sandbox.dataverse.rows("account") if r["accountnumber"] == "C&A-001"] == ["C&A"]
