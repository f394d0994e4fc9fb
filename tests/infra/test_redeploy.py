"""A redeploy replaces every app setting: a paused flow must stay paused and the cutover switch set.

The template merges the app's current settings (existingAppSettings, which
infra/hooks/current_settings.py reads for az and azd alike) under its own. These tests apply the
template's merge, in the order the Bicep writes it, to what the real pause switch left in a fake
Resource Manager."""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

import httpx

from functions.catalog import CATALOG
from shared.operations.pause import ArmFunctionSwitch, pause
from tests.infra.bicep import INFRA, call_arguments, declaration, lookup, parse, resources, text

APP_ID = "/subscriptions/s/resourceGroups/rg-projops/providers/Microsoft.Web/sites/func-contosopo"
FUNCTION_APP = (INFRA / "modules" / "functionapp.bicep").read_bytes()

# What the template sets (a few of its settings are enough: the merge treats them all alike).
PLATFORM = {"AzureWebJobsStorage__accountName": "stcontosopo", "PROJOPS_FUNCTION_APP_RESOURCE_ID": APP_ID}
TEMPLATE = {"PROJOPS_COMPANIES": "USMF,USPI", "PROJOPS_AUTH_MODE": "managed-identity"}


def applied_settings(bicep: bytes, existing: Mapping[str, str]) -> dict[str, str]:
    """The app settings after a deployment of `bicep`, given the app's settings before it."""
    tree = parse(bicep)
    site = next(r for r in resources(tree) if r.type == "Microsoft.Web/sites")
    loop = lookup(site.body, "properties", "siteConfig", "appSettings")
    assert loop is not None and loop.type == "for_statement"
    source = text(loop).split(" in items(", 1)[1].split(")", 1)[0]
    values = {"existingAppSettings": dict(existing), "platformSettings": PLATFORM, "settings": TEMPLATE}
    merged: dict[str, str] = {}
    # Bicep's union(): later objects win.
    for argument in call_arguments(declaration(tree, "variable", source), "union"):
        merged.update(values[argument])
    # A sites/config 'appsettings' resource would replace them all again after the site.
    assert [r.symbol for r in resources(tree) if r.type == "Microsoft.Web/sites/config"] == []
    return merged


class FakeArm:
    """The function app's settings behind Resource Manager's list and replace calls."""

    def __init__(self, settings: dict[str, str]) -> None:
        self.settings = settings

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path == f"{APP_ID}/config/appsettings/list":
            return httpx.Response(200, json={"properties": self.settings})
        if request.method == "PUT" and request.url.path == f"{APP_ID}/config/appsettings":
            self.settings = dict(json.loads(request.content)["properties"])
            return httpx.Response(200, json={"properties": self.settings})
        return httpx.Response(404)


class Credential:
    async def get_token(self, *scopes: str) -> Any:
        return SimpleNamespace(token="t")


async def paused_after_redeploy(bicep: bytes) -> tuple[set[str], dict[str, str]]:
    table_map = next(m for m in CATALOG.maps if m.name == "contract-milestones")
    arm = FakeArm(applied_settings(bicep, {}))  # the first deployment
    client = httpx.AsyncClient(base_url="https://management.azure.com", transport=httpx.MockTransport(arm.handle))
    switch = ArmFunctionSwitch(APP_ID, Credential(), client)
    await pause(switch, table_map)
    arm.settings["PROJOPS_MILESTONE_INVOICED_CUTOVER"] = "true"  # az functionapp config appsettings set
    arm.settings["PROJOPS_COMPANIES"] = "USMF"  # a template-owned setting changed by hand
    assert table_map.function_name in await switch.disabled_functions()
    # the redeploy: infra/hooks/current_settings.py reads the settings into existingAppSettings
    arm.settings = applied_settings(bicep, dict(arm.settings))
    disabled = await switch.disabled_functions()
    await switch.close()
    return {table_map.function_name} & disabled, arm.settings


async def test_a_paused_flow_is_still_paused_after_a_redeploy() -> None:
    still_paused, settings = await paused_after_redeploy(FUNCTION_APP)
    assert still_paused
    assert settings["PROJOPS_MILESTONE_INVOICED_CUTOVER"] == "true"
    assert settings["PROJOPS_COMPANIES"] == "USMF,USPI"  # the template's own settings still win


async def test_without_the_merge_a_redeploy_resumes_the_flow() -> None:
    replaced = FUNCTION_APP.replace(
        b"union(existingAppSettings, platformSettings, settings)", b"union(platformSettings, settings)"
    )
    assert replaced != FUNCTION_APP
    still_paused, settings = await paused_after_redeploy(replaced)
    assert not still_paused
    assert "PROJOPS_MILESTONE_INVOICED_CUTOVER" not in settings


async def test_with_the_merge_last_the_template_cannot_change_a_setting() -> None:
    reordered = FUNCTION_APP.replace(
        b"union(existingAppSettings, platformSettings, settings)",
        b"union(platformSettings, settings, existingAppSettings)",
    )
    _, settings = await paused_after_redeploy(reordered)
    assert settings["PROJOPS_COMPANIES"] == "USMF"


def test_main_takes_the_current_settings_as_a_secure_parameter() -> None:
    main = parse((INFRA / "main.bicep").read_bytes())
    assert "@secure()" in text(main.root_node).split("param existingAppSettings", 1)[0].rsplit("\n\n", 1)[-1]
    assert "@secure()" in text(main.root_node).split("param webhookSecret", 1)[0].rsplit("\n\n", 1)[-1]
    # main hands the app the decoded settings, and each guide command fills them: tests/infra/test_azd_hook.py
