"""register-steps over a Dataverse that already has steps: a release that changes the flows on a table,
a map extension that adds a column, a run that stopped between a step and its image. What is checked is
what Dataverse holds and what its steps send afterwards."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from functions.catalog import CATALOG
from sandbox.environment import Sandbox, SandboxOptions
from shared.clients.base import DataverseApi
from shared.errors import ServiceError
from shared.operations.register_steps import EndpointConfig, register_steps
from tests.integration.conftest import send, started
from tests.integration.test_flows import project_body

CONFIG = EndpointConfig("contoso-projops.servicebus.windows.net", "dataverse-send", "not-a-real-key")
OTHER = "c0a1e000-0000-4000-8000-00000000aa02"


@pytest.fixture
async def unregistered() -> AsyncIterator[Sandbox]:
    """A Dataverse with no steps yet, as before the first register-steps."""
    async with started(SandboxOptions(register_steps=False)) as environment:
        yield environment


def _dataverse(sandbox: Sandbox) -> DataverseApi:
    assert sandbox.runtime is not None
    return sandbox.runtime.engine.dataverse


def _images(sandbox: Sandbox, step: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        i
        for i in sandbox.dataverse.rows("sdkmessageprocessingstepimage")
        if i["sdkmessageprocessingstepid"] == step["sdkmessageprocessingstepid"]
    ]


def _named(sandbox: Sandbox, name: str) -> dict[str, Any]:
    [step] = [s for s in sandbox.dataverse.rows("sdkmessageprocessingstep") if s["name"] == name]
    return step


async def _sent_for(sandbox: Sandbox, method: str, url: str, body: dict[str, Any] | None = None) -> int:
    """How many messages Dataverse's steps put on the topic for one change a person makes."""
    before = sandbox.dataverse.emitted
    async with sandbox.person_dataverse() as dv:
        await send(dv, method, url, body)
    return sandbox.dataverse.emitted - before


def _record_sent(sandbox: Sandbox) -> list[dict[str, Any]]:
    """The bodies Dataverse's steps put on the topic from now on, decoded."""
    sent: list[dict[str, Any]] = []
    sink = sandbox.dataverse.sink
    assert sink is not None

    async def recording(destination: str, body: bytes, properties: dict[str, str], content_type: str) -> None:
        sent.append(json.loads(body))
        await sink(destination, body, properties, content_type)

    sandbox.dataverse.sink = recording
    return sent


async def test_the_simulator_refuses_an_image_a_step_cannot_have(unregistered: Sandbox) -> None:
    sandbox, dataverse = unregistered, _dataverse(unregistered)
    await register_steps(dataverse, CATALOG, CONFIG)
    create = _named(sandbox, "projops-sync: projects-v2 Create of msdyn_project")
    [image] = _images(sandbox, create)
    with pytest.raises(ServiceError):
        await dataverse.write(
            "sdkmessageprocessingstepimages",
            {"sdkmessageprocessingstepimageid": image["sdkmessageprocessingstepimageid"]},
            {"imagetype": 0},
            "update",
        )
    assert _images(sandbox, create)[0]["imagetype"] == 1


async def test_a_registered_step_sends_as_dataverse_holds_it(unregistered: Sandbox) -> None:
    """Disabled, it sends nothing; its image holds the columns the image lists; deleted, its image goes too."""
    sandbox, dataverse = unregistered, _dataverse(unregistered)
    await register_steps(dataverse, CATALOG, CONFIG)
    create = _named(sandbox, "projops-sync: projects-v2 Create of msdyn_project")
    [image] = _images(sandbox, create)
    image_id = {"sdkmessageprocessingstepimageid": image["sdkmessageprocessingstepimageid"]}
    await dataverse.write("sdkmessageprocessingstepimages", image_id, {"attributes": "msdyn_subject"}, "update")
    sent = _record_sent(sandbox)
    async with sandbox.person_dataverse() as dv:
        await send(dv, "POST", "msdyn_projects", project_body())
    [post] = [i["value"] for i in sent[0]["PostEntityImages"] if i["key"] == "PostImage"]
    assert [a["key"] for a in post["Attributes"]] == ["msdyn_subject"]

    step = {"sdkmessageprocessingstepid": create["sdkmessageprocessingstepid"]}
    await dataverse.write("sdkmessageprocessingsteps", step, {"statecode": 1, "statuscode": 2}, "update")
    assert await _sent_for(sandbox, "POST", "msdyn_projects", project_body("PRJ-2002", msdyn_projectid=OTHER)) == 0
    await dataverse.delete("sdkmessageprocessingsteps", step)
    assert _images(sandbox, create) == []
