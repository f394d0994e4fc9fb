"""The demo `make sandbox` runs: every flow in the catalog is driven and lands what it should."""

from __future__ import annotations

from functions.catalog import CATALOG
from sandbox.environment import Sandbox, demo_options
from sandbox.scenario import run_scenario
from shared.telemetry import FIGURES


async def test_the_demo_drives_every_flow_and_parks_nothing() -> None:
    FIGURES.reset()
    sandbox = Sandbox(demo_options())
    await sandbox.start()
    try:
        result = await run_scenario(sandbox)
        assert sandbox.runtime is not None
        parked = await sandbox.runtime.engine.state.list_parked()
    finally:
        await sandbox.stop()
    assert [(e.flow, e.problem) for e in result.missing] == []
    assert sorted({e.flow for e in result.expectations}) == sorted(m.name for m in CATALOG.maps)
    assert parked == []
