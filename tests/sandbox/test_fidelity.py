"""The simulators answer as the real services do where a flow could pass here and fail in production;
each test cites the page it holds the simulator to."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from sandbox.dataverse.server import DataverseSimulator
from sandbox.finance.server import FinanceSimulator
from shared.jsonio import dumps

USER = "5a0d0a55-0000-4000-8000-00000000b002"


@pytest.fixture
async def dataverse() -> AsyncIterator[tuple[DataverseSimulator, httpx.AsyncClient]]:
    sim = DataverseSimulator(users={"t": USER})
    await sim.start()
    async with httpx.AsyncClient(base_url=sim.api_url + "/", headers={"Authorization": "Bearer t"}) as client:
        yield sim, client
    await sim.stop()


@pytest.fixture
async def finance() -> AsyncIterator[tuple[FinanceSimulator, httpx.AsyncClient]]:
    sim = FinanceSimulator(users={"t": USER})
    await sim.start()
    async with httpx.AsyncClient(base_url=sim.data_url + "/", headers={"Authorization": "Bearer t"}) as client:
        yield sim, client
    await sim.stop()


def no_property(name: str, table: str) -> dict[str, Any]:
    return {
        "error": {
            "code": "0x80060888",
            "message": f"Could not find a property named '{name}' on type 'Microsoft.Dynamics.CRM.{table}'.",
        }
    }


async def test_dataverse_refuses_unknown_select_and_filter_columns(dataverse: Any) -> None:
    """An unknown column in $select or $filter is a 400 0x80060888, even on an empty table, never a
    column read as absent.

    Query data using the Web API:
    https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/query-data-web-api
    """
    _, client = dataverse
    assert (await client.get("cdm_companies", params={"$select": "cdm_companycode"})).status_code == 200
    selected = await client.get("cdm_companies", params={"$select": "cdm_companycode,cdm_nmae"})
    assert selected.status_code == 400
    assert selected.json() == no_property("cdm_nmae", "cdm_company")
    filtered = await client.get("cdm_companies", params={"$filter": "cdm_nmae eq 'x'"})
    assert filtered.status_code == 400
    assert filtered.json() == no_property("cdm_nmae", "cdm_company")
    created = await client.post("cdm_companies", content=dumps({"cdm_companycode": "C1", "cdm_name": "One"}))
    entity_id = created.headers["OData-EntityId"].rsplit("/", 1)[1]
    one = await client.get(entity_id, params={"$select": "cdm_nmae"})
    assert one.status_code == 400
    assert one.json() == no_property("cdm_nmae", "cdm_company")
