"""The clients ask the simulators for what the real services give only when asked."""

from __future__ import annotations

from sandbox.environment import Sandbox
from sandbox.scenario import USMF_ID
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
    reads = [r for r in sandbox.dataverse.requests[before:] if r.method == "GET"]
    assert len(reads) == 2
    assert all("odata.include-annotations" in r.headers.get("prefer", "") for r in reads)
