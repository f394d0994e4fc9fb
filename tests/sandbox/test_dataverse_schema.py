"""The Dataverse simulator speaks the Project Operations schema that really exists.

Where a live schema is known (sandbox/dataverse/live-tables.json, from Microsoft's Project
Operations sample app) its columns, option values, entity sets and navigation property names are
the simulator's; columns the Finance-integration solutions add are there only where Microsoft's
own actuals map or the ground-truth study proves them.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox.dataverse.schema import load_schema
from sandbox.dataverse.server import DataverseSimulator
from shared.jsonio import dumps
from shared.maps import FieldMap, FieldType, Lookup, Registry, SourceSide, System, TableMap, TargetSide
from shared.operations.check_maps import check_maps
from shared.operations.metadata import parse_metadata

USER = "5a0d0a55-0000-4000-8000-00000000b002"
TASK = "7a5c0000-0000-4000-8000-000000000001"
PROJECT = "7a5c0000-0000-4000-8000-000000000002"

# What Dataverse answers a bind whose name is not a declared navigation property. The message is
# the OData library's, as Dataverse returns it: reported from a Dataverse POST in OData/WebApi#2410
# and microsoft/PowerPlatform-DataverseServiceClient#31 (a lower-cased custom navigation property),
# and with the Web API's error body in jlattimer/CRMRESTBuilder#7 (PATCH of a lookup).
UNDECLARED = (
    "An undeclared property '{}' which only has property annotations in the payload but no property value was "
    "found in the payload. In OData, only declared navigation properties and declared named streams can be "
    "represented as properties without values."
)


@pytest.fixture
async def dataverse() -> AsyncIterator[tuple[DataverseSimulator, httpx.AsyncClient]]:
    sim = DataverseSimulator(users={"t": USER})
    await sim.start()
    async with httpx.AsyncClient(base_url=sim.api_url + "/", headers={"Authorization": "Bearer t"}) as client:
        yield sim, client
    await sim.stop()


def _refused_property(response: httpx.Response, name: str, table: str) -> bool:
    return response.status_code == 400 and response.json()["error"]["message"] == (
        f"The property '{name}' does not exist on type 'Microsoft.Dynamics.CRM.{table}'. "
        "Make sure to only use property names that are defined by the type."
    )


async def test_a_bind_under_the_logical_name_is_refused_where_the_navigation_property_differs(
    dataverse: Any,
) -> None:
    """Sources: the message text is Dataverse's own (OData/WebApi#2410, PowerPlatform-DataverseServiceClient#31,
    CRMRESTBuilder#7); the navigation property msdyn_projectTask of msdyn_timeentry.msdyn_projecttask is the live
    one (live-tables.json)."""
    sim, client = dataverse
    sim.seed("msdyn_project", {"msdyn_projectid": PROJECT, "msdyn_subject": "Fabrikam"})
    sim.seed("msdyn_projecttask", {"msdyn_projecttaskid": TASK, "msdyn_subject": "Design"})
    for wrong in ("msdyn_projecttask", "msdyn_ProjectTask"):
        response = await client.post(
            "msdyn_timeentries", content=dumps({f"{wrong}@odata.bind": f"/msdyn_projecttasks({TASK})"})
        )
        assert response.status_code == 400, wrong
        assert response.json() == {"error": {"code": "0x80060888", "message": UNDECLARED.format(wrong)}}
    assert sim.rows("msdyn_timeentry") == []

    created = await client.post(
        "msdyn_timeentries",
        content=dumps(
            {
                "msdyn_projectTask@odata.bind": f"/msdyn_projecttasks({TASK})",
                "msdyn_project@odata.bind": f"/msdyn_projects({PROJECT})",
            }
        ),
        headers={"Prefer": "return=representation"},
    )
    assert created.status_code == 201
    row = created.json()
    assert row["_msdyn_projecttask_value"] == TASK and row["_msdyn_project_value"] == PROJECT


async def test_the_project_binds_its_owning_company_as_fasttrack_does(dataverse: Any) -> None:
    """Microsoft FastTrack's Schedule API module binds msdyn_OwningCompany@odata.bind on msdyn_projects."""
    sim, client = dataverse
    company = sim.seed("cdm_company", {"cdm_companycode": "USMF"})
    refused = await client.post(
        "msdyn_projects", content=dumps({"msdyn_owningcompany@odata.bind": f"/cdm_companies({company})"})
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["message"] == UNDECLARED.format("msdyn_owningcompany")
    created = await client.post(
        "msdyn_projects",
        content=dumps({"msdyn_OwningCompany@odata.bind": "/cdm_companies(cdm_companycode='USMF')"}),
        headers={"Prefer": "return=representation"},
    )
    assert created.status_code == 201 and created.json()["_msdyn_owningcompany_value"] == company


async def test_a_null_bind_needs_the_navigation_property_too(dataverse: Any) -> None:
    sim, client = dataverse
    sim.seed("msdyn_projecttask", {"msdyn_projecttaskid": TASK, "msdyn_subject": "Design"})
    entry = sim.seed("msdyn_timeentry", {"msdyn_description": "x"})
    wrong = await client.patch(f"msdyn_timeentries({entry})", content=dumps({"msdyn_projecttask@odata.bind": None}))
    assert wrong.status_code == 400 and wrong.json()["error"]["code"] == "0x80060888"
    cleared = await client.patch(f"msdyn_timeentries({entry})", content=dumps({"msdyn_projectTask@odata.bind": None}))
    assert cleared.status_code == 204


async def test_metadata_publishes_the_navigation_property_names(dataverse: Any) -> None:
    _, client = dataverse
    metadata = parse_metadata((await client.get("$metadata")).text)
    entry = metadata.entity_for_set("msdyn_timeentries")
    assert entry is not None
    assert entry.navigation["msdyn_projectTask"].endswith("msdyn_projecttask")
    assert "msdyn_projecttask" not in entry.navigation
    assert entry.properties["_msdyn_projecttask_value"] == "Edm.Guid"
    assert entry.lookup_column("msdyn_projectTask") == "msdyn_projecttask"
    category = metadata.entity_for_set("bookableresourcecategories")
    assert category is not None and "msdyn_TransactionCategory" in category.navigation
    project = metadata.entity_for_set("msdyn_projects")
    assert project is not None and "msdyn_OwningCompany" in project.navigation
    assert project.key_sets()[0] == {"msdyn_projectid"}
    actual = metadata.entity_for_set("msdyn_actuals")
    assert actual is not None
    # A lookup in an alternate key is spelled _x_value in a URL, whatever its navigation property is called.
    assert {"msdyn_actualimportid", "_msdyn_owningcompany_value"} in actual.key_sets()
    settings = metadata.entity_for_set("usersettingscollection")
    assert settings is not None and settings.key == ("systemuserid",)


async def test_check_maps_finds_a_bind_named_by_the_column_in_the_simulators_metadata(dataverse: Any) -> None:
    _, client = dataverse
    metadata = parse_metadata((await client.get("$metadata")).text)

    def bound_as(navigation: str | None) -> TableMap:
        return TableMap(
            name="time-entries",
            title="time entries from elsewhere",
            source=SourceSide(System.FINANCE, "TimeEntries", "TimeEntries", ("dataAreaId", "Id")),
            target=TargetSide(System.DATAVERSE, "msdyn_timeentries", ("msdyn_timeentryid",)),
            fields=(FieldMap("Id", "msdyn_timeentryid", FieldType.GUID),),
            lookups=(
                Lookup(
                    "TaskId",
                    "msdyn_projecttask",
                    bind_set="msdyn_projecttasks",
                    bind_key="msdyn_projecttaskid",
                    navigation=navigation,
                ),
            ),
        )

    def problems(table_map: TableMap) -> list[tuple[str, str, str]]:
        found = check_maps(Registry((table_map,)), metadata, metadata)
        return [(p.what, p.name, p.detail) for p in found if p.system == "dataverse"]

    [(what, name, detail)] = problems(bound_as(None))
    assert (what, name) == ("bind navigation", "msdyn_projecttask") and "binds as msdyn_projectTask" in detail
    assert problems(bound_as("msdyn_projectTask")) == []


async def test_projects_and_tasks_have_the_project_operations_columns(dataverse: Any) -> None:
    """M1 (live-tables.json): msdyn_project has msdyn_finish and no msdyn_scheduledend; msdyn_projecttask has
    no msdyn_islinetask. The Finance integration adds the project number and owning company, the task's activity
    number (Microsoft's actuals map reads all three)."""
    _, client = dataverse
    assert _refused_property(
        await client.post("msdyn_projects", content=dumps({"msdyn_scheduledend": "2027-03-31T17:00:00Z"})),
        "msdyn_scheduledend",
        "msdyn_project",
    )
    assert _refused_property(
        await client.post("msdyn_projecttasks", content=dumps({"msdyn_islinetask": False})),
        "msdyn_islinetask",
        "msdyn_projecttask",
    )
    project = await client.post(
        "msdyn_projects",
        content=dumps({"msdyn_projectnumber": "PRJ-1", "msdyn_finish": "2027-03-31T17:00:00Z"}),
        headers={"Prefer": "return=representation"},
    )
    assert project.status_code == 201 and project.json()["msdyn_finish"] == "2027-03-31T17:00:00Z"
    task = await client.post("msdyn_projecttasks", content=dumps({"msdyn_activitynumber": "A-1"}))
    assert task.status_code == 204
    too_long = await client.post("msdyn_projects", content=dumps({"msdyn_description": "x" * 2001}))
    assert too_long.status_code == 400 and "maximum allowed length of '2000'" in too_long.json()["error"]["message"]


async def test_option_values_and_ownership_come_from_the_live_schema(dataverse: Any) -> None:
    _, client = dataverse
    refused = await client.post("msdyn_transactioncategories", content=dumps({"msdyn_billingtype": 192350004}))
    assert refused.status_code == 400
    assert refused.json()["error"]["message"].endswith("Accepted Values: 192350000,192350001,192350002,192350003")
    closed = await client.post("msdyn_projects", content=dumps({"statuscode": 192350000}))
    assert closed.status_code == 204  # a live status reason the PSA-era list did not have
    category = await client.post(
        "msdyn_transactioncategories",
        content=dumps({"msdyn_name": "Travel", "msdyn_transactioncategorynumber": "TCN-1"}),
        headers={"Prefer": "return=representation"},
    )
    assert category.status_code == 201
    # Transaction categories are organization-owned: no owner column to stamp or to show.
    assert "_ownerid_value" not in category.json()
    assert _refused_property(
        await client.post("msdyn_transactioncategories", content=dumps({"ownerid": USER})),
        "ownerid",
        "msdyn_transactioncategory",
    )
    assert (await client.get("usersettingscollection")).status_code == 200


async def test_actuals_have_the_columns_microsofts_actuals_map_writes(dataverse: Any) -> None:
    """M3 (Microsoft's actuals map, dualwrite-maps.json): the write-back lands in msdyn_vouchernumber,
    msdyn_accountexchangerate, msdyn_accountingtaxamount and msdyn_accountingamount; nothing proves the
    msdyn_accountingexchangerate or msdyn_salestaxamount the write-back used to name."""
    sim, client = dataverse
    order = sim.seed("salesorder", {"name": "Contract", "msdyn_salesordernumber": "PC-1"})
    rule = sim.seed(
        "msdyn_projectcontractsplitbillingrule",
        {"msdyn_projectcontractsplitbillingrulenumber": "FS-1"},
    )
    invoice = sim.seed("invoice", {"msdyn_invoicenumber": "PIP-1"})
    sim.seed("product", {"msdyn_productnumber": "D0001"})
    body = {
        "msdyn_vouchernumber": "PJ-1",
        "msdyn_accountexchangerate": "0.9215",
        "msdyn_accountingtaxamount": "0.00",
        "msdyn_accountingamount": "925.19",
        "msdyn_valueofsalescontractline": "CL-1",
        "msdyn_externaloriginreference": "EXT-1",
        "msdyn_nameofbookableresource": "Ana",
        "msdyn_istransition": False,
        "msdyn_adjustmentstatus": 192350000,
        "msdyn_billingstatus": 192350000,
        "msdyn_isjournalized": True,
        "msdyn_projectcontractsplitbillingrule@odata.bind": f"/msdyn_projectcontractsplitbillingrules({rule})",
        "msdyn_invoice@odata.bind": f"/invoices({invoice})",
        "msdyn_product@odata.bind": "/products(msdyn_productnumber='D0001')",
    }
    created = await client.post("msdyn_actuals", content=dumps(body), headers={"Prefer": "return=representation"})
    assert created.status_code == 201, created.text
    row = created.json()
    assert row["msdyn_vouchernumber"] == "PJ-1" and Decimal(str(row["msdyn_accountexchangerate"])) == Decimal("0.9215")
    assert row["_msdyn_projectcontractsplitbillingrule_value"] == rule
    for invented in ("msdyn_accountingexchangerate", "msdyn_salestaxamount"):
        assert _refused_property(
            await client.post("msdyn_actuals", content=dumps({invented: "1"})), invented, "msdyn_actual"
        )
    contract = await client.patch(
        f"msdyn_projectcontractsplitbillingrules({rule})",
        content=dumps({"msdyn_projectcontractid@odata.bind": f"/salesorders({order})"}),
    )
    assert contract.status_code == 204
    bound = sim.get_row("msdyn_projectcontractsplitbillingrule", rule)
    assert bound is not None and bound["msdyn_projectcontractid"] == order
    assert _refused_property(
        await client.post("msdyn_projectcontractsplitbillingrules", content=dumps({"msdyn_contract": order})),
        "msdyn_contract",
        "msdyn_projectcontractsplitbillingrule",
    )


async def test_resource_assignments_have_effort_start_and_finish(dataverse: Any) -> None:
    """Project Operations replaced msdyn_hours / msdyn_fromdate / msdyn_todate with msdyn_effort / msdyn_start /
    msdyn_finish (the PSA-to-Project-Operations replaced-fields table; FastTrack's data migration writes them)."""
    _, client = dataverse
    for old in ("msdyn_hours", "msdyn_fromdate", "msdyn_todate"):
        assert _refused_property(
            await client.post("msdyn_resourceassignments", content=dumps({old: "1"})), old, "msdyn_resourceassignment"
        )
    created = await client.post(
        "msdyn_resourceassignments",
        content=dumps(
            {"msdyn_effort": "37.5", "msdyn_start": "2026-12-07T08:00:00Z", "msdyn_finish": "2026-12-11T17:00:00Z"}
        ),
    )
    assert created.status_code == 204


def test_a_lookup_says_whether_its_navigation_property_is_known() -> None:
    schema = load_schema()
    task = schema["msdyn_timeentry"].columns["msdyn_projecttask"]
    assert (task.navigation, task.navigation_inferred) == ({"msdyn_projecttask": "msdyn_projectTask"}, False)
    company = schema["msdyn_expense"].columns["msdyn_owningcompany"]
    assert (company.navigation, company.navigation_inferred) == ({"cdm_company": "msdyn_owningcompany"}, True)
    owner = schema["msdyn_project"].columns["ownerid"]
    assert owner.navigation == {"owner": "ownerid"} and not owner.navigation_inferred


def test_the_live_schema_copy_names_its_source() -> None:
    copy = json.loads((Path(__file__).parents[2] / "sandbox" / "dataverse" / "live-tables.json").read_text())
    assert copy["source"]["repository"] == "microsoft/Dynamics365-Project-Operations-PowerApps"
    assert copy["source"]["commit"] == "612a2b907e04216e23b6dd9bf6e1ca61b2412b5e"
    assert copy["source"]["path"] == "time/unpack/pkgs/TableDefinitions/"
    assert set(copy["tables"]) == {
        "msdyn_project",
        "msdyn_projecttask",
        "msdyn_transactioncategory",
        "bookableresource",
        "bookableresourcecategory",
        "bookableresourcecategoryassn",
        "msdyn_projectteam",
        "msdyn_timeentry",
        "msdyn_timeentrysetting",
        "team",
        "usersettings",
    }
