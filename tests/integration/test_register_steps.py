"""register-steps over a Dataverse that already has steps: a release that changes the flows on a table,
a map extension that adds a column, a run that stopped between a step and its image. What is checked is
what Dataverse holds and what its steps send afterwards."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from functions.catalog import CATALOG
from functions.map_extensions import read_extensions
from sandbox.environment import DEMO_CUSTOM_COLUMNS, DEMO_MAP_EXTENSIONS, Sandbox, SandboxOptions
from shared.clients.addressing import bind_reference
from shared.clients.base import DataverseApi
from shared.decoding.images import complete_image_alias
from shared.errors import ServiceError
from shared.maps import Registry
from shared.operations.register_steps import EndpointConfig, register_steps, report_text
from tests.integration.conftest import send, started
from tests.integration.test_flows import PROJECT, project_body

CONFIG = EndpointConfig("contoso-projops.servicebus.windows.net", "dataverse-send", "not-a-real-key")
OTHER = "c0a1e000-0000-4000-8000-00000000aa02"
ESTIMATE_LINE = "c0a1e000-0000-4000-8000-0000000e2001"


@pytest.fixture
async def unregistered() -> AsyncIterator[Sandbox]:
    """A Dataverse with no steps yet, as before the first register-steps."""
    async with started(SandboxOptions(register_steps=False)) as environment:
        yield environment


@pytest.fixture
async def extended() -> AsyncIterator[Sandbox]:
    """The flows run with the demo's map extension (cnt_costcenter on projects); no steps yet."""
    options = SandboxOptions(
        register_steps=False, map_extensions=str(DEMO_MAP_EXTENSIONS), custom_columns=DEMO_CUSTOM_COLUMNS
    )
    async with started(options) as environment:
        yield environment


def _dataverse(sandbox: Sandbox) -> DataverseApi:
    assert sandbox.runtime is not None
    return sandbox.runtime.engine.dataverse


def _steps(sandbox: Sandbox, entity: str) -> list[dict[str, Any]]:
    filters = {
        row["sdkmessagefilterid"]: row["primaryobjecttypecode"] for row in sandbox.dataverse.rows("sdkmessagefilter")
    }
    return [s for s in sandbox.dataverse.rows("sdkmessageprocessingstep") if filters[s["sdkmessagefilterid"]] == entity]


def _without(registry: Registry, *flows: str) -> Registry:
    return Registry(tuple(m for m in registry.maps if m.name not in flows))


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
    [post] = [i["value"] for i in sent[0]["PostEntityImages"] if i["key"] == image["entityalias"]]
    assert [a["key"] for a in post["Attributes"]] == ["msdyn_subject"]

    step = {"sdkmessageprocessingstepid": create["sdkmessageprocessingstepid"]}
    await dataverse.write("sdkmessageprocessingsteps", step, {"statecode": 1, "statuscode": 2}, "update")
    assert await _sent_for(sandbox, "POST", "msdyn_projects", project_body("PRJ-2002", msdyn_projectid=OTHER)) == 0
    await dataverse.delete("sdkmessageprocessingsteps", step)
    assert _images(sandbox, create) == []


async def test_a_flow_added_on_a_table_renames_its_steps_and_each_change_is_sent_once(unregistered: Sandbox) -> None:
    sandbox, dataverse = unregistered, _dataverse(unregistered)
    # The release before ran one flow on estimate lines; this one runs two.
    await register_steps(dataverse, _without(CATALOG, "material-estimates"), CONFIG)
    old_ids = {s["sdkmessageprocessingstepid"] for s in _steps(sandbox, "msdyn_estimateline")}

    plan = await register_steps(dataverse, CATALOG, CONFIG, dry_run=True)
    report = await register_steps(dataverse, CATALOG, CONFIG)

    steps = _steps(sandbox, "msdyn_estimateline")
    assert sorted(s["name"] for s in steps) == [
        f"projops-sync: expense-estimates,material-estimates {m} of msdyn_estimateline"
        for m in ("Create", "Delete", "Update")
    ]
    # The same steps, renamed in place: no moment in which none fires, none beside them that fires too.
    assert {s["sdkmessageprocessingstepid"] for s in steps} == old_ids
    update = _named(sandbox, "projops-sync: expense-estimates,material-estimates Update of msdyn_estimateline")
    assert "msdyn_product" in update["filteringattributes"]  # what material-estimates reads
    name = "projops-sync: expense-estimates,material-estimates Create of msdyn_estimateline"
    assert report.steps[name] == plan.steps[name] == "update"
    assert "renamed from 'projops-sync: expense-estimates Create of msdyn_estimateline'" in report_text(
        report, dry_run=False
    )
    assert await _sent_for(sandbox, "POST", "msdyn_estimatelines", {"msdyn_estimatelineid": ESTIMATE_LINE}) == 1

    again = await register_steps(dataverse, CATALOG, CONFIG)
    assert not again.changed, report_text(again, dry_run=False)


async def test_steps_doubled_by_an_earlier_run_and_steps_no_map_needs_are_deleted(unregistered: Sandbox) -> None:
    sandbox, dataverse = unregistered, _dataverse(unregistered)
    await register_steps(dataverse, CATALOG, CONFIG)
    # What an earlier register-steps left beside the step when a flow was added on the table: a second
    # step of ours on the same table and message, with its image.
    kept = _named(sandbox, "projops-sync: projects-v2 Create of msdyn_project")
    second = (
        await dataverse.create(
            "sdkmessageprocessingsteps",
            {
                **{k: kept[k] for k in ("stage", "mode", "rank", "supporteddeployment", "asyncautodelete")},
                "name": "projops-sync: projects-v1 Create of msdyn_project",
                "sdkmessageid@odata.bind": bind_reference("sdkmessages", {"id": kept["sdkmessageid"]}),
                "sdkmessagefilterid@odata.bind": bind_reference(
                    "sdkmessagefilters", {"id": kept["sdkmessagefilterid"]}
                ),
                "eventhandler_serviceendpoint@odata.bind": bind_reference(
                    "serviceendpoints", {"id": kept["eventhandler"]}
                ),
            },
        )
    ).entity_id
    await dataverse.create(
        "sdkmessageprocessingstepimages",
        {
            "name": "PostImage",
            "entityalias": "PostImage",
            "imagetype": 1,
            "messagepropertyname": "Id",
            "sdkmessageprocessingstepid@odata.bind": bind_reference("sdkmessageprocessingsteps", {"id": second}),
        },
    )
    assert await _sent_for(sandbox, "POST", "msdyn_projects", project_body()) == 2

    # A release that takes the last flow off a table: its steps would keep sending what nothing reads.
    plan = await register_steps(dataverse, _without(CATALOG, "project-tasks"), CONFIG, dry_run=True)
    assert len(_steps(sandbox, "msdyn_project")) == 4 and len(_steps(sandbox, "msdyn_projecttask")) == 3
    report = await register_steps(dataverse, _without(CATALOG, "project-tasks"), CONFIG)

    assert plan.steps == report.steps
    assert report.steps["projops-sync: projects-v1 Create of msdyn_project"] == "delete"
    assert report.steps["projops-sync: projects-v2 Create of msdyn_project"] == "unchanged"
    assert [report.steps[f"projops-sync: project-tasks {m} of msdyn_projecttask"] for m in ("Create", "Update")] == [
        "delete",
        "delete",
    ]
    assert {s["name"] for s in _steps(sandbox, "msdyn_project")} == {
        f"projops-sync: projects-v2 {m} of msdyn_project" for m in ("Create", "Update", "Delete")
    }
    assert _steps(sandbox, "msdyn_projecttask") == []
    live = {i["sdkmessageprocessingstepid"] for i in sandbox.dataverse.rows("sdkmessageprocessingstepimage")}
    assert live == {s["sdkmessageprocessingstepid"] for s in sandbox.dataverse.rows("sdkmessageprocessingstep")}
    assert await _sent_for(sandbox, "PATCH", f"msdyn_projects({PROJECT})", {"msdyn_subject": "Renamed"}) == 1
    text = report_text(report, dry_run=False)
    assert (
        "projops-sync: projects-v1 Create of msdyn_project: delete (a second step for Create of msdyn_project)" in text
    )
    assert not (await register_steps(dataverse, _without(CATALOG, "project-tasks"), CONFIG)).changed


async def test_a_step_someone_disabled_is_kept_disabled_and_said_so(unregistered: Sandbox) -> None:
    sandbox, dataverse = unregistered, _dataverse(unregistered)
    await register_steps(dataverse, CATALOG, CONFIG)
    update = _named(sandbox, "projops-sync: projects-v2 Update of msdyn_project")
    step = {"sdkmessageprocessingstepid": update["sdkmessageprocessingstepid"]}
    await dataverse.write("sdkmessageprocessingsteps", step, {"statecode": 1, "statuscode": 2}, "update")
    async with sandbox.person_dataverse() as dv:
        await send(dv, "POST", "msdyn_projects", project_body())
    assert await _sent_for(sandbox, "PATCH", f"msdyn_projects({PROJECT})", {"msdyn_subject": "Renamed"}) == 0

    report = await register_steps(dataverse, CATALOG, CONFIG)
    assert _named(sandbox, update["name"])["statecode"] == 1
    assert report.disabled == [update["name"]]
    assert f"step {update['name']} is disabled in Dataverse: it sends nothing until it is enabled" in report_text(
        report, dry_run=False
    )
    assert len(_steps(sandbox, "msdyn_project")) == 3


def _extended() -> Registry:
    return read_extensions(Path(DEMO_MAP_EXTENSIONS), CATALOG)


async def test_a_column_a_map_extension_adds_reaches_every_image(extended: Sandbox) -> None:
    sandbox, dataverse = extended, _dataverse(extended)
    # The steps as the release before the extension registered them.
    await register_steps(dataverse, CATALOG, CONFIG)
    async with sandbox.person_dataverse() as dv:
        await send(dv, "POST", "msdyn_projects", project_body())
    await sandbox.wait_quiet()

    report = await register_steps(dataverse, _extended(), CONFIG)
    for message in ("Create", "Update", "Delete"):
        name = f"projops-sync: projects-v2 {message} of msdyn_project"
        [image] = _images(sandbox, _named(sandbox, name))
        assert "cnt_costcenter" in image["attributes"].split(","), message
        assert report.steps[name] == "update" and "attributes" in report.details[name]
        # A post image's alias names its columns: it changes with them, in the same write.
        assert ("entityalias" in report.details[name]) is (message != "Delete")

    sent = _record_sent(sandbox)
    async with sandbox.person_dataverse() as dv:
        await send(dv, "PATCH", f"msdyn_projects({PROJECT})", {"cnt_costcenter": "cc-42"})
    await sandbox.wait_quiet()
    # The post image the Update step sent holds the new column (a flow missing a column it reads in
    # the image reads the whole row again).
    [update] = sent
    # Under the alias that says the image holds every column the extended flows read.
    alias = complete_image_alias(_extended().dataverse_columns("msdyn_project") or ())
    [post] = [i["value"] for i in update["PostEntityImages"] if i["key"] == alias]
    assert {"key": "cnt_costcenter", "value": "cc-42"} in post["Attributes"]
    project = sandbox.finance.get("ProjectsV2", dataAreaId="usmf", ProjectId="PRJ-2001")
    assert project is not None and project["DimensionDisplayValue"] == "CC-42"
    assert not (await register_steps(dataverse, _extended(), CONFIG)).changed


async def test_a_step_left_without_its_image_gets_it_on_the_next_run(unregistered: Sandbox) -> None:
    sandbox, dataverse = unregistered, _dataverse(unregistered)
    await register_steps(dataverse, CATALOG, CONFIG)
    # A run that stopped between creating the step and creating its image.
    name = "projops-sync: projects-v2 Delete of msdyn_project"
    [image] = _images(sandbox, _named(sandbox, name))
    await dataverse.delete(
        "sdkmessageprocessingstepimages", {"sdkmessageprocessingstepimageid": image["sdkmessageprocessingstepimageid"]}
    )

    plan = await register_steps(dataverse, CATALOG, CONFIG, dry_run=True)
    assert plan.steps[name] == "update" and _images(sandbox, _named(sandbox, name)) == []
    report = await register_steps(dataverse, CATALOG, CONFIG)
    assert (report.steps[name], report.details[name]) == ("update", "image created")
    [made] = _images(sandbox, _named(sandbox, name))
    assert (made["imagetype"], made["entityalias"], made["messagepropertyname"]) == (0, "PreImage", "Target")
    assert made["attributes"] == image["attributes"]
    assert not (await register_steps(dataverse, CATALOG, CONFIG)).changed
