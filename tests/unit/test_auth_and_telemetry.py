"""Token providers and telemetry set-up, each alone."""

from __future__ import annotations

from typing import Any

import pytest

from shared import telemetry
from shared.auth import MsalClientCredentials, MsalManagedIdentity, StaticToken, create_token_provider
from shared.errors import AuthError
from tests.unit.test_pipeline import make_settings


class FakeConfidentialApp:
    def __init__(self, result: dict[str, Any]) -> None:
        self.result = result
        self.scopes: list[list[str]] = []

    def acquire_token_for_client(self, scopes: list[str]) -> dict[str, Any]:
        self.scopes.append(scopes)
        return self.result


class FakeManagedIdentity:
    def __init__(self) -> None:
        self.resources: list[str] = []

    def acquire_token_for_client(self, *, resource: str) -> dict[str, Any]:
        self.resources.append(resource)
        return {"access_token": "mi-token", "expires_in": 3600}


async def test_client_credentials_ask_for_the_resource_default_scope() -> None:
    app = FakeConfidentialApp({"access_token": "t1", "expires_in": 3600})
    provider = MsalClientCredentials(app)
    assert await provider.token("https://contoso.crm.dynamics.com") == "t1"
    assert app.scopes == [["https://contoso.crm.dynamics.com/.default"]]


async def test_entra_errors_become_auth_errors_with_the_description() -> None:
    provider = MsalClientCredentials(
        FakeConfidentialApp({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret."})
    )
    with pytest.raises(AuthError, match="AADSTS7000215"):
        await provider.token("https://contoso.operations.dynamics.com")


async def test_managed_identity_asks_for_a_resource_not_a_scope() -> None:
    client = FakeManagedIdentity()
    assert await MsalManagedIdentity(client).token("https://contoso.crm.dynamics.com") == "mi-token"
    assert client.resources == ["https://contoso.crm.dynamics.com"]


def test_factory_picks_by_auth_mode() -> None:
    assert isinstance(create_token_provider(make_settings()), StaticToken)
    secret = make_settings(auth_mode="secret", tenant_id="t", client_id="c", client_secret="s")
    assert isinstance(create_token_provider(secret), MsalClientCredentials)
    assert isinstance(create_token_provider(make_settings(auth_mode="managed-identity")), MsalManagedIdentity)


def test_telemetry_is_configured_once_and_not_next_to_the_hosts_exporter(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    import azure.monitor.opentelemetry as distro

    monkeypatch.setattr(distro, "configure_azure_monitor", lambda **kwargs: calls.append(kwargs["logger_name"]))
    monkeypatch.setattr(telemetry, "_configured", False)
    monkeypatch.delenv("APPLICATIONINSIGHTS_CONNECTION_STRING", raising=False)
    assert telemetry.configure_telemetry() is False
    monkeypatch.setenv(
        "APPLICATIONINSIGHTS_CONNECTION_STRING", "InstrumentationKey=00000000-0000-0000-0000-000000000000"
    )
    monkeypatch.setenv("PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY", "true")
    assert telemetry.configure_telemetry() is False
    monkeypatch.delenv("PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY")
    assert telemetry.configure_telemetry() is True
    assert telemetry.configure_telemetry() is False
    assert calls == ["projops"]
