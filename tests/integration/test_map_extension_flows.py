"""A customer's map extension through the sandbox: its fields land both ways, and check-maps proves its names."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.environment import DEMO_CUSTOM_COLUMNS, DEMO_MAP_EXTENSIONS, Sandbox, SandboxOptions
from shared.operations.check_maps import check_live
from tests.integration.conftest import send, started
from tests.integration.test_flows import project_body


@pytest.fixture
def options() -> SandboxOptions:
    return SandboxOptions(map_extensions=str(DEMO_MAP_EXTENSIONS), custom_columns=DEMO_CUSTOM_COLUMNS)


async def test_extension_fields_land_in_both_directions(sandbox: Sandbox) -> None:
    async with sandbox.person_dataverse() as dv:
        await send(dv, "POST", "msdyn_projects", project_body("PRJ-3001", cnt_costcenter="cc-7"))
    async with sandbox.person_finance() as fo:
        await send(fo, "POST", "Workers", {"PersonnelNumber": "000901", "Name": "Robert Jones", "KnownAs": "Bob"})
    await sandbox.wait_quiet()
    project = sandbox.finance.get("ProjectsV2", dataAreaId="usmf", ProjectId="PRJ-3001")
    assert project is not None and project["DimensionDisplayValue"] == "CC-7"  # with the extension's transform
    [worker] = [r for r in sandbox.dataverse.rows("cdm_worker") if r.get("cdm_workernumber") == "000901"]
    assert worker["cnt_knownas"] == "Bob" and worker["cdm_fullname"] == "Robert Jones"

    # An Update of the extension's own column alone is a mapped change: it reaches Finance.
    async with sandbox.person_dataverse() as dv:
        await send(dv, "PATCH", "msdyn_projects(msdyn_projectnumber='PRJ-3001')", {"cnt_costcenter": "cc-8"})
    await sandbox.wait_quiet()
    project = sandbox.finance.get("ProjectsV2", dataAreaId="usmf", ProjectId="PRJ-3001")
    assert project is not None and project["DimensionDisplayValue"] == "CC-8"


async def test_check_maps_reports_a_misspelt_extension_field(tmp_path: Path) -> None:
    path = tmp_path / "map-extensions.yaml"
    path.write_text(
        "flows:\n  projects-v2:\n    fields:\n      - {source: cnt_costcenter, target: DimensionDisplayValu}\n"
    )
    async with started(SandboxOptions(map_extensions=str(path), custom_columns=DEMO_CUSTOM_COLUMNS)) as sandbox:
        assert sandbox.runtime is not None
        problems, report = await check_live(sandbox.runtime, sandbox.runtime.maps())
    assert [(p.flow, p.what, p.name) for p in problems] == [("projects-v2", "target field", "DimensionDisplayValu")]
    assert "DimensionDisplayValu" in report
