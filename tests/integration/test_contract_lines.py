"""Contract lines through the sandbox: what Finance's billing rules hold when Dataverse's lines disagree
with Finance's key."""

from __future__ import annotations

import uuid
from typing import Any

from sandbox.demo_data import CUSTOMER_ID, ORDER_ID, ORDER_LINE_ID, USMF_ID
from sandbox.environment import Sandbox
from sandbox.scenario import create_project_setup
from tests.integration.conftest import finance_writes, parked, send


def billing_rules(sandbox: Sandbox) -> list[tuple[Any, ...]]:
    return sorted(
        (r["ProjectContractId"], r["LineSequenceNumber"], r["ContractLineId"], r["Description"])
        for r in sandbox.finance.rows("ProjectContractLines")
    )


async def test_a_second_line_of_the_same_sequence_number_parks_naming_both_and_leaves_the_first_rule(
    sandbox: Sandbox,
) -> None:
    """Dataverse does not keep a contract's sequence numbers unique; Finance keys a billing rule by
    contract and line number. The second line's create is refused as existing, and the rule it would
    fall back to updating is the first line's: parked, not written over."""
    await create_project_setup(sandbox)
    await sandbox.wait_quiet()
    first = [("ORD-1001", 1, ORDER_LINE_ID, "Consulting, time and material")]
    assert billing_rules(sandbox) == first
    second = str(uuid.uuid4())
    async with sandbox.person_dataverse() as dv:
        await send(
            dv,
            "POST",
            "salesorderdetails",
            {
                "salesorderdetailid": second,
                "productdescription": "Fixed fee design",
                "sequencenumber": 1,
                "msdyn_billingmethod": 192350001,
                "salesorderid@odata.bind": f"/salesorders({ORDER_ID})",
                "msdyn_owningcompany@odata.bind": f"/cdm_companies({USMF_ID})",
            },
        )
    await sandbox.wait_quiet()
    assert billing_rules(sandbox) == first
    assert [method for method, _ in finance_writes(sandbox, "ProjectContractLines")] == ["POST", "POST"]
    [(flow, reason, error)] = await parked(sandbox)
    assert (flow, reason) == ("contract-lines", "mapping-error")
    assert second in error and ORDER_LINE_ID in error and "LineSequenceNumber=1" in error


async def test_a_rule_that_is_the_line_s_own_or_nobody_s_is_updated_when_its_create_is_refused(
    sandbox: Sandbox,
) -> None:
    """A rule already holding this line's id (a create whose answer was lost) or no line id at all (one
    made in Finance) is the line's to write: the refused create falls back to updating it."""
    await create_project_setup(sandbox)
    await sandbox.wait_quiet()
    own, adopted = str(uuid.uuid4()), str(uuid.uuid4())
    async with sandbox.person_finance() as fo:
        for number, line_id in ((2, own), (3, "")):
            rule = {"dataAreaId": "usmf", "ProjectContractId": "ORD-1001", "LineSequenceNumber": number}
            await send(fo, "POST", "ProjectContractLines", {**rule, "ContractLineId": line_id, "Description": "old"})
    async with sandbox.person_dataverse() as dv:
        for number, line_id in ((2, own), (3, adopted)):
            await send(
                dv,
                "POST",
                "salesorderdetails",
                {
                    "salesorderdetailid": line_id,
                    "productdescription": f"Phase {number}",
                    "sequencenumber": number,
                    "msdyn_billingmethod": 192350000,
                    "salesorderid@odata.bind": f"/salesorders({ORDER_ID})",
                    "msdyn_owningcompany@odata.bind": f"/cdm_companies({USMF_ID})",
                },
            )
    await sandbox.wait_quiet()
    assert billing_rules(sandbox) == [
        ("ORD-1001", 1, ORDER_LINE_ID, "Consulting, time and material"),
        ("ORD-1001", 2, own, "Phase 2"),
        ("ORD-1001", 3, adopted, "Phase 3"),
    ]
    assert await parked(sandbox) == []


async def test_a_line_renumbered_then_moved_then_deleted_leaves_finance_no_rule_of_it(sandbox: Sandbox) -> None:
    """A line's sequence number and contract are writable in Dataverse, and both are in the key of its
    Finance billing rule: the rule under the key last written is deleted before the rule under the new
    one is created, so the line never has two rules, and its delete leaves none."""
    await create_project_setup(sandbox)
    await sandbox.wait_quiet()
    line = "/data/ProjectContractLines(dataAreaId='usmf',ProjectContractId='ORD-1001',LineSequenceNumber=1)"
    async with sandbox.person_dataverse() as dv:
        await send(dv, "PATCH", f"salesorderdetails({ORDER_LINE_ID})", {"sequencenumber": 2})
    await sandbox.wait_quiet()
    assert billing_rules(sandbox) == [("ORD-1001", 2, ORDER_LINE_ID, "Consulting, time and material")]
    assert finance_writes(sandbox, "ProjectContractLines")[-2:] == [
        ("DELETE", line),
        ("POST", "/data/ProjectContractLines"),
    ]
    second = str(uuid.uuid4())
    async with sandbox.person_dataverse() as dv:
        await send(
            dv,
            "POST",
            "salesorders",
            {
                "salesorderid": second,
                "ordernumber": "ORD-1002",
                "msdyn_salesordernumber": "ORD-1002",
                "name": "Second contract",
                "msdyn_ordertype": 192350001,
                "paymenttermscode": 1,
                "customerid@odata.bind": f"/accounts({CUSTOMER_ID})",
                "msdyn_owningcompany@odata.bind": f"/cdm_companies({USMF_ID})",
            },
        )
    await sandbox.wait_quiet()
    async with sandbox.person_dataverse() as dv:
        await send(
            dv, "PATCH", f"salesorderdetails({ORDER_LINE_ID})", {"salesorderid@odata.bind": f"/salesorders({second})"}
        )
    await sandbox.wait_quiet()
    assert billing_rules(sandbox) == [("ORD-1002", 2, ORDER_LINE_ID, "Consulting, time and material")]
    async with sandbox.person_dataverse() as dv:
        assert (await dv.delete(f"salesorderdetails({ORDER_LINE_ID})")).status_code == 204
    await sandbox.wait_quiet()
    assert billing_rules(sandbox) == []
    assert await parked(sandbox) == []
