"""The command line from another terminal: a subprocess of its own against a served sandbox.

The sandbox runs as `make sandbox ARGS=--serve` runs it (or, where a test needs to break the
simulators, in this process); the command reaches it only through the profile the sandbox writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sandbox.bus import LocalMessage
from sandbox.environment import Sandbox, SandboxOptions
from shared.console.profile import read_profile, write_profile
from tests.integration.conftest import started

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ROLES = [f"Console role {n}" for n in range(3)]


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> object:
        return json.loads(self.out)


def clean_environment(**extra: str) -> dict[str, str]:
    """This machine's environment without any projops-sync setting, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROJOPS_", "ServiceBus__", "AzureWebJobs"))}
    return {**env, **extra}


async def cli(*args: str, profile: Path | None = None, **env: str) -> Result:
    extra = {"PROJOPS_PROFILE": str(profile)} if profile else {}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "shared.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=clean_environment(**extra, **env),
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return Result(process.returncode, out.decode(), err.decode())


def assert_one_line_failure(result: Result, *fragments: str) -> None:
    assert result.code == 2, result
    assert "Traceback" not in result.err, result.err
    assert len(result.err.strip().splitlines()) == 1, result.err
    for fragment in fragments:
        assert fragment in result.err, result.err


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """`python -m sandbox --serve` in a process of its own, as an administrator starts it; its profile."""
    profile = tmp_path_factory.mktemp("served") / "cli.env"
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "--serve", "--profile", str(profile)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=clean_environment(),
    )
    try:
        assert process.stdout is not None
        seen = []
        for line in process.stdout:
            seen.append(line)
            if line.startswith("Serving"):
                break
        else:
            raise AssertionError("the sandbox stopped before serving:\n" + "".join(seen))
        printed = "".join(seen)
        assert f"export PROJOPS_PROFILE={profile}" in printed and "/api/admin/console?code=" in printed
        yield profile
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(20)
        if process.poll() is None:
            process.kill()


async def test_status_through_the_served_sandbox_shows_what_its_flows_did(served: Path) -> None:
    profile = read_profile(str(served))
    assert profile["PROJOPS_ADMIN_URL"].startswith("http://127.0.0.1:") and profile["PROJOPS_ADMIN_KEY"]
    result = await cli("status", "--json", profile=served)
    assert result.code == 0, result.err
    rows = {row["flow"]: row for row in result.json()}  # type: ignore[attr-defined]
    # 29 flows and the two routers, whose rows count what they parked.
    assert len(rows) == 31 and all(row["paused"] is False for row in rows.values())
    # The demo's writes were counted by the sandbox's process; this one reads them from shared state.
    assert rows["actuals"]["last_hour"]["written"] >= 1 and rows["actuals"]["last_write"]
    assert sum(row["last_day"].get("written", 0) for row in rows.values()) >= 29
    table = await cli("status", profile=served)
    header, *lines = table.out.splitlines()
    assert header.split()[:3] == ["flow", "state", "backlog"] and len(lines) == 31
    # Columns line up: every row's state starts where the header's does.
    column = header.index("state")
    assert {line[column : column + 7] for line in lines} == {"running"}


async def test_pause_and_resume_from_another_terminal(served: Path) -> None:
    paused = await cli("pause", "actuals", profile=served)
    assert paused.code == 0 and "actuals paused" in paused.out
    rows = {row["flow"]: row for row in (await cli("status", "--json", profile=served)).json()}  # type: ignore[attr-defined]
    assert rows["actuals"]["paused"] is True and rows["projects-v2"]["paused"] is False
    assert (await cli("resume", "actuals", "--json", profile=served)).json() == {"flow": "actuals", "paused": False}
    rows = {row["flow"]: row for row in (await cli("status", "--json", profile=served)).json()}  # type: ignore[attr-defined]
    assert rows["actuals"]["paused"] is False


async def test_every_readme_command_answers_against_the_served_sandbox(served: Path) -> None:
    """The README's examples, as written, from a second terminal."""
    check = await cli("check-maps", profile=served)
    assert check.code == 0 and "every map matches" in check.out
    steps = await cli("register-steps", "--dry-run", profile=served, PROJOPS_SERVICEBUS_SAS_KEY="k")
    assert steps.code == 0 and "plan only" in steps.out
    sync = await cli("initial-sync", "resource-roles", "--wait", profile=served)
    assert sync.code == 0 and " done: fed " in sync.out, sync
    runs = await cli("initial-sync", "--status", "--json", profile=served)
    assert [r["flow"] for r in runs.json()] == ["resource-roles"]  # type: ignore[attr-defined]
    for command in (
        ["parked", "--reason", "missing-dependency"],
        ["finance-events"],
        ["maps"],
        ["replay", "--flow", "actuals", "--reason", "retry-budget-exhausted"],
        ["reconcile", "actuals", "--company", "USMF"],
        ["reconcile", "actuals", "--repair"],
        ["initial-sync", "transaction-connections", "--changes"],
        ["trace", "expenses", "USMF|EXP-000123"],
    ):
        result = await cli(*command, profile=served)
        assert result.code == 0 and "Traceback" not in result.err, (command, result)
    dismiss = await cli("dismiss", "3f2a0000", "--why", "posted by hand in Finance", profile=served)
    assert_one_line_failure(dismiss, "no open parked event 3f2a0000")


@pytest.fixture
async def breakable(tmp_path: Path) -> AsyncIterator[tuple[Sandbox, Path]]:
    """A sandbox in this process (so a test can break Finance) and the profile a command uses to reach it."""
    options = SandboxOptions(retry_max_attempts=1, http_max_retries=0, state_path=str(tmp_path / "state.db"))
    async with started(options) as sandbox:
        profile = tmp_path / "cli.env"
        write_profile(profile, sandbox.cli_profile(), title="test")
        yield sandbox, profile


async def test_initial_sync_waits_for_rows_to_land_and_parked_rows_replay(breakable: tuple[Sandbox, Path]) -> None:
    sandbox, profile = breakable
    for n, name in enumerate(ROLES):
        sandbox.dataverse.seed("bookableresourcecategory", {"name": name, "msdyn_resourcecategorynumber": f"C{n}"})
    sandbox.finance.set_faults(error_share=1.0)
    sync = await cli("initial-sync", "resource-roles", "--wait", "--json", profile=profile)
    assert sync.code == 0, sync.err
    run = sync.json()
    assert run["done"] and run["counts"]["fed"] == 3 and run["landed"]["parked"] == 3  # type: ignore[index]

    parked = await cli("parked", "--flow", "resource-roles", profile=profile)
    assert parked.code == 0 and "3 event(s)" in parked.out
    for name in ROLES:  # the record's own name beside its key, and Finance's error text
        assert name in parked.out
    assert "finance 503: An error has occurred." in parked.out
    rows = (await cli("parked", "--flow", "resource-roles", "--json", profile=profile)).json()
    first = rows[0]["id"]  # type: ignore[index]
    one = await cli("parked", first, "--json", profile=profile)
    assert one.json()["event"]["flow"] == "resource-roles" and one.json()["error"]  # type: ignore[index]
    assert (
        await cli("parked", "--flow", "resource-roles", "--older-than", "2000-01-01", "--json", profile=profile)
    ).json() == []

    sandbox.finance.set_faults(error_share=0.0)
    replayed = await cli("replay", "--flow", "resource-roles", profile=profile)
    assert replayed.code == 0 and "replayed 3 event(s)" in replayed.out
    await sandbox.wait_quiet()
    names = {row["Description"] for row in sandbox.finance.rows("ResourceCategoriesShared")}
    assert set(ROLES) <= names
    status = await cli("initial-sync", "--status", "--run", run["id"], "--json", profile=profile)  # type: ignore[index]
    assert status.json()[0]["landed"]["parked"] == 3  # type: ignore[index]


async def test_a_replay_parked_again_by_its_router_says_so_and_exits_1(breakable: tuple[Sandbox, Path]) -> None:
    """Found by review: a replay that the Finance router parked again (the worker's event still has no
    personnel number) printed "replayed 1 event(s)" and exited 0, each time leaving a new parked row."""
    sandbox, profile = breakable
    payload = json.loads((FIXTURES / "synthetic_fno_data_event_onexternalupdated.json").read_bytes())
    payload["PrimaryEntityName"] = "mserp_hcmworkerentity"
    for parameter in payload["InputParameters"]:
        parameter["value"]["LogicalName"] = "mserp_hcmworkerentity"
        parameter["value"]["Attributes"] = [{"key": "mserp_name", "value": "no personnel number"}]
    await sandbox.bus.send("finance-events", LocalMessage(json.dumps(payload).encode(), "application/json"))
    await sandbox.wait_quiet()
    first = (await cli("parked", "--flow", "workers", "--json", profile=profile)).json()
    assert isinstance(first, list) and len(first) == 1

    replayed = await cli("replay", "--flow", "workers", profile=profile)
    await sandbox.wait_quiet()

    assert replayed.code == 1 and "replayed 0 event(s)" in replayed.out, replayed
    why = "parked again: the HcmWorkerEntity event has no key field PersonnelNumber"
    assert f"{first[0]['id']}: {why}" in replayed.err
    again = (await cli("parked", "--flow", "workers", "--json", profile=profile)).json()
    assert isinstance(again, list) and len(again) == 1
    assert again[0]["id"] != first[0]["id"] and again[0]["reason"] == "mapping-error"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_expected_failures_are_one_line_and_exit_2(breakable: tuple[Sandbox, Path], tmp_path: Path) -> None:
    sandbox, profile = breakable
    assert_one_line_failure(await cli("status"), "PROJOPS_DATAVERSE_URL", "--url")
    closed = f"http://127.0.0.1:{free_port()}"
    assert_one_line_failure(
        await cli("status", "--url", closed, "--admin-key", "k"), f"cannot reach the admin API at {closed}"
    )
    assert_one_line_failure(
        await cli("pause", "actual", profile=profile), "no flow named 'actual'", "actuals, actuals-accounting"
    )
    assert_one_line_failure(
        await cli("initial-sync", "nope", profile=profile), "no flow named 'nope'", "resource-roles"
    )
    assert_one_line_failure(await cli("parked", "--since", "last tuesday", profile=profile), "ISO date")
    assert_one_line_failure(await cli("initial-sync", "actuals", "--since", "2026-02-30", profile=profile), "ISO date")
    assert_one_line_failure(await cli("parked", "f00d", profile=profile), "no parked event f00d")
    assert_one_line_failure(await cli("replay", "f00d", profile=profile), "no open parked event f00d")
    assert_one_line_failure(await cli("status", "--admin-key", "wrong", profile=profile), "refused the admin key")
    assert_one_line_failure(
        await cli("status", "--url", f"{sandbox.host.http_url if sandbox.host else ''}/api/admin", profile=profile),
        "give the function app's root URL",
    )
    assert_one_line_failure(
        await cli(
            "check-maps",
            PROJOPS_DATAVERSE_URL=f"{sandbox.dataverse.url}/api/data/v9.2",
            PROJOPS_FINANCE_URL=sandbox.finance.url,
            PROJOPS_AUTH_MODE="none",
            PROJOPS_STATE_BACKEND="sqlite",
            PROJOPS_STATE_SQLITE_PATH=str(tmp_path / "s.db"),
        ),
        "ends in the API path /api/data/v9.2",
        f"give the environment's root URL, {sandbox.dataverse.url}",
    )
    # Direct mode against a Dataverse that does not answer names the URL.
    unreachable = await cli(
        "check-maps",
        PROJOPS_DATAVERSE_URL=closed,
        PROJOPS_FINANCE_URL=closed,
        PROJOPS_AUTH_MODE="none",
        PROJOPS_STATE_BACKEND="sqlite",
        PROJOPS_STATE_SQLITE_PATH=str(tmp_path / "s.db"),
        PROJOPS_BUS_BACKEND="local",
        PROJOPS_HTTP_MAX_RETRIES="0",
    )
    assert_one_line_failure(unreachable, closed.removeprefix("http://"))
    assert_one_line_failure(await cli("dismiss", "--why", "tidy", profile=profile), "name what to dismiss")


def test_a_closed_pipe_is_not_an_error() -> None:
    reader = subprocess.Popen(["head", "-n", "1"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    writer = subprocess.run(
        [sys.executable, "-m", "shared.cli", "maps", "--json"],
        stdout=reader.stdin,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
        env=clean_environment(),
    )
    assert reader.stdin is not None
    reader.stdin.close()
    reader.wait(10)
    assert writer.returncode == 0 and writer.stderr == ""
