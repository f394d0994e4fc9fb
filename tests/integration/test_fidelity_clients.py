"""The clients ask the simulators for what the real services give only when asked."""

from __future__ import annotations

from sandbox.environment import Sandbox
from sandbox.scenario import USMF_ID
from shared.clients.addressing import filter_for_key
from shared.records import normalize_webapi_row
from shared.values import Ref

PROJECT = "c0a1e000-0000-4000-8000-0000000f1d01"


async def test_dataverse_reads_ask_for_the_lookup_table_they_build_refs_from(sandbox: Sandbox) -> None:
    """Dataverse sends `@Microsoft.Dynamics.CRM.lookuplogicalname` only with Prefer
    odata.include-annotations; a read by key and a query both ask, so a re-read row's lookups
    become Refs that name their table.

    Query data using the Web API, "Lookup property data":
    https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/query-data-web-api
    """
    assert sandbox.runtime is not None
    dataverse = sandbox.runtime.engine.dataverse
    sandbox.dataverse.seed(
        "msdyn_project",
        {
            "msdyn_projectid": PROJECT,
            "msdyn_projectnumber": "PRJ-ANN",
            "msdyn_subject": "Annotated",
            "msdyn_OwningCompany@odata.bind": f"/cdm_companies({USMF_ID})",
        },
    )
    await sandbox.wait_quiet()  # what the fixture's own setup set going has settled
    before = len(sandbox.dataverse.requests)
    by_key = await dataverse.get("msdyn_projects", {"msdyn_projectnumber": "PRJ-ANN"})
    queried = [
        row
        async for page in dataverse.query("msdyn_projects", filter="msdyn_projectnumber eq 'PRJ-ANN'")
        for row in page
    ]
    expected = Ref("cdm_company", USMF_ID.lower())
    assert by_key is not None and normalize_webapi_row(by_key)["msdyn_owningcompany"] == expected
    assert [normalize_webapi_row(row)["msdyn_owningcompany"] for row in queried] == [expected]
    reads = [r for r in sandbox.dataverse.requests[before:] if r.method == "GET" and "msdyn_projects" in r.path]
    assert len(reads) == 2
    assert all("odata.include-annotations" in r.headers.get("prefer", "") for r in reads)


async def test_finance_key_value_with_a_wildcard_reads_only_its_own_rows(sandbox: Sandbox) -> None:
    """Finance reads `*` in a string compared with eq as a wildcard ("Contains" is written
    `StringField eq '*retail*'`) and documents no escape, so the client lets Finance answer the
    pattern and keeps the rows whose value is exactly the key's: one document's id cannot pull in
    another's lines.

    Open Data Protocol (OData) for finance and operations apps, "Filter details":
    https://learn.microsoft.com/en-us/dynamics365/fin-ops-core/dev-itpro/data-entities/odata
    """
    assert sandbox.runtime is not None
    finance = sandbox.runtime.engine.finance
    for project in ("P*1", "PX1", "P-LONG-1", "P*2"):
        sandbox.finance.seed("ProjectsV2", {"dataAreaId": "usmf", "ProjectId": project, "ProjectName": project})

    # The simulator implements the wildcard as Finance does, so the test below can fail.
    async with sandbox.person_finance() as person:
        answered = (await person.get("ProjectsV2", params={"$filter": "ProjectId eq 'P*1'"})).json()["value"]
    assert sorted(r["ProjectId"] for r in answered) == ["P*1", "P-LONG-1", "PX1"]

    key = {"dataAreaId": "usmf", "ProjectId": "P*1"}
    before = len(sandbox.finance.requests)
    queried = [r async for page in finance.query("ProjectsV2", filter=filter_for_key(key)) for r in page]
    assert [r["ProjectId"] for r in queried] == ["P*1"]
    row = await finance.get("ProjectsV2", key, select=["ProjectName"])
    assert row is not None and row["ProjectName"] == "P*1"
    missing = await finance.get("ProjectsV2", {"dataAreaId": "usmf", "ProjectId": "P*9"})
    assert missing is None
    sent = [r for r in sandbox.finance.requests[before:] if r.method == "GET"]
    assert sent and all("%2A" in r.query or "*" in r.query for r in sent)
