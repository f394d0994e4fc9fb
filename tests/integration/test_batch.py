"""$batch through both clients against both simulators: all or nothing, errors typed."""

from __future__ import annotations

from decimal import Decimal

import pytest

from sandbox.environment import Sandbox
from sandbox.scenario import import_id
from shared.clients.batch import BatchRequest
from shared.errors import PermanentServiceError, RecordExistsError, RecordNotFoundByKeyError


async def test_finance_batch_writes_a_whole_document(sandbox: Sandbox) -> None:
    assert sandbox.runtime is not None
    finance = sandbox.runtime.engine.finance
    sandbox.finance.seed("ProjectsV2", {"dataAreaId": "usmf", "ProjectId": "P-B"})
    lines = [
        BatchRequest(
            "POST",
            "ProjActualsImports",
            {
                "dataAreaId": "usmf",
                "ActualsImportId": import_id(f"L-{n:04d}"),
                "ProjectId": "P-B",
                "Amount": Decimal("10.01"),
            },
        )
        for n in range(200)
    ]
    parts = await finance.batch(lines)
    assert [p.status for p in parts] == [201] * 200
    assert len(sandbox.finance.rows("ProjActualsImports")) == 200
    assert sum(r["Amount"] for r in sandbox.finance.rows("ProjActualsImports")) == Decimal("2002.00")

    with pytest.raises(RecordExistsError):
        await finance.batch(
            [
                BatchRequest(
                    "POST",
                    "ProjActualsImports",
                    {"dataAreaId": "usmf", "ActualsImportId": import_id("L-NEW"), "ProjectId": "P-B"},
                ),
                BatchRequest(
                    "POST",
                    "ProjActualsImports",
                    {"dataAreaId": "usmf", "ActualsImportId": import_id("L-0000"), "ProjectId": "P-B"},
                ),
            ]
        )
    assert sandbox.finance.get("ProjActualsImports", dataAreaId="usmf", ActualsImportId=import_id("L-NEW")) is None


async def test_dataverse_batch_rolls_back_and_names_the_bad_field(sandbox: Sandbox) -> None:
    assert sandbox.runtime is not None
    dataverse = sandbox.runtime.engine.dataverse
    with pytest.raises(PermanentServiceError, match="msdyn_nme"):
        await dataverse.batch(
            [
                BatchRequest(
                    "POST",
                    "msdyn_transactioncategories",
                    {"msdyn_name": "A", "msdyn_transactioncategorynumber": "TCN-A"},
                ),
                BatchRequest("POST", "msdyn_transactioncategories", {"msdyn_nme": "B"}),
            ]
        )
    assert [r for r in sandbox.dataverse.rows("msdyn_transactioncategory") if r.get("msdyn_name") == "A"] == []


async def test_dataverse_failed_changeset_answers_400_and_the_missing_reference_is_typed(sandbox: Sandbox) -> None:
    """A failed changeset answers 400 Bad Request with the failing part inside, and the client raises
    that part's own error: a bind to a missing alternate key is a missing dependency to retry, named by
    its line, not a rejected document.

    Execute batch operations using the Web API, "Handling errors":
    https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/execute-batch-operations-using-web-api#handling-errors
    """
    assert sandbox.runtime is not None
    dataverse = sandbox.runtime.engine.dataverse
    missing = "msdyn_projects(msdyn_projectnumber='PRJ-NOT-THERE')"
    with pytest.raises(RecordNotFoundByKeyError) as caught:
        await dataverse.batch(
            [
                BatchRequest(
                    "POST",
                    "msdyn_transactioncategories",
                    {"msdyn_name": "kept only if all succeed", "msdyn_transactioncategorynumber": "TCN-K"},
                ),
                BatchRequest(
                    "POST", "msdyn_projecttasks", {"msdyn_subject": "T2", "msdyn_project@odata.bind": missing}
                ),
            ]
        )
    assert caught.value.code == "0x80060891"
    assert caught.value.status == 404
    # The second request is the one named, so a person can find the line.
    assert caught.value.service_message.startswith("POST msdyn_projecttasks: ")
    batch = [r for r in sandbox.dataverse.requests if r.path.endswith("/$batch")][-1]
    assert batch.status == 400
    categories = sandbox.dataverse.rows("msdyn_transactioncategory")
    kept = [r for r in categories if r.get("msdyn_name") == "kept only if all succeed"]
    assert kept == []
