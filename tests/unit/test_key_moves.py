"""A record whose target key changes (a project renumbered in Dataverse): its row under the old key is
deleted before the new one is written, or, where that cannot be done, the record is parked naming
both keys and nothing is written."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest

from functions import projects_v2
from shared.cache import TtlCache
from shared.clients.base import Key
from shared.errors import PermanentServiceError
from shared.events import ChangeEvent, Operation, Source
from shared.outcomes import OutcomeKind
from shared.pipeline import Engine, apply_event
from shared.settings import AuthMode, BusBackend, Settings, StateBackend
from shared.values import Ref
from tests.unit.fakes import FakeDataverse, FakeFinance, MemoryState

USMF = "c0000000-0000-4000-8000-000000000001"
PROJECTS = "ProjectsV2"


class RefusingFinance(FakeFinance):
    """Finance refusing to delete a project that has transactions, as its validation would."""

    async def delete(self, entity_set: str, key: Key) -> bool:
        self.calls.append(("DELETE", entity_set, dict(key)))
        raise PermanentServiceError("finance", 400, "Infolog: Error: Transactions exist for project PRJ-9.")


def settings() -> Settings:
    return Settings.model_validate(
        {
            "dataverse_url": "http://127.0.0.1:1",
            "finance_url": "http://127.0.0.1:2",
            "auth_mode": AuthMode.NONE,
            "companies": ["USMF"],
            "state_backend": StateBackend.SQLITE,
            "bus_backend": BusBackend.LOCAL,
        }
    )


def engine_with(finance: FakeFinance) -> Engine:
    dataverse = FakeDataverse()
    dataverse.add("cdm_companies", USMF, {"cdm_companyid": USMF, "cdm_companycode": "USMF"})
    return Engine(settings(), dataverse, finance, MemoryState(), TtlCache(60))


def finance_of(kind: type[FakeFinance] = FakeFinance) -> FakeFinance:
    return kind(key_fields={PROJECTS: ("dataAreaId", "ProjectId")})


def project(version: int, number: str, operation: Operation = Operation.UPDATE) -> ChangeEvent:
    record: dict[str, Any] = {
        "msdyn_projectnumber": number,
        "msdyn_subject": "Rollout",
        "statecode": 0,
        "msdyn_owningcompany": Ref("cdm_company", USMF),
        "msdyn_customer": None,
        "msdyn_description": None,
        "msdyn_scheduledstart": None,
        "msdyn_finish": None,
        "msdyn_actualstart": datetime(2026, 11, 3, 8, tzinfo=UTC),
        "msdyn_actualend": None,
    }
    # A whole post image: every column the map reads, so the row is not read again.
    record = {**dict.fromkeys(projects_v2.MAP.source_columns), **record}
    return ChangeEvent(
        event_id=f"p{version}",
        source=Source.DATAVERSE,
        entity="msdyn_project",
        operation=operation,
        key="p9",
        record=record if operation is not Operation.DELETE else None,
        version=version,
    )


def projects(finance: FakeFinance) -> list[str]:
    return sorted(row["ProjectId"] for row in finance.tables.get(PROJECTS, {}).values())


def writes(finance: FakeFinance) -> list[tuple[str, str]]:
    return [(method, str(body.get("ProjectId"))) for method, _, body in finance.calls if method != "GET"]


async def test_a_renumbered_record_s_old_row_is_deleted_before_its_new_one_is_created() -> None:
    finance = finance_of()
    engine = engine_with(finance)
    assert (
        await apply_event(engine, projects_v2.MAP, project(1, "PRJ-9", Operation.CREATE))
    ).kind is OutcomeKind.WRITTEN
    outcome = await apply_event(engine, projects_v2.MAP, project(2, "PRJ-10"))
    assert outcome.kind is OutcomeKind.WRITTEN
    assert projects(finance) == ["PRJ-10"]
    assert writes(finance) == [("POST", "PRJ-9"), ("DELETE", "PRJ-9"), ("POST", "PRJ-10")]
    await apply_event(engine, projects_v2.MAP, project(3, "PRJ-10", Operation.DELETE))
    assert projects(finance) == []


async def test_a_key_that_differs_only_in_case_is_the_same_row() -> None:
    finance = finance_of()
    engine = engine_with(finance)
    await apply_event(engine, projects_v2.MAP, project(1, "prj-9", Operation.CREATE))
    await apply_event(engine, projects_v2.MAP, project(2, "PRJ-9"))
    assert [method for method, _ in writes(finance)] == ["POST", "PATCH"]


async def test_a_row_the_target_will_not_delete_parks_naming_both_keys_and_nothing_is_written() -> None:
    finance = finance_of(RefusingFinance)
    engine = engine_with(finance)
    await apply_event(engine, projects_v2.MAP, project(1, "PRJ-9", Operation.CREATE))
    outcome = await apply_event(engine, projects_v2.MAP, project(2, "PRJ-10"))
    assert outcome.kind is OutcomeKind.PARKED and outcome.reason == "rejected-by-target"
    detail = outcome.detail or ""
    assert "ProjectId='PRJ-9'" in detail and "ProjectId='PRJ-10'" in detail and "Transactions exist" in detail
    assert projects(finance) == ["PRJ-9"]


@pytest.fixture
def undeleting() -> Any:
    return dataclasses.replace(projects_v2.MAP, operations=frozenset({Operation.CREATE, Operation.UPDATE}))


async def test_a_flow_that_does_not_delete_parks_until_the_old_row_is_gone(undeleting: Any) -> None:
    finance = finance_of()
    engine = engine_with(finance)
    await apply_event(engine, undeleting, project(1, "PRJ-9", Operation.CREATE))
    renumbered = project(2, "PRJ-10")
    outcome = await apply_event(engine, undeleting, renumbered)
    assert outcome.kind is OutcomeKind.PARKED and outcome.reason == "mapping-error"
    detail = outcome.detail or ""
    assert "ProjectId='PRJ-9'" in detail and "ProjectId='PRJ-10'" in detail and "does not delete" in detail
    assert projects(finance) == ["PRJ-9"] and "DELETE" not in [m for m, _ in writes(finance)]
    # A person removes the old project in Finance and replays: the record is written under its new key.
    finance.tables[PROJECTS].clear()
    assert (await apply_event(engine, undeleting, renumbered)).kind is OutcomeKind.WRITTEN
    assert projects(finance) == ["PRJ-10"]
