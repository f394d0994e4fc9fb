"""A small run of the fault suite (`make faults` runs 10,000 changes): nothing lost, stale, duplicated
or dead-lettered, and nothing but the fuzz corpus parked."""

from __future__ import annotations

from tests.faults import run


async def test_changes_through_faults_duplicates_reordering_and_a_crash_all_land_newest() -> None:
    report = await run(changes=240, seed=11)
    assert report.corpus > 0 and report.duplicated_messages + report.reordered_messages > 0, report.table()
    assert not report.failed, report.table()
