"""The simulators refuse what the real services refuse, with the real services' error bodies."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from sandbox.dataverse.server import DataverseSimulator
from sandbox.finance.server import FinanceSimulator
from shared.jsonio import dumps
from shared.operations.metadata import parse_metadata

USER = "5a0d0a55-0000-4000-8000-00000000b002"
IMPORT_ID = "3f2b8c1e-0000-4000-8000-000000000a01"


@pytest.fixture
async def dataverse() -> AsyncIterator[tuple[DataverseSimulator, httpx.AsyncClient, list[Any]]]:
    emitted: list[Any] = []

    async def sink(destination: str, body: bytes, properties: dict[str, str], content_type: str) -> None:
        emitted.append((destination, body, properties, content_type))

    sim = DataverseSimulator(users={"t": USER}, sink=sink)
    await sim.start()
    async with httpx.AsyncClient(base_url=sim.api_url + "/", headers={"Authorization": "Bearer t"}) as client:
        yield sim, client, emitted
    await sim.stop()


@pytest.fixture
async def finance() -> AsyncIterator[tuple[FinanceSimulator, httpx.AsyncClient, list[Any]]]:
    emitted: list[Any] = []

    async def sink(destination: str, body: bytes, properties: dict[str, str], content_type: str) -> None:
        emitted.append((destination, body, properties, content_type))

    sim = FinanceSimulator(users={"t": "aa000000-0000-4000-8000-000000000001"}, sink=sink, page_size=5)
    await sim.start()
    async with httpx.AsyncClient(base_url=sim.data_url + "/", headers={"Authorization": "Bearer t"}) as client:
        yield sim, client, emitted
    await sim.stop()


async def test_dataverse_refuses_a_misspelt_field(dataverse: Any) -> None:
    _, client, _ = dataverse
    response = await client.post("msdyn_projects", content=dumps({"msdyn_subjet": "x"}))
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "code": "0x80060888",
            "message": "The property 'msdyn_subjet' does not exist on type 'Microsoft.Dynamics.CRM.msdyn_project'. "
            "Make sure to only use property names that are defined by the type.",
        }
    }


async def test_dataverse_missing_alternate_key_bind_and_unknown_key(dataverse: Any) -> None:
    _, client, _ = dataverse
    missing = await client.post(
        "msdyn_projects", content=dumps({"msdyn_OwningCompany@odata.bind": "/cdm_companies(cdm_companycode='NOPE')"})
    )
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "0x80060891"
    bad_key = await client.get("msdyn_projects(msdyn_subject='x')")
    assert (
        bad_key.status_code == 400 and "The key in the request URI is not valid" in bad_key.json()["error"]["message"]
    )


async def test_dataverse_option_value_and_conditional_writes(dataverse: Any) -> None:
    _, client, _ = dataverse
    refused = await client.post("msdyn_actuals", content=dumps({"msdyn_transactionclassification": 5}))
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "0x8004431A"
    key = "cdm_companies(cdm_companycode='USMF')"
    assert (await client.patch(key, content=dumps({"cdm_name": "x"}), headers={"If-Match": "*"})).status_code == 404
    assert (await client.patch(key, content=dumps({"cdm_name": "Contoso"}))).status_code == 204  # upsert creates
    created_twice = await client.patch(key, content=dumps({"cdm_name": "y"}), headers={"If-None-Match": "*"})
    assert created_twice.status_code == 412
    assert created_twice.json()["error"]["message"] == "A record with matching key values already exists."
    row = (await client.get(key)).json()
    assert row["cdm_companycode"] == "USMF" and row["cdm_name"] == "Contoso"


async def test_dataverse_paging_filter_and_select(dataverse: Any) -> None:
    _, client, _ = dataverse
    for n in range(12):
        await client.post(
            "cdm_companies",
            content=dumps({"cdm_companycode": f"C{n:02d}", "cdm_name": "even" if n % 2 == 0 else "odd"}),
        )
    pages, url = [], "cdm_companies?$select=cdm_companycode"
    while url:
        body = (await client.get(url, headers={"Prefer": "odata.maxpagesize=5"})).json()
        pages.append([row["cdm_companycode"] for row in body["value"]])
        url = body.get("@odata.nextLink")
    assert [len(p) for p in pages] == [5, 5, 2]
    assert "cdm_name" not in (await client.get("cdm_companies?$select=cdm_companycode")).json()["value"][0]
    evens = (
        await client.get("cdm_companies", params={"$filter": "cdm_name eq 'even' and cdm_companycode ne 'C00'"})
    ).json()
    assert len(evens["value"]) == 5
    assert (await client.get("cdm_companies?$skip=2")).status_code == 400


async def test_dataverse_batch_changeset_rolls_back(dataverse: Any) -> None:
    sim, client, _ = dataverse
    body = (
        "--batch_1\r\nContent-Type: multipart/mixed; boundary=changeset_1\r\n\r\n"
        "--changeset_1\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: 1\r\n\r\n"
        'POST cdm_companies HTTP/1.1\r\nContent-Type: application/json; type=entry\r\n\r\n{"cdm_companycode":"B1"}\r\n'
        "--changeset_1\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: 2\r\n\r\n"
        'POST cdm_companies HTTP/1.1\r\nContent-Type: application/json; type=entry\r\n\r\n{"cdm_nope":"B2"}\r\n'
        "--changeset_1--\r\n--batch_1--\r\n"
    )
    response = await client.post("$batch", content=body, headers={"Content-Type": "multipart/mixed; boundary=batch_1"})
    # A failed changeset answers 400 Bad Request (Execute batch operations using the Web API, Handling errors).
    assert response.status_code == 400
    assert "HTTP/1.1 400" in response.text and "cdm_nope" in response.text
    assert [r for r in sim.rows("cdm_company") if r["cdm_companycode"] == "B1"] == []


async def test_dataverse_metadata_is_csdl(dataverse: Any) -> None:
    _, client, _ = dataverse
    text = (await client.get("$metadata")).text
    ET.fromstring(text)
    metadata = parse_metadata(text)
    actual = metadata.entity_for_set("msdyn_actuals")
    assert actual is not None and "msdyn_project" in actual.navigation
    assert ("msdyn_actualimportid", "msdyn_owningcompany") in actual.alternate_keys


async def test_steps_emit_remote_execution_context(dataverse: Any) -> None:
    sim, client, emitted = dataverse
    sim.register_step("msdyn_project", "Create", post_image=True)
    sim.register_step("msdyn_project", "Update", {"msdyn_subject"}, pre_image=True, post_image=True)
    sim.register_step("msdyn_project", "Delete", pre_image=True)
    response = await client.post(
        "msdyn_projects", content=dumps({"msdyn_subject": "P", "msdyn_plannedlaborcost": Decimal("10.50")})
    )
    project = response.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")
    await client.patch(f"msdyn_projects({project})", content=dumps({"msdyn_description": "unfiltered"}))
    await client.patch(f"msdyn_projects({project})", content=dumps({"msdyn_subject": "Q"}))
    await client.delete(f"msdyn_projects({project})")
    assert [e[2]["http://schemas.microsoft.com/xrm/2011/Claims/RequestName"] for e in emitted] == [
        "Create",
        "Update",
        "Delete",
    ]
    create_body = emitted[0][1].decode()
    assert '"__type":"Entity:http:\\/\\/schemas.microsoft.com\\/xrm\\/2011\\/Contracts"' in create_body
    assert "\\/Date(" in create_body
    context = json.loads(create_body)
    target = context["InputParameters"][0]["value"]
    money = next(a["value"] for a in target["Attributes"] if a["key"] == "msdyn_plannedlaborcost")
    assert money["__type"].startswith("Money:") and str(money["Value"]) == "10.5"
    assert context["InitiatingUserId"] == USER and context["Stage"] == 40 and context["Mode"] == 1
    update = json.loads(emitted[1][1])
    assert {a["key"] for a in update["InputParameters"][0]["value"]["Attributes"]} >= {"msdyn_subject"}
    assert update["PreEntityImages"][0]["key"] == "PreImage" and "__type" not in update["PreEntityImages"][0]["value"]
    delete = json.loads(emitted[2][1])
    assert delete["InputParameters"][0]["value"]["__type"].startswith("EntityReference:")


async def test_oversized_message_drops_images(dataverse: Any) -> None:
    sim, client, emitted = dataverse
    sim.register_step("msdyn_project", "Update", None, pre_image=True, post_image=True)
    response = await client.post("msdyn_projects", content=dumps({"msdyn_subject": "P"}))
    project = response.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")
    await client.patch(
        f"msdyn_projects({project})", content=dumps({"msdyn_description": "x" * 2000, "msdyn_subject": "y" * 200})
    )
    sim.schema["msdyn_project"].columns["msdyn_description"].max = None
    await client.patch(f"msdyn_projects({project})", content=dumps({"msdyn_description": "z" * 100_000}))
    _, body, properties, _ = emitted[-1]
    assert properties.get("MessageMaxSizeExceeded") == "true"
    assert "InputParameters" not in json.loads(body)


async def test_finance_refuses_misspelt_field_wrong_enum_and_duplicate_key(finance: Any) -> None:
    _, client, _ = finance
    misspelt = await client.post(
        "ProjectsV2", content=dumps({"dataAreaId": "usmf", "ProjectId": "P-1", "ProjectNme": "x"})
    )
    assert (
        misspelt.status_code == 400
        and "The property 'ProjectNme' does not exist" in misspelt.json()["error"]["message"]
    )
    wrong = await client.post(
        "ProjectsV2", content=dumps({"dataAreaId": "usmf", "ProjectId": "P-1", "ProjectStage": "Done"})
    )
    assert wrong.status_code == 400 and "'Done' is not a valid enumeration value" in wrong.json()["error"]["message"]
    assert (
        await client.post("ProjectsV2", content=dumps({"dataAreaId": "USMF", "ProjectId": "P-1"}))
    ).status_code == 201
    again = await client.post("ProjectsV2", content=dumps({"dataAreaId": "usmf", "ProjectId": "P-1"}))
    assert again.status_code == 400  # a refused write is a Bad Request; the Infolog says why
    inner = again.json()["error"]["innererror"]
    assert "The record already exists" in inner["message"] and inner["type"].endswith("AxODataWriteException")
    assert (
        await client.patch("ProjectsV2(dataAreaId='usmf',ProjectId='P-2')", content=dumps({"ProjectName": "x"}))
    ).status_code == 404
    assert (await client.get("ProjectsV2(ProjectId='P-1')")).status_code == 400  # every key field is required


async def test_finance_companies_and_paging(finance: Any) -> None:
    sim, client, _ = finance
    for n in range(7):
        sim.seed("ProjectsV2", {"dataAreaId": "usmf", "ProjectId": f"P-{n}"})
    sim.seed("ProjectsV2", {"dataAreaId": "uspi", "ProjectId": "P-X"})
    default = (await client.get("ProjectsV2")).json()
    assert {row["dataAreaId"] for row in default["value"]} == {"usmf"} and "@odata.nextLink" in default
    rows, url = [], "ProjectsV2?cross-company=true"
    while url:
        body = (await client.get(url)).json()
        rows += body["value"]
        url = body.get("@odata.nextLink")
    assert len(rows) == 8
    only = (await client.get("ProjectsV2", params={"cross-company": "true", "$filter": "dataAreaId eq 'USPI'"})).json()
    assert [row["ProjectId"] for row in only["value"]] == ["P-X"]


async def test_finance_data_events_and_posting(finance: Any) -> None:
    sim, client, emitted = finance
    sim.subscribe_data_event("ProjActualsImports")
    sim.seed("ProjectsV2", {"dataAreaId": "usmf", "ProjectId": "P-1"})
    body = {
        "dataAreaId": "usmf",
        "ActualsImportId": IMPORT_ID,
        "ProjectId": "P-1",
        "Amount": Decimal("100.10"),
        "TransactionType": "Cost",
    }
    assert (await client.post("ProjActualsImports", content=dumps(body))).status_code == 201
    sim.exchange_rates[""] = Decimal("1.10")
    assert await sim.post_actuals() == [IMPORT_ID]
    created, updated = (json.loads(e[1]) for e in emitted)
    assert (
        created["MessageName"] == "OnExternalCreated"
        and created["PrimaryEntityName"] == "mserp_projactualsimportentity"
    )
    changed = {a["key"]: a["value"] for a in updated["InputParameters"][0]["value"]["Attributes"]}
    assert changed["mserp_vouchernumber"] == "PJ-000001"
    assert str(changed["mserp_accountingamount"]) == "110.11"
    assert updated["InputParameters"][1]["key"] == "PreImage"
    assert updated["InitiatingUserAzureActiveDirectoryObjectId"] == sim.posting_object_id


async def test_finance_data_events_carry_what_the_virtual_table_has(finance: Any) -> None:
    """A virtual table has no Guid columns (entity-modeling: Guid fields "won't be made available"), and
    a data event carries the virtual table's fields; the entity key travels as text in
    mserp_primaryfield, and the row's id is the virtual table's own (entity ID + RecId), not a key."""
    sim, client, emitted = finance
    sim.subscribe_data_event("ProjActualsImports")
    sim.seed("ProjectsV2", {"dataAreaId": "usmf", "ProjectId": "P-1"})
    body = {
        "dataAreaId": "usmf",
        "ActualsImportId": IMPORT_ID,
        "ActualId": "3f2b8c1e-0000-4000-8000-000000000b01",
        "ProjectId": "P-1",
        "Amount": Decimal("100.10"),
    }
    assert (await client.post("ProjActualsImports", content=dumps(body))).status_code == 201
    assert await sim.post_actuals() == [IMPORT_ID]
    for message in (json.loads(e[1]) for e in emitted):
        for parameter in message["InputParameters"]:
            attributes = {a["key"]: a["value"] for a in parameter["value"]["Attributes"]}
            assert not {"mserp_actualsimportid", "mserp_actualid", "mserp_owninguser"} & set(attributes)
            assert attributes["mserp_primaryfield"] == "{" + IMPORT_ID.upper() + "}"
            assert attributes["mserp_dataareaid"] == "usmf"
            if parameter["key"] == "PreImage" or message["MessageName"] == "OnExternalCreated":
                assert attributes["mserp_projectid"] == "P-1"  # a whole row: every field a virtual table has
            row_id = attributes["mserp_projactualsimportentityid"]
            assert row_id == parameter["value"]["Id"] == message["PrimaryEntityId"]
            assert row_id.split("-")[1:3] == ["0000", "0000"] and IMPORT_ID not in row_id


async def test_finance_metadata_lists_enums(finance: Any) -> None:
    _, client, _ = finance
    metadata = parse_metadata((await client.get("$metadata")).text)
    projects = metadata.entity_for_set("ProjectsV2")
    assert projects is not None and projects.key == ("dataAreaId", "ProjectId")
    # The live ProjStatus members, User1 to User3 included: the copy of a live $metadata, not our guess.
    assert metadata.enum_members(projects.properties["ProjectStage"]) == {
        "Created",
        "Estimated",
        "Scheduled",
        "InProcess",
        "User1",
        "User2",
        "User3",
        "Completed",
    }
    staging = metadata.entity_for_set("ProjActualsImports")
    assert staging is not None and staging.properties["ActualsImportId"] == "Edm.Guid"


async def test_throttling_and_dropped_connections(finance: Any) -> None:
    sim, client, _ = finance
    sim.set_faults(throttle_share=1.0, retry_after_seconds=3)
    throttled = await client.get("ProjectsV2")
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "3"
    sim.set_faults(throttle_share=0.0, drop_share=1.0)
    with pytest.raises(httpx.TransportError):
        await client.get("ProjectsV2")


async def test_finance_posting_raises_business_events_after_the_activation_test(finance: Any) -> None:
    sim, _, emitted = finance
    await sim.activate_business_event("VendorInvoicePostedBusinessEvent")
    await sim.post_vendor_invoice(
        "USMF",
        {"VendorInvoiceNum": "VI-1", "InvoiceAccount": "V-100", "TransDate": "2026-11-20T12:00:00Z"},
        [{"ProjTransId": "PT-1", "ProjId": "P-1", "LineAmount": Decimal("250.00")}],
    )
    await sim.post_vendor_invoice("USMF", {"VendorInvoiceNum": "VI-2", "InvoiceAccount": "V-100"}, [])
    test, first, second = (json.loads(e[1]) for e in emitted)
    assert test["BusinessEventId"] == "" and test["ControlNumber"] == 0
    assert first["BusinessEventId"] == "VendorInvoicePostedBusinessEvent" and first["InvoiceId"] == "VI-1"
    assert first["InitiatingUserAADObjectId"].startswith("{") and len(first["EventTimeIso8601"].split(".")[1]) == 8
    assert second["ControlNumber"] > first["ControlNumber"]
    line = sim.get("ProjVendInvoiceLinesExportEntity", ProjTransId="PT-1", ProjDataAreaId="usmf")
    assert (line["LineAmount"], line["DAreaId"], line["VendorInvoiceNum"]) == (Decimal("250.00"), "usmf", "VI-1")


async def test_posting_an_expense_report_raises_each_line_s_data_event(finance: Any) -> None:
    sim, _, emitted = finance
    sim.subscribe_data_event("ProjExpensesExport", {"Created"})
    line = {"ProjId": "P-1", "CostType": "Travel", "Amount": Decimal("42.10"), "TransDate": "2026-11-20T12:00:00Z"}
    numbers = await sim.post_expense_report("USMF", "EXP-1", [line, {**line, "Amount": Decimal("7.00")}])
    assert len(numbers) == len(set(numbers)) == 2 and sim.expense_reports[("usmf", "EXP-1")] == numbers
    events = [json.loads(e[1], parse_float=Decimal) for e in emitted]
    assert [e["MessageName"] for e in events] == ["OnExternalCreated", "OnExternalCreated"]
    assert {e["PrimaryEntityName"] for e in events} == {"mserp_projexpenseexportentity"}
    first = {a["key"]: a["value"] for a in events[0]["InputParameters"][0]["value"]["Attributes"]}
    assert (first["mserp_exptransnumber"], first["mserp_referencedataareaid"]) == (numbers[0], "usmf")
    assert first["mserp_amount"] == Decimal("42.10") and first["mserp_projtransid"]


async def test_finance_batch_changeset_is_atomic(finance: Any) -> None:
    sim, client, _ = finance
    body = (
        "--batch_1\r\nContent-Type: multipart/mixed; boundary=changeset_1\r\n\r\n"
        "--changeset_1\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: 1\r\n\r\n"
        'POST ProjectsV2 HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{"dataAreaId":"usmf","ProjectId":"B-1"}\r\n'
        "--changeset_1\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: 2\r\n\r\n"
        'POST ProjectsV2 HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{"dataAreaId":"usmf","ProjectId":"B-1"}\r\n'
        "--changeset_1--\r\n--batch_1--\r\n"
    )
    response = await client.post("$batch", content=body, headers={"Content-Type": "multipart/mixed; boundary=batch_1"})
    assert response.status_code == 200 and "The record already exists" in response.text
    assert sim.get("ProjectsV2", dataAreaId="usmf", ProjectId="B-1") is None


def finance_error(response: httpx.Response) -> tuple[int, str]:
    """Finance answers OData errors as {"error": {"code", "message", "innererror": {"message", ...}}}."""
    error = response.json()["error"]
    assert set(error) >= {"code", "message"}
    return response.status_code, str((error.get("innererror") or {}).get("message") or error["message"])


async def test_finance_refuses_what_its_live_schema_does_not_have(finance: Any) -> None:
    """The schema is a live environment's $metadata: the first wave's guessed names are refused.

    OData v4 URL conventions (part 2, 4.3.1 and 5.1.1.6.1) write Guid key values bare; Finance's
    ASP.NET OData stack refuses a quoted one as a key value of the wrong type.
    """
    sim, client, _ = finance
    sim.seed("ProjectsV2", {"dataAreaId": "usmf", "ProjectId": "P-1"})
    unknown_set = await client.get("ProjCDSActualsImports")
    assert unknown_set.status_code == 404 and "No HTTP resource was found" in unknown_set.json()["error"]["message"]

    row = {"dataAreaId": "usmf", "ActualsImportId": IMPORT_ID, "ProjectId": "P-1", "TransactionType": "Cost"}
    unknown_field = await client.post("ProjActualsImports", content=dumps({**row, "AmountMST": 1}))
    status, text = finance_error(unknown_field)
    assert status == 400 and "The property 'AmountMST' does not exist on type" in text

    bad_symbol = await client.post("ProjActualsImports", content=dumps({**row, "TransactionType": "UnbilledSales"}))
    status, text = finance_error(bad_symbol)
    assert status == 400 and "Requested value 'UnbilledSales' was not found in enum ProjCDSTransType" in text

    not_a_guid = await client.post("ProjActualsImports", content=dumps({**row, "ActualsImportId": "ACT-1"}))
    status, text = finance_error(not_a_guid)
    assert status == 400 and "Cannot convert the literal 'ACT-1' to the expected type 'Edm.Guid'" in text

    bare_date = await client.post("ProjActualsImports", content=dumps({**row, "DocumentDate": "2026-11-20"}))
    assert finance_error(bare_date)[0] == 400

    assert (await client.post("ProjActualsImports", content=dumps(row))).status_code == 201
    quoted = await client.get(f"ProjActualsImports(dataAreaId='usmf',ActualsImportId='{IMPORT_ID}')")
    status, text = finance_error(quoted)
    assert status == 400 and "The key value should be format of type 'Edm.Guid'" in text
    bare = await client.get(f"ProjActualsImports(dataAreaId='usmf',ActualsImportId={IMPORT_ID})")
    assert bare.status_code == 200 and bare.json()["ActualsImportId"] == IMPORT_ID

    wrong_key = await client.get("ProjectContractLines(dataAreaId='usmf',ContractLineId='L-1')")
    status, text = finance_error(wrong_key)
    assert status == 400 and "does not match number of key properties" in text

    unknown_filter = await client.get("ProjActualsImports", params={"$filter": "TransType eq 'Cost'"})
    status, text = finance_error(unknown_filter)
    assert status == 400 and "Could not find a property named 'TransType'" in text


async def test_finance_short_key_form_and_shared_roles_fan_out(finance: Any) -> None:
    """A single-part key may stand alone (OData v4 URL conventions 4.3.1); a role for all companies
    becomes a company-specific role in every legal entity (resource-dual-write-setup-integration)."""
    sim, client, _ = finance
    for company in ("USMF", "USPI"):
        sim.seed("LegalEntities", {"LegalEntityId": company, "Name": company})
    role = {"RoleId": "Developer", "Description": "Developer", "IsCategoryDisabled": "False"}
    assert (await client.post("ResourceCategoriesShared", content=dumps(role))).status_code == 201
    assert (await client.get("ResourceCategoriesShared('Developer')")).json()["Description"] == "Developer"
    patched = await client.patch("ResourceCategoriesShared('Developer')", content=dumps({"IsCategoryDisabled": "True"}))
    assert patched.status_code == 204
    per_company = {(r["dataAreaId"], r["RoleId"], r["IsCategoryDisabled"]) for r in sim.rows("ResourceCategories")}
    assert per_company == {("usmf", "Developer", "True"), ("uspi", "Developer", "True")}


def finance_changesets(*rows: dict[str, Any]) -> str:
    """A $batch holding one changeset per row, each a POST to ProjectsV2, Content-IDs 1..n across the batch."""
    lines: list[str] = []
    for number, row in enumerate(rows, start=1):
        lines += [
            "--batch_1",
            f"Content-Type: multipart/mixed; boundary=changeset_{number}",
            "",
            f"--changeset_{number}",
            "Content-Type: application/http",
            "Content-Transfer-Encoding: binary",
            f"Content-ID: {number}",
            "",
            "POST ProjectsV2 HTTP/1.1",
            "Content-Type: application/json",
            "",
            json.dumps(row),
            f"--changeset_{number}--",
        ]
    return "\r\n".join([*lines, "--batch_1--", ""])


BATCH_TYPE = {"Content-Type": "multipart/mixed; boundary=batch_1"}
CONTINUE = {**BATCH_TYPE, "Prefer": "odata.continue-on-error"}


async def test_finance_answers_each_changeset_of_a_batch_on_its_own(finance: Any) -> None:
    """Several changesets: the failing one is rolled back alone and answers the Infolog (500 inside a
    batch, as captured), the others are committed; with continue-on-error every changeset is run."""
    sim, client, _ = finance
    sim.seed("ProjectsV2", {"dataAreaId": "usmf", "ProjectId": "B-0"})
    body = finance_changesets(
        {"dataAreaId": "usmf", "ProjectId": "B-1"},
        {"dataAreaId": "usmf", "ProjectId": "B-0"},
        {"dataAreaId": "usmf", "ProjectId": "B-2"},
    )
    response = await client.post("$batch", content=body, headers=CONTINUE)
    assert response.status_code == 200
    assert sim.get("ProjectsV2", dataAreaId="usmf", ProjectId="B-1") is not None
    assert sim.get("ProjectsV2", dataAreaId="usmf", ProjectId="B-2") is not None
    answers = response.text.split("Content-ID: ")[1:]
    assert [(a[0], a.split("HTTP/1.1 ")[1][:3]) for a in answers] == [("1", "201"), ("2", "500"), ("3", "201")]
    failed = json.loads(answers[1].split("\r\n\r\n", 2)[2].split("\r\n--")[0])
    assert failed["error"]["innererror"]["type"].endswith("AxODataWriteException")
    assert "The record already exists" in failed["error"]["innererror"]["message"]


async def test_finance_batch_without_continue_on_error_stops_at_the_first_failed_changeset(finance: Any) -> None:
    """OData 4.0 (Prefer odata.continue-on-error): without the preference the service stops at the first
    error; the changesets before it stay committed, those after it are not run."""
    sim, client, _ = finance
    sim.seed("ProjectsV2", {"dataAreaId": "usmf", "ProjectId": "B-0"})
    body = finance_changesets(
        {"dataAreaId": "usmf", "ProjectId": "B-1"},
        {"dataAreaId": "usmf", "ProjectId": "B-0"},
        {"dataAreaId": "usmf", "ProjectId": "B-2"},
    )
    response = await client.post("$batch", content=body, headers=BATCH_TYPE)
    assert response.status_code == 200 and response.text.count("HTTP/1.1 ") == 2
    assert sim.get("ProjectsV2", dataAreaId="usmf", ProjectId="B-1") is not None
    assert sim.get("ProjectsV2", dataAreaId="usmf", ProjectId="B-2") is None


async def test_finance_refuses_a_batch_over_its_operation_limit(finance: Any) -> None:
    sim, client, _ = finance
    sim.max_batch_operations = 3
    rows = [{"dataAreaId": "usmf", "ProjectId": f"L-{n}"} for n in range(4)]
    response = await client.post("$batch", content=finance_changesets(*rows), headers=CONTINUE)
    status, text = finance_error(response)
    assert status == 400 and "maximum number of '3'" in text
    assert sim.rows("ProjectsV2") == []
    within = await client.post("$batch", content=finance_changesets(*rows[:3]), headers=CONTINUE)
    assert within.status_code == 200 and len(sim.rows("ProjectsV2")) == 3
