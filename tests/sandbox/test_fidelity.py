"""The simulators answer as the real services do where a flow could pass here and fail in production;
each test cites the page it holds the simulator to."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from sandbox.dataverse.server import DataverseSimulator
from sandbox.finance.server import FinanceSimulator
from shared.clients.finance import classify
from shared.decoding.dataverse import IncomingMessage, decode_dataverse
from shared.errors import PermanentServiceError, RecordExistsError, TransientServiceError
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


LOGICAL = "_msdyn_owningcompany_value@Microsoft.Dynamics.CRM.lookuplogicalname"


@pytest.mark.parametrize(
    ("prefer", "annotated"),
    [
        (None, False),
        ("odata.maxpagesize=10", False),
        ('odata.include-annotations="OData.Community.Display.V1.FormattedValue"', False),
        ('odata.include-annotations="Microsoft.Dynamics.CRM.lookuplogicalname"', True),
        ('odata.include-annotations="Microsoft.Dynamics.CRM.*"', True),
        ('odata.maxpagesize=10,odata.include-annotations="*"', True),
        ('odata.include-annotations="*,-Microsoft.Dynamics.CRM.lookuplogicalname"', False),
    ],
)
async def test_dataverse_annotates_lookups_only_when_asked(dataverse: Any, prefer: str | None, annotated: bool) -> None:
    """A lookup's `@Microsoft.Dynamics.CRM.lookuplogicalname` comes only with a Prefer
    odata.include-annotations that names it, its namespace or `*`.

    Query data using the Web API, "Formatted values" / "Lookup property data":
    https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/query-data-web-api
    Use Prefer: odata.include-annotations:
    https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/compose-http-requests-handle-errors#prefer-headers
    """
    sim, client = dataverse
    company = sim.seed("cdm_company", {"cdm_companycode": "USMF", "cdm_name": "Contoso"})
    project = sim.seed(
        "msdyn_project",
        {
            "msdyn_projectnumber": "P-1",
            "msdyn_subject": "x",
            "msdyn_OwningCompany@odata.bind": f"/cdm_companies({company})",
        },
    )
    headers = {"Prefer": prefer} if prefer else {}
    listed = (await client.get("msdyn_projects", headers=headers)).json()["value"][0]
    one = (await client.get(f"msdyn_projects({project})", headers=headers)).json()
    for row in (listed, one):
        assert row["_msdyn_owningcompany_value"] == company
        assert (LOGICAL in row) is annotated
        if annotated:
            assert row[LOGICAL] == "cdm_company"


EDM = "{http://docs.oasis-open.org/odata/ns/edm}"


async def test_dataverse_metadata_has_the_shape_csdl_readers_rely_on(dataverse: Any) -> None:
    """Entity types derive from the declared abstract `mscrm.crmbaseentity`, every navigation property's
    type is declared, a lookup's navigation carries `ReferentialConstraint Property="_x_value"` with the
    target's key, and key properties are `Nullable="false"`.

    Use the Web API with Dataverse metadata (CSDL $metadata document):
    https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/web-api-service-documents
    """
    _, client = dataverse
    root = ET.fromstring((await client.get("$metadata")).text)
    types = {t.get("Name"): t for t in root.iter(f"{EDM}EntityType")}
    base = types["crmbaseentity"]
    assert base.get("Abstract") == "true" and base.find(f"{EDM}Key") is None
    for name, entity in types.items():
        if name == "crmbaseentity":
            continue
        assert entity.get("BaseType") == "mscrm.crmbaseentity", name
        properties = {p.get("Name"): p for p in entity.iter(f"{EDM}Property")}
        for ref in entity.iter(f"{EDM}PropertyRef"):
            assert properties[ref.get("Name")].get("Nullable") == "false", (name, ref.get("Name"))
        for navigation in entity.iter(f"{EDM}NavigationProperty"):
            target = navigation.get("Type", "").removeprefix("mscrm.")
            assert target in types, (name, navigation.get("Name"))
            constraint = navigation.find(f"{EDM}ReferentialConstraint")
            assert constraint is not None, (name, navigation.get("Name"))
            assert constraint.get("Property") in properties
    project = types["msdyn_project"]
    owning = next(n for n in project.iter(f"{EDM}NavigationProperty") if n.get("Name") == "msdyn_OwningCompany")
    constraint = owning.find(f"{EDM}ReferentialConstraint")
    assert constraint is not None
    assert (owning.get("Type"), constraint.get("Property"), constraint.get("ReferencedProperty")) == (
        "mscrm.cdm_company",
        "_msdyn_owningcompany_value",
        "cdm_companyid",
    )


async def test_dataverse_refuses_a_lookup_value_property_in_a_body(dataverse: Any) -> None:
    """`_x_value` is read-only; writing it answers Dataverse's own text, which names the way out.

    Create a table row using the Web API, "Associate table rows on create" (set lookups with @odata.bind):
    https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/create-entity-web-api
    """
    sim, client = dataverse
    company = sim.seed("cdm_company", {"cdm_companycode": "USMF", "cdm_name": "Contoso"})
    response = await client.post(
        "msdyn_projects", content=dumps({"msdyn_subject": "x", "_msdyn_owningcompany_value": company})
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "code": "0x80060888",
            "message": "CRM do not support direct update of Entity Reference properties, "
            "Use Navigation properties instead.",
        }
    }
    assert [r for r in sim.rows("msdyn_project") if r.get("msdyn_subject") == "x"] == []


async def test_finance_validation_answers_400_with_the_infolog_joined(finance: Any) -> None:
    """A write Finance's validation refuses answers 400 Bad Request with an AxODataWriteException
    whose message is "Write failed for table row of type '<Entity>'. Infolog: " and the Infolog's
    entries, each led by its level, joined by "; ", ending with validateWrite's own entry naming
    the data source (published responses, e.g. "... Infolog: Warning: Item 'X' is blocked for
    'Purchase order'.; Warning: validateWrite failed on data source 'PurchLine (PurchLine)'.").
    The client classifies it by content, as a permanent refusal, not an outage.

    Open Data Protocol (OData), "Validation on writes" (errors surface as Infolog text):
    https://learn.microsoft.com/en-us/dynamics365/fin-ops-core/dev-itpro/data-entities/odata
    """
    sim, client = finance
    sim.seed("ProjectsV2", {"dataAreaId": "usmf", "ProjectId": "P-V"})
    row = {
        "dataAreaId": "usmf",
        "ActualsImportId": "3f2b8c1e-0000-4000-8000-000000000a77",
        "ProjectId": "P-V",
        "BillingType": "NotAvailable",
    }
    refused = await client.post("ProjActualsImports", content=dumps(row))
    assert refused.status_code == 400
    inner = refused.json()["error"]["innererror"]
    assert inner["type"] == "Microsoft.Dynamics.Platform.Integration.Services.OData.AxODataWriteException"
    prefix, _, infolog = inner["message"].partition(" Infolog: ")
    assert prefix.startswith("Write failed for table row of type '") and prefix.endswith("'.")
    entries = infolog.split("; ")
    assert entries[0] == "Warning: Line property NotAvailable doesn't exist."
    assert re.fullmatch(r"Warning: validateWrite failed on data source '(\w+) \(\1\)'\.", entries[-1])
    assert "\n" not in infolog

    error = classify(refused)
    assert isinstance(error, PermanentServiceError) and not isinstance(error, TransientServiceError)
    assert "Line property NotAvailable doesn't exist" in error.service_message
    duplicate = await client.post("ProjectsV2", content=dumps({"dataAreaId": "usmf", "ProjectId": "P-V"}))
    assert duplicate.status_code == 400 and isinstance(classify(duplicate), RecordExistsError)


async def test_dataverse_step_message_carries_what_dataverse_sends() -> None:
    """An Update step's message keeps a cleared column in Target as its key with a null value,
    carries RowVersion null on Target and images, has versionnumber only in the images the step
    registered, and adds the AsynchronousStepPrimaryName image (the primary name alone).

    Use Webhooks to create external handlers for server events (the sample RemoteExecutionContext):
    https://learn.microsoft.com/en-us/power-apps/developer/data-platform/use-webhooks
    """
    emitted: list[bytes] = []

    async def sink(destination: str, body: bytes, properties: dict[str, str], content_type: str) -> None:
        emitted.append(body)

    sim = DataverseSimulator(users={"t": USER}, sink=sink)
    sim.register_step("msdyn_project", "Update", post_image=True)
    await sim.start()
    try:
        async with httpx.AsyncClient(base_url=sim.api_url + "/", headers={"Authorization": "Bearer t"}) as client:
            created = await client.post(
                "msdyn_projects", content=dumps({"msdyn_subject": "P", "msdyn_description": "d"})
            )
            project = created.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")
            cleared = await client.patch(
                f"msdyn_projects({project})", content=dumps({"msdyn_description": None, "msdyn_subject": "Q"})
            )
            assert cleared.status_code == 204
    finally:
        await sim.stop()

    (body,) = emitted
    context = json.loads(body)
    target = context["InputParameters"][0]["value"]
    attributes = {a["key"]: a["value"] for a in target["Attributes"]}
    assert "msdyn_description" in attributes and attributes["msdyn_description"] is None
    assert attributes["msdyn_subject"] == "Q"
    assert "versionnumber" not in attributes
    images = {i["key"]: i["value"] for i in context["PostEntityImages"]}
    assert set(images) == {"AsynchronousStepPrimaryName", "PostImage"}
    assert [a["key"] for a in images["AsynchronousStepPrimaryName"]["Attributes"]] == ["msdyn_subject"]
    assert any(a["key"] == "versionnumber" for a in images["PostImage"]["Attributes"])
    assert target["RowVersion"] is None and all(image["RowVersion"] is None for image in images.values())

    event = decode_dataverse(IncomingMessage(body, "application/json", {}, "m-1"))
    assert event.changed is not None and "msdyn_description" in event.changed
    assert event.record is not None and event.record["msdyn_description"] is None
    assert event.version == next(a["value"] for a in images["PostImage"]["Attributes"] if a["key"] == "versionnumber")
