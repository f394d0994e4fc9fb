"""Admin operations that could destroy or mislead refuse to, through the running function app."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

from sandbox.environment import WEBHOOK_SECRET, Sandbox
from shared.bus import DATAVERSE_TOPIC
from shared.settings import Settings
from shared.state.base import ParkedEvent
from shared.values import utc_now


async def _park(sandbox: Sandbox, count: int) -> None:
    assert sandbox.runtime is not None
    for n in range(count):
        await sandbox.runtime.engine.state.park(
            ParkedEvent(
                id=f"p{n:04d}",
                flow="actuals",
                key=f"k{n}",
                reason="rejected-by-target",
                error="Finance said no",
                attempts=1,
                event="{}",
                parked_at=utc_now(),
            )
        )


async def test_dismiss_needs_a_selector_or_all_with_its_count(sandbox: Sandbox) -> None:
    assert sandbox.host is not None and sandbox.runtime is not None
    await _park(sandbox, 3)
    keyed = {"x-functions-key": sandbox.host.function_key}
    async with httpx.AsyncClient(base_url=sandbox.host.http_url, headers=keyed) as client:
        bare = await client.post("/api/admin/dismiss", json={"why": "tidy up"})
        assert bare.status_code == 400 and "name what to dismiss" in bare.json()["error"]
        wrong_count = await client.post("/api/admin/dismiss", json={"all": True, "confirm": 2, "why": "tidy up"})
        assert wrong_count.status_code == 400 and "confirm=3" in wrong_count.json()["error"]
        assert len(await sandbox.runtime.engine.state.list_parked(status="parked")) == 3
        done = await client.post("/api/admin/dismiss", json={"all": True, "confirm": 3, "why": "tidy up"})
        assert done.status_code == 200 and len(done.json()["dismissed"]) == 3
    assert await sandbox.runtime.engine.state.list_parked(status="parked") == []


async def test_a_dismissal_reason_longer_than_the_audit_row_keeps_is_refused_with_its_limit(sandbox: Sandbox) -> None:
    """The reason is kept on the parked row: past what Table Storage holds in a property (64 KB) the
    dismissal failed there as a server error (the sandbox's SQLite took it whole)."""
    assert sandbox.host is not None and sandbox.runtime is not None
    await _park(sandbox, 2)
    keyed = {"x-functions-key": sandbox.host.function_key}
    async with httpx.AsyncClient(base_url=sandbox.host.http_url, headers=keyed) as client:
        long = await client.post("/api/admin/dismiss", json={"all": True, "confirm": 2, "why": "€" * 40_000})
        assert long.status_code == 400, long.text
        assert "40,000 characters" in long.json()["error"] and "at most 2,000" in long.json()["error"]
        assert len(await sandbox.runtime.engine.state.list_parked(status="parked")) == 2
        fits = await client.post("/api/admin/dismiss", json={"all": True, "confirm": 2, "why": "€" * 2000})
        assert fits.status_code == 200 and len(fits.json()["dismissed"]) == 2
    closed = await sandbox.runtime.engine.state.list_parked(status="dismissed")
    assert [p.closed_reason for p in closed] == ["€" * 2000] * 2


async def test_the_audit_name_is_not_taken_from_a_header_anyone_can_send(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert sandbox.host is not None and sandbox.runtime is not None
    await _park(sandbox, 2)
    keyed = {"x-functions-key": sandbox.host.function_key, "x-ms-client-principal-name": "ceo@contoso.com"}
    async with httpx.AsyncClient(base_url=sandbox.host.http_url, headers=keyed) as client:
        assert (await client.post("/api/admin/dismiss", json={"ids": ["p0000"], "why": "x"})).status_code == 200
        # With App Service authentication in front, the platform sets the header itself.
        monkeypatch.setenv("WEBSITE_AUTH_ENABLED", "True")
        assert (await client.post("/api/admin/dismiss", json={"ids": ["p0001"], "why": "x"})).status_code == 200
    by = {p.id: p.closed_by for p in await sandbox.runtime.engine.state.list_parked(status="dismissed")}
    assert by == {"p0000": "function-key", "p0001": "ceo@contoso.com"}


async def test_bad_admin_parameters_are_a_400_with_a_message(sandbox: Sandbox) -> None:
    assert sandbox.host is not None
    keyed = {"x-functions-key": sandbox.host.function_key}
    async with httpx.AsyncClient(base_url=sandbox.host.http_url, headers=keyed) as client:
        limit = await client.get("/api/admin/parked", params={"limit": "abc"})
        assert limit.status_code == 400 and "limit must be a whole number" in limit.json()["error"]
        since = await client.post("/api/admin/initial-sync/actuals", json={"since": "yesterday"})
        assert since.status_code == 400 and "since must be an ISO date" in since.json()["error"]


def test_the_command_line_refuses_a_bad_since_and_a_bare_dismiss() -> None:
    since = subprocess.run(
        [sys.executable, "-m", "shared.cli", "initial-sync", "actuals", "--since", "yesterday"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert since.returncode == 2 and "since must be an ISO date" in since.stderr and "Traceback" not in since.stderr
    bare = subprocess.run(
        [sys.executable, "-m", "shared.cli", "dismiss", "--why", "tidy"], capture_output=True, text=True, timeout=60
    )
    assert bare.returncode == 2 and "name what to dismiss" in bare.stderr


def test_settings_never_print_their_secrets() -> None:
    settings = Settings.model_validate(
        {
            "dataverse_url": "https://contoso.crm.dynamics.com",
            "finance_url": "https://contoso.operations.dynamics.com",
            "auth_mode": "secret",
            "tenant_id": "t",
            "client_id": "c",
            "client_secret": "client-secret-value",
            "webhook_secret": "webhook-secret-value",
            "state_tables_connection_string": "DefaultEndpointsProtocol=https;AccountKey=account-key-value",
            "state_backend": "sqlite",
            "bus_backend": "local",
        }
    )
    shown = repr(settings) + str(settings) + settings.model_dump_json()
    assert "client-secret-value" not in shown and "webhook-secret-value" not in shown
    assert "account-key-value" not in shown
    assert settings.client_secret is not None and settings.client_secret.get_secret_value() == "client-secret-value"


async def test_webhook_answers_503_when_the_change_cannot_be_queued(sandbox: Sandbox) -> None:
    """Dataverse retries a webhook call on 502, 503 and 504 only (Use webhooks to create external
    handlers for server events): a 500 would drop the change, a 503 has Dataverse send it again."""
    assert sandbox.host is not None
    url = f"{sandbox.host.http_url}/api/dataverse/webhook"
    keyed = {"content-type": "application/json", "x-projops-webhook-key": WEBHOOK_SECRET}
    subscriptions = sandbox.bus.topics.pop(DATAVERSE_TOPIC)
    try:
        async with httpx.AsyncClient() as client:
            down = await client.post(url, content=b'{"MessageName":"Update"}', headers=keyed)
    finally:
        sandbox.bus.topics[DATAVERSE_TOPIC] = subscriptions
    assert down.status_code == 503
