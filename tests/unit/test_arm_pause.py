"""pause / resume against Resource Manager, whose PUT config/appsettings replaces the whole set
(Web Apps - Update Application Settings): calls at the same time must not undo each other."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from functions.catalog import CATALOG
from shared.errors import OperatorError
from shared.operations.pause import ArmFunctionSwitch, disabled_setting, pause, resume

APP_ID = "/subscriptions/s/resourceGroups/rg-projops/providers/Microsoft.Web/sites/func-contosopo"
ACTUALS = CATALOG.by_name("actuals")
PROJECTS = CATALOG.by_name("projects-v2")
MILESTONES = CATALOG.by_name("contract-milestones")


class SlowArm:
    """The app's settings behind list and replace, each answer taking Resource Manager's time."""

    def __init__(self, settings: dict[str, str]) -> None:
        self.settings = dict(settings)
        self.puts = 0
        # Called after each PUT lands: another writer that got in just after it.
        self.after_put: Any = None

    async def handle(self, request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.02)
        if request.method == "POST" and request.url.path == f"{APP_ID}/config/appsettings/list":
            return httpx.Response(200, json={"properties": dict(self.settings)})
        if request.method == "PUT" and request.url.path == f"{APP_ID}/config/appsettings":
            self.settings = dict(json.loads(request.content)["properties"])
            self.puts += 1
            if self.after_put is not None:
                self.after_put(self)
            return httpx.Response(200, json={"properties": dict(self.settings)})
        return httpx.Response(404)


class Credential:
    async def get_token(self, *scopes: str) -> Any:
        return SimpleNamespace(token="t")


def switch(arm: SlowArm) -> ArmFunctionSwitch:
    client = httpx.AsyncClient(base_url="https://management.azure.com", transport=httpx.MockTransport(arm.handle))
    made = ArmFunctionSwitch(APP_ID, Credential(), client)
    made.settle_delay, made.retry_delay = 0.05, (0.0, 0.1)
    return made


def disabled(arm: SlowArm) -> set[str]:
    return {k for k, v in arm.settings.items() if k.startswith("AzureWebJobs.") and v == "true"}


async def test_two_pauses_at_once_both_hold() -> None:
    arm = SlowArm({"FUNCTIONS_WORKER_RUNTIME": "python"})
    a, b = switch(arm), switch(arm)
    await asyncio.gather(pause(a, ACTUALS), pause(b, PROJECTS))
    assert disabled(arm) == {disabled_setting(ACTUALS.function_name), disabled_setting(PROJECTS.function_name)}
    assert arm.settings["FUNCTIONS_WORKER_RUNTIME"] == "python"
    await a.close()
    await b.close()


async def test_a_pause_and_a_resume_at_once_both_hold() -> None:
    arm = SlowArm({disabled_setting(MILESTONES.function_name): "true"})
    a, b = switch(arm), switch(arm)
    await asyncio.gather(pause(a, ACTUALS), resume(b, MILESTONES))
    assert disabled(arm) == {disabled_setting(ACTUALS.function_name)}
    await a.close()
    await b.close()


async def test_many_switches_at_once_all_hold() -> None:
    arm = SlowArm({})
    maps = [m for m in CATALOG.maps][:6]
    switches = [switch(arm) for _ in maps]
    await asyncio.gather(*(pause(s, m) for s, m in zip(switches, maps, strict=True)))
    assert disabled(arm) == {disabled_setting(m.function_name) for m in maps}
    for s in switches:
        await s.close()


async def test_a_pause_already_in_place_writes_nothing() -> None:
    # A write would put back whatever it read, over a change another writer made meanwhile.
    arm = SlowArm({disabled_setting(ACTUALS.function_name): "true"})
    s = switch(arm)
    await pause(s, ACTUALS)
    assert arm.puts == 0
    await s.close()


async def test_a_pause_undone_every_time_fails_saying_so() -> None:
    arm = SlowArm({"PROJOPS_COMPANIES": "USMF"})
    before = dict(arm.settings)

    def older_write(arm: SlowArm) -> None:
        arm.settings = dict(before)  # a writer that read before this pause, landing just after it

    arm.after_put = older_write
    s = switch(arm)
    with pytest.raises(OperatorError) as raised:
        await pause(s, ACTUALS)
    message = str(raised.value)
    assert disabled_setting(ACTUALS.function_name) in message and "did not hold" in message
    assert arm.puts == s.attempts
    assert disabled(arm) == set()
    await s.close()


async def test_a_write_from_an_older_read_landing_after_the_pause_is_put_right() -> None:
    # `az functionapp config appsettings set` read the settings before the pause and writes just after
    # the pause's PUT answered: the pause looks again after a moment and puts its setting back.
    arm = SlowArm({"PROJOPS_COMPANIES": "USMF"})
    older = {**arm.settings, "PROJOPS_MILESTONE_INVOICED_CUTOVER": "true"}
    late: list[asyncio.Task[None]] = []

    async def write_older() -> None:
        await asyncio.sleep(0.03)
        arm.settings = dict(older)

    def once(arm: SlowArm) -> None:
        arm.after_put = None
        late.append(asyncio.create_task(write_older()))

    arm.after_put = once
    s = switch(arm)
    await pause(s, ACTUALS)
    await asyncio.gather(*late)
    assert disabled(arm) == {disabled_setting(ACTUALS.function_name)}
    assert arm.settings["PROJOPS_MILESTONE_INVOICED_CUTOVER"] == "true"  # the other write kept too
    await s.close()
