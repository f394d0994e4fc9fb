"""A client nobody here wrote, python-odata, drives both simulators from their $metadata alone: if
the simulators' protocol only suits this project's own clients, this fails.

OData Version 4.0 Part 1: Protocol (entity create, update, query) and CSDL:
https://docs.oasis-open.org/odata/odata/v4.0/os/part1-protocol/odata-v4.0-os-part1-protocol.html
Use the Web API with Dataverse metadata:
https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/web-api-service-documents
Open Data Protocol (OData) for finance and operations apps:
https://learn.microsoft.com/en-us/dynamics365/fin-ops-core/dev-itpro/data-entities/odata
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import requests
from odata import ODataService

from sandbox.dataverse.server import DataverseSimulator
from sandbox.finance.server import FinanceSimulator

USER = "5a0d0a55-0000-4000-8000-00000000b002"


@pytest.fixture
async def simulators() -> AsyncIterator[tuple[DataverseSimulator, FinanceSimulator, requests.Session]]:
    dataverse = DataverseSimulator(users={"t": USER})
    finance = FinanceSimulator(users={"t": USER})
    await dataverse.start()
    await finance.start()
    session = requests.Session()
    session.headers["Authorization"] = "Bearer t"
    try:
        yield dataverse, finance, session
    finally:
        session.close()
        await dataverse.stop()
        await finance.stop()


def _dataverse_round_trip(url: str, session: requests.Session) -> dict[str, Any]:
    # Dataverse answers a create with 204 and no body unless asked for the row back; the client
    # needs the row to know its address.
    service = ODataService(
        url,
        session=session,
        extra_headers={"Prefer": "return=representation"},
        reflect_entities=True,
        quiet_progress=True,
    )
    companies, projects = service.entities["cdm_companies"], service.entities["msdyn_projects"]
    company = companies()
    company.cdm_companycode = "USMF"
    company.cdm_name = "Contoso"
    service.save(company)
    project = projects()
    project.msdyn_projectnumber = "PRJ-3P"
    project.msdyn_subject = "Written by python-odata"
    project.msdyn_OwningCompany = company
    service.save(project)
    project.msdyn_subject = "Updated by python-odata"
    service.save(project)
    listed = [(p.msdyn_projectnumber, p.msdyn_subject) for p in service.query(projects)]
    return {"company": company.cdm_companyid, "project": project.msdyn_projectid, "listed": listed}


def _finance_round_trip(url: str, session: requests.Session) -> list[tuple[str, str]]:
    service = ODataService(url, session=session, reflect_entities=True, quiet_progress=True)
    projects = service.entities["ProjectsV2"]
    project = projects()
    project.dataAreaId = "usmf"
    project.ProjectId = "P-3P"
    project.ProjectName = "Written by python-odata"
    service.save(project)
    project.ProjectName = "Updated by python-odata"
    service.save(project)
    return [(p.ProjectId, p.ProjectName) for p in service.query(projects)]


async def test_python_odata_creates_updates_and_reads_in_both_simulators(simulators: Any) -> None:
    dataverse, finance, session = simulators
    # python-odata is synchronous; the simulators serve on this loop, so it runs in a thread.
    seen = await asyncio.to_thread(_dataverse_round_trip, dataverse.api_url + "/", session)
    assert seen["listed"] == [("PRJ-3P", "Updated by python-odata")]
    stored = dataverse.get_row("msdyn_project", seen["project"])
    assert stored is not None and stored["msdyn_subject"] == "Updated by python-odata"
    assert stored["msdyn_owningcompany"] == seen["company"]
    creates = [r for r in dataverse.requests if r.method == "POST" and r.path.endswith("/msdyn_projects")]
    assert len(creates) == 1
    sent = json.loads(creates[0].body)
    # The lookup went by its navigation property, the name $metadata's constraint ties to the column.
    assert sent["msdyn_OwningCompany@odata.bind"].endswith(f"cdm_companies({seen['company']})")
    assert "_msdyn_owningcompany_value" not in sent
    assert [r.method for r in dataverse.requests if "/msdyn_projects(" in r.path] == ["PATCH"]

    listed = await asyncio.to_thread(_finance_round_trip, finance.data_url + "/", session)
    assert listed == [("P-3P", "Updated by python-odata")]
    rows = finance.rows("ProjectsV2")
    assert [(r["dataAreaId"], r["ProjectId"], r["ProjectName"]) for r in rows] == [
        ("usmf", "P-3P", "Updated by python-odata")
    ]
    assert any(r.method == "PATCH" and r.path.startswith("/data/ProjectsV2(") for r in finance.requests)
