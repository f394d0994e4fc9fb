"""What a deployment must carry over from the running app, for the az CLI and azd alike.

A deployment replaces every app setting, and the webhook key in Key Vault is generated anew unless
it is passed. Before each deployment this reads, with the Azure CLI, the function app's current
settings and the webhook key, and hands them to infra/main.bicep's `existingAppSettings` and
`webhookSecret`:

    python infra/hooks/current_settings.py -g <resource group> --out redeploy.parameters.json
        writes an ARM parameters file for `az deployment group create -p`;
    python infra/hooks/current_settings.py --azd
        (azure.yaml's preprovision hook) stores them in the azd environment, which
        infra/main.parameters.json substitutes as ${PROJOPS_EXISTING_APP_SETTINGS} and
        ${PROJOPS_WEBHOOK_SECRET}; `--azd --clear` (postprovision) empties them again, so the key
        does not stay in the environment's .env file.

No app yet (a first deployment): both are empty, and the template starts from its own settings and
generates the key. Both travel in base64 (the settings as their JSON): azd substitutes the text into a
JSON string, and base64 has no character that needs escaping there (how azd escapes a substituted
value is not documented: inferred); and a placeholder left unfilled is not base64, so the template
fails before it writes the key or the settings.

Only the standard library: it runs on the operator's machine (macOS, Windows, Linux) before the
project is installed anywhere.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

INFRA = Path(__file__).resolve().parents[1]
SETTINGS_VARIABLE = "PROJOPS_EXISTING_APP_SETTINGS"
WEBHOOK_VARIABLE = "PROJOPS_WEBHOOK_SECRET"
WEBHOOK_SECRET_NAME = "projops-webhook-secret"
# The template writes PROJOPS_WEBHOOK_SECRET as a Key Vault reference; its vault name is the vault's.
_VAULT_REFERENCE = re.compile(r"^@Microsoft\.KeyVault\(VaultName=([^;]+);SecretName=([^)]+)\)$")


class DeployError(Exception):
    """Something the operator has to fix before deploying; nothing was deployed."""


def _tool(name: str) -> str:
    # On Windows az and azd are .cmd/.exe files, which subprocess finds only through which().
    found = shutil.which(name)
    if found is None:
        raise DeployError(f"{name} is not on PATH: install it and sign in ({name} login)")
    return found


def _run(tool: str, *arguments: str) -> str:
    completed = subprocess.run([_tool(tool), *arguments], capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise DeployError(f"{tool} {' '.join(arguments[:3])} failed: {completed.stderr.strip()}")
    return completed.stdout


def _az_json(*arguments: str) -> Any:
    return json.loads(_run("az", *arguments, "--output", "json") or "null")


def app_name(parameters_file: Path = INFRA / "main.parameters.json") -> str:
    """func-<name>, as modules/functionapp.bicep names the app."""
    parameters = json.loads(parameters_file.read_text(encoding="utf-8"))["parameters"]
    return f"func-{parameters['name']['value']}"


def current_settings(resource_group: str, app: str) -> dict[str, str]:
    """The app's settings now; empty when the group or the app does not exist yet."""
    if _run("az", "group", "exists", "--name", resource_group).strip() != "true":
        return {}
    found = _az_json(
        "resource", "list", "--resource-group", resource_group, "--resource-type", "Microsoft.Web/sites", "--name", app
    )
    if not found:
        return {}
    listed = _az_json("functionapp", "config", "appsettings", "list", "--resource-group", resource_group, "--name", app)
    return {str(item["name"]): str(item["value"] if item["value"] is not None else "") for item in listed}


def webhook_secret(settings: dict[str, str]) -> str:
    """The key in the vault the app's own Key Vault reference names; empty when the app has none."""
    reference = _VAULT_REFERENCE.match(settings.get("PROJOPS_WEBHOOK_SECRET", ""))
    if reference is None:
        return ""
    vault, secret = reference.groups()
    if secret != WEBHOOK_SECRET_NAME:
        raise DeployError(f"PROJOPS_WEBHOOK_SECRET names secret {secret}, not {WEBHOOK_SECRET_NAME}")
    return _run("az", "keyvault", "secret", "show", "--vault-name", vault, "--name", secret, "--query", "value",
                "--output", "tsv").strip()  # fmt: skip


def _base64(text: str) -> str:
    return base64.b64encode(text.encode()).decode("ascii") if text else ""


def encoded(settings: dict[str, str], secret: str) -> dict[str, str]:
    """existingAppSettings (base64 of the settings' JSON) and webhookSecret (base64), empty for none."""
    return {
        "existingAppSettings": _base64(json.dumps(settings, sort_keys=True)) if settings else "",
        "webhookSecret": _base64(secret),
    }


def parameters_document(settings: dict[str, str], secret: str) -> dict[str, Any]:
    return {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {name: {"value": value} for name, value in encoded(settings, secret).items()},
    }


def _azd_set(name: str, value: str) -> None:
    _run("azd", "env", "set", name, value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0] if __doc__ else None)
    parser.add_argument("-g", "--resource-group", help="default: AZURE_RESOURCE_GROUP (azd sets it)")
    parser.add_argument("--out", type=Path, help="write an ARM parameters file for az deployment group create")
    parser.add_argument("--azd", action="store_true", help="store the values in the azd environment (hook)")
    parser.add_argument("--clear", action="store_true", help="with --azd: empty them again (postprovision)")
    arguments = parser.parse_args(argv)
    if arguments.azd == (arguments.out is not None):
        parser.error("give one of --azd or --out")
    try:
        if arguments.clear:
            if not arguments.azd:
                parser.error("--clear goes with --azd")
            _azd_set(SETTINGS_VARIABLE, "")
            _azd_set(WEBHOOK_VARIABLE, "")
            return 0
        group = arguments.resource_group or os.environ.get("AZURE_RESOURCE_GROUP", "")
        if not group:
            # Without the group a redeploy could not find the app and would resume every paused flow.
            raise DeployError("no resource group: pass -g, or run `azd env set AZURE_RESOURCE_GROUP <group>` first")
        app = app_name()
        settings = current_settings(group, app)
        secret = webhook_secret(settings)
        print(f"{app}: {len(settings)} current settings carried over" if settings else f"{app}: first deployment")
        if arguments.azd:
            values = encoded(settings, secret)
            _azd_set(SETTINGS_VARIABLE, values["existingAppSettings"])
            _azd_set(WEBHOOK_VARIABLE, values["webhookSecret"])
        else:
            arguments.out.write_text(json.dumps(parameters_document(settings, secret), indent=2), encoding="utf-8")
    except DeployError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
