"""Prerequisite maps through the sandbox: Finance master data reaching Dataverse."""

from __future__ import annotations

from decimal import Decimal

from sandbox.environment import Sandbox
from tests.integration.conftest import send


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
    key = (
        "CDSExchangeRates(ExchangeRateTypeName='Default',FromCurrencyCode='GBP',ToCurrencyCode='USD',"
        "ValidFrom='2026-12-01')"
    )
    body = {
        "ExchangeRateTypeName": "Default",
        "FromCurrencyCode": "GBP",
        "ToCurrencyCode": "USD",
        "Rate": Decimal("1.2712345678"),
        "ValidFrom": "2026-12-01",
        "ValidTo": "2026-12-31",
    }
    async with sandbox.person_finance() as fo:
        await send(fo, "POST", "CDSExchangeRates", body)
        await sandbox.wait_quiet()
        assert (
            sandbox.finance.get(
                "CDSExchangeRates",
                ExchangeRateTypeName="Default",
                FromCurrencyCode="GBP",
                ToCurrencyCode="USD",
                ValidFrom="2026-12-01",
            )
            is not None
        )
        await send(fo, "PATCH", key, {"Rate": Decimal("1.2700")})
        await sandbox.wait_quiet()
        await send(fo, "PATCH", key, {"ValidTo": "2026-12-31"})
        await sandbox.wait_quiet()
    [rate] = [r for r in sandbox.dataverse.rows("msdyn_currencyexchangerate") if r["msdyn_fromcurrencycode"] == "GBP"]
    assert rate["msdyn_exchangerate"] == Decimal("1.2700")
    assert str(rate["msdyn_validfrom"]) == "2026-12-01" and str(rate["msdyn_validto"]) == "2026-12-31"
    assert dataverse_writes(sandbox, "msdyn_currencyexchangerates") == [
        "PATCH",
        "PATCH",
    ]  # the same-value update wrote nothing
