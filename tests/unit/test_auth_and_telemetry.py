"""Token providers and telemetry set-up, each alone."""

from __future__ import annotations

from typing import Any

import pytest

from shared import telemetry
from shared.auth import MsalClientCredentials, MsalManagedIdentity, StaticToken, create_token_provider
from shared.errors import AuthError
from tests.unit.test_pipeline import make_settings


class FakeConfidentialApp:
    """MSAL's confidential client as it behaves: answers from its cache until the cache is emptied."""

    def __init__(self, result: dict[str, Any]) -> None:
        self.result = result
        self.scopes: list[list[str]] = []
        self.issued = 0

    def acquire_token_for_client(self, scopes: list[str]) -> dict[str, Any]:
        self.scopes.append(scopes)
        return self.result

    def remove_tokens_for_client(self) -> None:
        self.issued += 1
        self.result = {**self.result, "access_token": f"fresh-{self.issued}"}


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


async def test_a_refused_client_credentials_token_is_asked_afresh_once() -> None:
    app = FakeConfidentialApp({"access_token": "cached", "expires_in": 3600})
    provider = MsalClientCredentials(app)
    assert await provider.token("https://contoso.crm.dynamics.com") == "cached"
    assert await provider.token("https://contoso.crm.dynamics.com", refused="cached") == "fresh-1"
    # Another request refused the same old token meanwhile: the new one is already there.
    assert await provider.token("https://contoso.crm.dynamics.com", refused="cached") == "fresh-1"
    assert app.issued == 1


async def test_a_refused_managed_identity_token_is_dropped_from_msals_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """With MSAL's own managed identity client (App Service's endpoint, answered here): the refused
    token is not handed out again, the next is the endpoint's."""
    import json
    import time

    import msal

    monkeypatch.setenv("IDENTITY_ENDPOINT", "http://127.0.0.1:9/msi/token")
    monkeypatch.setenv("IDENTITY_HEADER", "header")
    asked: list[str] = []

    class Answer:
        status_code = 200
        headers: dict[str, str] = {}

        def __init__(self, text: str) -> None:
            self.text = text

    class Endpoint:
        def get(self, url: str, params: dict[str, str], **kwargs: Any) -> Answer:
            asked.append(params["resource"])
            expires = str(int(time.time()) + 3600)
            return Answer(json.dumps({"access_token": f"mi-{len(asked)}", "expires_on": expires}))

        def post(self, *args: Any, **kwargs: Any) -> Answer:
            raise AssertionError("App Service's endpoint is asked by GET")

        def close(self) -> None:
            return None

    cache = msal.TokenCache()
    client = msal.ManagedIdentityClient(msal.SystemAssignedManagedIdentity(), http_client=Endpoint(), token_cache=cache)
    provider = MsalManagedIdentity(client, cache)
    resource = "https://contoso.operations.dynamics.com"
    assert await provider.token(resource) == "mi-1"
    assert await provider.token(resource) == "mi-1"  # from the cache
    assert await provider.token(resource, refused="mi-1") == "mi-2"
    assert await provider.token(resource) == "mi-2"
    assert asked == [resource, resource]


class UnreachableEntra:
    """MSAL when Entra cannot be reached or answers 5xx: it lets requests' exception through."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def acquire_token_for_client(self, **kwargs: Any) -> dict[str, Any]:
        raise self.error


def _entra_503() -> Exception:
    import requests

    answer = requests.models.Response()
    answer.status_code = 503
    answer.url = "https://login.microsoftonline.com/t/oauth2/v2.0/token"
    try:
        answer.raise_for_status()
    except requests.HTTPError as exc:
        return exc
    raise AssertionError("raise_for_status raised nothing")


async def test_entra_unreachable_or_failing_is_an_auth_error_to_retry_later() -> None:
    import requests

    resource = "https://contoso.crm.dynamics.com"
    for error in (requests.ConnectionError("Name or service not known"), _entra_503(), requests.Timeout("slow")):
        with pytest.raises(AuthError, match=f"no token for {resource}"):
            await MsalClientCredentials(UnreachableEntra(error)).token(resource)
        with pytest.raises(AuthError, match=f"no token for {resource}"):
            await MsalManagedIdentity(UnreachableEntra(error)).token(resource)

    def build() -> Any:  # MSAL contacts Entra when the application is built
        raise requests.ConnectionError("Name or service not known")

    with pytest.raises(AuthError, match="Name or service not known"):
        await MsalClientCredentials(factory=build).token(resource)
