"""`azd up` on a redeploy keeps a paused flow paused: azure.yaml's preprovision hook runs as azd runs
it (its shell, the variables azd sets, `az` and `azd` on PATH), and what it leaves in the azd
environment goes through main.parameters.json's ${VAR} substitution into what the template applies.
The az CLI path runs the same script (--out), so both hand the template the same values."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from functions.catalog import CATALOG
from shared.operations.pause import ArmFunctionSwitch, pause
from tests.infra import fake_cli
from tests.infra.bicep import INFRA, declaration, lookup, modules, parse, text
from tests.infra.test_redeploy import APP_ID, FUNCTION_APP, Credential, FakeArm, applied_settings

ROOT = INFRA.parent
GROUP = "rg-projops"
VAULT = "kv-contosopo-abc123"
WEBHOOK_KEY = "the-current-webhook-key"
MILESTONES = next(m for m in CATALOG.maps if m.name == "contract-milestones")


def hook(event: str, system: str) -> dict[str, str]:
    return dict(yaml.safe_load((ROOT / "azure.yaml").read_text())["hooks"][event][system])


def run_hook(event: str, env: dict[str, str], system: str = "posix") -> subprocess.CompletedProcess[str]:
    """As azd runs a hook: its `run` in its shell, from the project folder, with azd's variables."""
    entry = hook(event, system)
    assert entry["shell"] == "sh"
    return subprocess.run(["sh", "-c", entry["run"]], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def run_script(arguments: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """As docs/deploy.md runs it for the az CLI path."""
    command = ["python3", "infra/hooks/current_settings.py", *arguments]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def azd_environment(tmp_path: Path, state: dict[str, Any], **overrides: str) -> tuple[dict[str, str], Path]:
    path = tmp_path / "state.json"
    path.write_text(json.dumps(state))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "PROJOPS_"))}
    env |= fake_cli.install(tmp_path / "bin", path)
    # What azd puts in a hook's environment for a resource-group deployment.
    env |= {"AZURE_ENV_NAME": "contosopo", "AZURE_SUBSCRIPTION_ID": "s", "AZURE_LOCATION": "westeurope"}
    env |= {"AZURE_RESOURCE_GROUP": GROUP} | overrides
    return env, path


def substituted_parameters(azd_env: dict[str, str]) -> dict[str, Any]:
    """main.parameters.json after azd's ${VAR} substitution (an unset variable becomes empty)."""
    source = (INFRA / "main.parameters.json").read_text()
    filled = re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda m: azd_env.get(m.group(1), ""), source)
    return {k: v["value"] for k, v in json.loads(filled)["parameters"].items()}


def existing_from_parameter(value: str) -> dict[str, str]:
    """main.bicep's currentAppSettings: empty, or the JSON object the base64 string holds."""
    expression = text(declaration(parse((INFRA / "main.bicep").read_bytes()), "variable", "currentAppSettings"))
    assert expression == "empty(existingAppSettings) ? {} : json(base64ToString(existingAppSettings))"
    return {} if not value else dict(json.loads(base64.b64decode(value, validate=True)))


def webhook_key_from_parameter(value: str) -> str:
    """main.bicep's webhookKey: the generated one when empty, else the base64 string decoded."""
    expression = text(declaration(parse((INFRA / "main.bicep").read_bytes()), "variable", "webhookKey"))
    assert expression == "empty(webhookSecret) ? generatedWebhookSecret : base64ToString(webhookSecret)"
    return "<generated>" if not value else base64.b64decode(value, validate=True).decode()


def test_an_unfilled_placeholder_is_not_base64_so_the_template_stops() -> None:
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    for name in ("existingAppSettings", "webhookSecret"):
        placeholder = parameters[name]["value"]
        assert placeholder.startswith("${")
        with pytest.raises(ValueError):
            base64.b64decode(placeholder, validate=True)


async def paused_app(arm: FakeArm) -> ArmFunctionSwitch:
    client = httpx.AsyncClient(base_url="https://management.azure.com", transport=httpx.MockTransport(arm.handle))
    switch = ArmFunctionSwitch(APP_ID, Credential(), client)
    await pause(switch, MILESTONES)
    arm.settings["PROJOPS_MILESTONE_INVOICED_CUTOVER"] = "true"
    arm.settings["PROJOPS_WEBHOOK_SECRET"] = f"@Microsoft.KeyVault(VaultName={VAULT};SecretName=projops-webhook-secret)"
    return switch


def deployed_state(settings: dict[str, str]) -> dict[str, Any]:
    return {
        "groups": {GROUP: {"apps": {"func-contosopo": {"settings": settings}}}},
        "vaults": {VAULT: {"projops-webhook-secret": WEBHOOK_KEY}},
    }


async def test_azd_redeploy_keeps_a_paused_flow_paused(tmp_path: Path) -> None:
    arm = FakeArm(applied_settings(FUNCTION_APP, {}))  # the first deployment
    switch = await paused_app(arm)
    env, state = azd_environment(tmp_path, deployed_state(arm.settings))

    ran = run_hook("preprovision", env)
    assert ran.returncode == 0, ran.stderr
    azd_env = fake_cli.load(state)["azd_env"]
    parameters = substituted_parameters(azd_env)
    assert webhook_key_from_parameter(parameters["webhookSecret"]) == WEBHOOK_KEY  # not rotated

    arm.settings = applied_settings(FUNCTION_APP, existing_from_parameter(parameters["existingAppSettings"]))
    assert MILESTONES.function_name in await switch.disabled_functions()
    assert arm.settings["PROJOPS_MILESTONE_INVOICED_CUTOVER"] == "true"
    await switch.close()

    # postprovision empties both, so the key does not stay in .azure/<env>/.env
    assert run_hook("postprovision", env).returncode == 0
    assert {k: v for k, v in fake_cli.load(state)["azd_env"].items() if v} == {}


async def test_without_the_hook_an_azd_redeploy_resumes_the_flow() -> None:
    arm = FakeArm(applied_settings(FUNCTION_APP, {}))
    switch = await paused_app(arm)
    parameters = substituted_parameters({})  # nothing in the azd environment
    assert parameters["existingAppSettings"] == "" and parameters["webhookSecret"] == ""
    arm.settings = applied_settings(FUNCTION_APP, existing_from_parameter(parameters["existingAppSettings"]))
    assert MILESTONES.function_name not in await switch.disabled_functions()
    await switch.close()


def test_a_first_azd_deployment_starts_empty_and_generates_the_key(tmp_path: Path) -> None:
    env, state = azd_environment(tmp_path, {"groups": {}})
    ran = run_hook("preprovision", env)
    assert ran.returncode == 0, ran.stderr
    assert fake_cli.load(state)["azd_env"] == {"PROJOPS_EXISTING_APP_SETTINGS": "", "PROJOPS_WEBHOOK_SECRET": ""}
    main = parse((INFRA / "main.bicep").read_bytes())
    assert webhook_key_from_parameter("") == "<generated>"
    assert "newGuid()" in text(declaration(main, "parameter", "generatedWebhookSecret"))


def test_the_hook_refuses_to_guess_without_a_resource_group(tmp_path: Path) -> None:
    env, state = azd_environment(tmp_path, deployed_state({"A": "b"}), AZURE_RESOURCE_GROUP="")
    ran = run_hook("preprovision", env)
    assert ran.returncode == 1
    assert "azd env set AZURE_RESOURCE_GROUP" in ran.stderr
    assert "azd_env" not in fake_cli.load(state)  # nothing handed on, so azd stops before provisioning


def test_the_hook_stops_when_the_webhook_key_cannot_be_read(tmp_path: Path) -> None:
    reference = f"@Microsoft.KeyVault(VaultName={VAULT};SecretName=projops-webhook-secret)"
    env, state = azd_environment(tmp_path, {**deployed_state({"PROJOPS_WEBHOOK_SECRET": reference}), "vaults": {}})
    ran = run_hook("preprovision", env)
    assert ran.returncode == 1 and "SecretNotFound" in ran.stderr
    assert "azd_env" not in fake_cli.load(state)


def test_windows_runs_the_same_script_with_the_same_arguments() -> None:
    for event in ("preprovision", "postprovision"):
        posix, windows = hook(event, "posix"), hook(event, "windows")
        assert windows["shell"] == "pwsh"
        # Windows installs Python as `python`; most Unix systems as `python3`.
        assert windows["run"].split(" ", 1) == ["python", posix["run"].split(" ", 1)[1]]
        assert posix["run"].startswith("python3 infra/hooks/current_settings.py --azd")


@pytest.mark.parametrize("paused", [True, False])
async def test_the_az_path_writes_the_same_values_to_a_parameters_file(tmp_path: Path, paused: bool) -> None:
    arm = FakeArm(applied_settings(FUNCTION_APP, {}))
    switch = await paused_app(arm)
    if not paused:
        await switch.set_disabled(MILESTONES.function_name, False)
    env, _ = azd_environment(tmp_path, deployed_state(arm.settings), AZURE_RESOURCE_GROUP="")
    out = tmp_path / "redeploy.parameters.json"
    ran = run_script(["-g", GROUP, "--out", str(out)], env)
    assert ran.returncode == 0, ran.stderr
    given = {k: v["value"] for k, v in json.loads(out.read_text())["parameters"].items()}
    assert webhook_key_from_parameter(given["webhookSecret"]) == WEBHOOK_KEY
    arm.settings = applied_settings(FUNCTION_APP, existing_from_parameter(given["existingAppSettings"]))
    assert (MILESTONES.function_name in await switch.disabled_functions()) is paused
    await switch.close()


def test_main_hands_the_decoded_settings_to_the_app() -> None:
    main = parse((INFRA / "main.bicep").read_bytes())
    app = next(m for m in modules(main) if m.path == "modules/functionapp.bicep")
    assert text(lookup(app.properties["params"], "existingAppSettings") or app.body) == "currentAppSettings"
    vault = next(m for m in modules(main) if m.path == "modules/keyvault.bicep")
    assert text(lookup(vault.properties["params"], "webhookSecret") or vault.body) == "webhookKey"


def test_the_guide_runs_the_script_before_every_deployment() -> None:
    deploy = (ROOT / "docs" / "deploy.md").read_text()
    commands = [block for block in deploy.split("```")[1::2] if "az deployment group create" in block]
    assert len(commands) >= 3  # first deployment, with the integration ids, redeploy
    for block in commands:
        before, _, deployment = block.partition("az deployment group create")
        assert "infra/hooks/current_settings.py" in before and "--out redeploy.parameters.json" in before, block
        assert "-p redeploy.parameters.json" in deployment, block
    assert "azd does not fill" not in deploy
