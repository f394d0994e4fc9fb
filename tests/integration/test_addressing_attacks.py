"""A record number typed by any Dataverse user cannot make the integration touch another Finance record.

Against the first wave, a project numbered `x/../CustomersV3(dataAreaId='usmf',CustomerAccount='US-001')?`
made the integration DELETE that customer when the project was deleted, and `VICTIM')?` redirected a
PATCH to another project. Through the sandbox now: the project reaches Finance (its key travels in the
body of a create), its update and delete are parked with the reason, and the victims are untouched.
"""

from __future__ import annotations

from sandbox.environment import Sandbox
from tests.integration.conftest import parked, send
from tests.integration.test_flows import PROJECT, project_body

CLIMB = "x/../CustomersV3(dataAreaId='usmf',CustomerAccount='US-001')?"
CLOSE_EARLY = "VICTIM')?"


async def test_a_project_number_that_climbs_the_path_deletes_nothing_else(sandbox: Sandbox) -> None:
    customer_before = sandbox.finance.get("CustomersV3", dataAreaId="usmf", CustomerAccount="US-001")
    assert customer_before is not None
    async with sandbox.person_dataverse() as dv:
        await send(dv, "POST", "msdyn_projects", project_body(CLIMB))
        await sandbox.wait_quiet()
        assert sandbox.finance.get("ProjectsV2", dataAreaId="usmf", ProjectId=CLIMB) is not None
        await send(dv, "DELETE", f"msdyn_projects({PROJECT})")
    await sandbox.wait_quiet()
    assert sandbox.finance.get("CustomersV3", dataAreaId="usmf", CustomerAccount="US-001") == customer_before
    assert not [r for r in sandbox.finance.requests if r.method == "DELETE"]
    [(flow, reason, error)] = await parked(sandbox)
    assert (flow, reason) == ("projects-v2", "mapping-error")
    assert "which the service cannot address in a URL" in error and "'/'" in error


async def test_a_project_number_that_closes_the_key_early_updates_no_other_project(sandbox: Sandbox) -> None:
    async with sandbox.person_finance() as fo:
        await send(fo, "POST", "ProjectsV2", {"dataAreaId": "usmf", "ProjectId": "VICTIM", "ProjectName": "Victim"})
    async with sandbox.person_dataverse() as dv:
        await send(dv, "POST", "msdyn_projects", project_body(CLOSE_EARLY))
        await sandbox.wait_quiet()
        await send(dv, "PATCH", f"msdyn_projects({PROJECT})", {"msdyn_subject": "Hijacked"})
    await sandbox.wait_quiet()
    victim = sandbox.finance.get("ProjectsV2", dataAreaId="usmf", ProjectId="VICTIM")
    assert victim is not None and victim["ProjectName"] == "Victim"
    assert not [r for r in sandbox.finance.requests if r.method == "PATCH"]
    [(flow, reason, error)] = await parked(sandbox)
    assert (flow, reason) == ("projects-v2", "mapping-error") and "'?'" in error
