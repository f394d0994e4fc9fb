"""A reconcile the host stopped is said to have failed, not left "running" for ever."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from functions.catalog import CATALOG
from shared.cache import TtlCache
from shared.errors import PermanentServiceError, TransientServiceError
from shared.operations.admin_runs import FUNCTION_TIMEOUT, continue_admin_run
from shared.operations.initial_sync import worth_retrying
from shared.pipeline import Engine
from shared.runtime import Runtime
from shared.state.base import SyncRun
from shared.state.sqlite_store import SqliteStateStore
from shared.values import utc_now
from tests.unit.fakes import FakeDataverse, FakeFinance, RecordingSender
from tests.unit.test_pipeline import make_settings

HOST = Path(__file__).resolve().parent.parent.parent / "host.json"


async def test_a_reconcile_still_running_past_the_function_timeout_is_marked_failed() -> None:
    state = SqliteStateStore(":memory:")
    engine = Engine(make_settings(), FakeDataverse(), FakeFinance(), state, TtlCache(60))
    runtime = Runtime(engine=engine, sender=RecordingSender(), registry=CATALOG)
    stale = utc_now() - FUNCTION_TIMEOUT - timedelta(minutes=6)
    await state.put_run(SyncRun("r-old", "actuals", "running", options={"kind": "reconcile"}, updated_at=stale))
    await state.put_run(SyncRun("r-live", "actuals", "running", options={"kind": "reconcile"}))

    gone = await continue_admin_run(runtime, CATALOG, "r-old")
    assert gone is not None and gone.status == "failed" and "functionTimeout" in gone.errors[0]
    stored = await state.get_run("r-old")
    assert stored is not None and stored.status == "failed"
    # Delivered again while it still runs (a lapsed lock): left to the invocation that has it.
    live = await continue_admin_run(runtime, CATALOG, "r-live")
    assert live is not None and live.status == "running" and not live.errors
    await state.close()


def test_the_timeout_assumed_is_the_hosts() -> None:
    hours, minutes, seconds = map(int, json.loads(HOST.read_text())["functionTimeout"].split(":"))
    assert timedelta(hours=hours, minutes=minutes, seconds=seconds) == FUNCTION_TIMEOUT


async def test_a_run_of_a_flow_no_longer_deployed_fails_once_and_is_not_redelivered() -> None:
    state = SqliteStateStore(":memory:")
    engine = Engine(make_settings(), FakeDataverse(), FakeFinance(), state, TtlCache(60))
    runtime = Runtime(engine=engine, sender=RecordingSender(), registry=CATALOG)
    await state.put_run(SyncRun("r-gone", "retired-flow", "running", cursor="https://example/next"))

    run = await continue_admin_run(runtime, CATALOG, "r-gone")
    assert run is not None and run.status == "failed" and len(run.errors) == 1 and "retired-flow" in run.errors[0]
    stored = await state.get_run("r-gone")
    assert stored is not None and stored.status == "failed"
    await state.close()


def test_only_a_failure_a_later_try_may_not_meet_is_worth_a_redelivery() -> None:
    from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

    throttled = HttpResponseError("busy")
    throttled.status_code = 503
    assert worth_retrying(TransientServiceError("dataverse", 503, "unavailable"))
    assert worth_retrying(ConnectionResetError()) and worth_retrying(throttled)
    assert not worth_retrying(PermanentServiceError("dataverse", 403, "missing privilege"))
    assert not worth_retrying(ResourceNotFoundError("no table")) and not worth_retrying(KeyError("bug"))
    assert not worth_retrying(FileNotFoundError("a file, not a service"))
