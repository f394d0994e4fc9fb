"""A setting the app refuses stops it as the host imports function_app: no function is indexed, so no
message is taken off its queue to fail there. The webhook, if the runtime still cannot be built, asks
Dataverse to retry."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import cast

import azure.functions as func
import pytest
from pydantic import ValidationError

from functions import routers
from functions.catalog import CATALOG
from shared.runtime import set_runtime
from shared.settings import Settings, SettingsError, get_settings, load_settings
from tests.deployed_settings import DEPLOYED_SETTINGS

ROOT = Path(__file__).resolve().parents[2]
LIST_FUNCTIONS = "import function_app\nfor f in function_app.app.get_functions(): print(f.get_function_name())"


# What App Service gives the app for a Key Vault reference it cannot resolve: the reference's own text.
UNRESOLVED_WEBHOOK_KEY = "@Microsoft.KeyVault(VaultName=kv-contoso-abc123;SecretName=projops-webhook-secret)"


def import_function_app(settings: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Import function_app as the host does, in a process whose environment holds only these settings."""
    env = {"PATH": os.environ.get("PATH", ""), **settings}
    return subprocess.run(
        [sys.executable, "-c", LIST_FUNCTIONS], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_with_the_deployed_settings_the_host_indexes_every_function() -> None:
    imported = import_function_app(DEPLOYED_SETTINGS)
    assert imported.returncode == 0, imported.stderr
    indexed = set(imported.stdout.split())
    assert {"route_dataverse_webhook", "route_dataverse_changes", "route_finance_events"} <= indexed
    assert {m.function_name for m in CATALOG.maps} <= indexed


@pytest.mark.parametrize(
    ("changed", "named"),
    [
        # authMode certificate as the template deployed it: no certificate settings.
        ({"PROJOPS_AUTH_MODE": "certificate", "PROJOPS_CLIENT_ID": "c"}, "PROJOPS_CLIENT_CERTIFICATE_PATH"),
        ({"PROJOPS_RETRY_MAX_ATTEMPTS": "0"}, "PROJOPS_RETRY_MAX_ATTEMPTS"),
        ({"PROJOPS_DATAVERSE_URL": "contoso.crm.dynamics.com"}, "PROJOPS_DATAVERSE_URL"),
        ({"PROJOPS_BUS_BACKEND": "local"}, "PROJOPS_BUS_BACKEND"),
        ({"PROJOPS_WEBHOOK_SECRET": UNRESOLVED_WEBHOOK_KEY}, "PROJOPS_WEBHOOK_SECRET"),
    ],
)
def test_a_refused_setting_stops_the_import_and_no_function_is_indexed(changed: dict[str, str], named: str) -> None:
    imported = import_function_app({**DEPLOYED_SETTINGS, **changed})
    assert imported.returncode != 0
    assert imported.stdout == ""
    assert "SettingsError" in imported.stderr and named in imported.stderr, imported.stderr


def deployed_environment(monkeypatch: pytest.MonkeyPatch, changed: dict[str, str]) -> None:
    """This process's environment as the deployed app's, with these settings changed."""
    for name in list(os.environ):
        if name.startswith(("PROJOPS_", "ServiceBus__")):
            monkeypatch.delenv(name)
    for name, value in {**DEPLOYED_SETTINGS, **changed}.items():
        monkeypatch.setenv(name, value)


def webhook() -> Callable[[func.HttpRequest], Awaitable[func.HttpResponse]]:
    app = func.FunctionApp()
    app.register_functions(routers.bp)
    function = next(f for f in app.get_functions() if f.get_function_name() == "route_dataverse_webhook")
    return cast(Callable[[func.HttpRequest], Awaitable[func.HttpResponse]], function.get_user_function())


async def test_the_webhook_asks_for_a_retry_when_the_runtime_cannot_be_built(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    deployed_environment(monkeypatch, {"PROJOPS_RETRY_MAX_ATTEMPTS": "0"})
    set_runtime(None)
    get_settings.cache_clear()
    request = func.HttpRequest(
        "POST",
        "https://func-contoso.azurewebsites.net/api/dataverse/webhook",
        headers={routers.WEBHOOK_KEY_HEADER: DEPLOYED_SETTINGS["PROJOPS_WEBHOOK_SECRET"]},
        body=b"{}",
    )
    try:
        with caplog.at_level(logging.ERROR, logger="projops.webhook"):
            answer = await webhook()(request)
    finally:
        get_settings.cache_clear()
    # Dataverse retries 503 (not 500); the caller is told why without the settings themselves.
    assert answer.status_code == 503
    assert "not running" in answer.get_body().decode()
    assert "PROJOPS_RETRY_MAX_ATTEMPTS" not in answer.get_body().decode()
    assert "PROJOPS_RETRY_MAX_ATTEMPTS" in caplog.text


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PROJOPS_WEBHOOK_SECRET", UNRESOLVED_WEBHOOK_KEY),
        ("PROJOPS_CLIENT_SECRET", "@microsoft.keyvault(SecretUri=https://kv-contoso.vault.azure.net/secrets/client/)"),
        ("PROJOPS_COMPANIES", " @MICROSOFT.KEYVAULT(VaultName=kv-contoso;SecretName=companies)"),
        ("PROJOPS_MAP_EXTENSIONS", "@Microsoft.KeyVault(VaultName=kv-contoso;SecretName=extensions)"),
        ("ServiceBus__fullyQualifiedNamespace", "@Microsoft.KeyVault(VaultName=kv-contoso;SecretName=namespace)"),
    ],
)
def test_an_unresolved_key_vault_reference_is_refused_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    """Taken as the webhook key, the reference's text would let in anyone who can guess it from the
    vault's name, and turn away Dataverse, which sends the real key."""
    deployed_environment(monkeypatch, {name: value, "PROJOPS_AUTH_MODE": "secret", "PROJOPS_CLIENT_ID": "c"})
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert name in str(error.value) and "Key Vault reference did not resolve" in str(error.value)
    assert "PROJOPS_" not in str(error.value).replace(name, "")


def test_a_refused_reference_does_not_show_the_other_settings_values(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check sees the raw settings, secrets still plain text: an error must not print them."""
    deployed_environment(
        monkeypatch,
        {"PROJOPS_CLIENT_SECRET": UNRESOLVED_WEBHOOK_KEY, "PROJOPS_WEBHOOK_SECRET": "real-key"},
    )
    with pytest.raises(ValidationError) as error:
        Settings()
    assert "real-key" not in str(error.value)
