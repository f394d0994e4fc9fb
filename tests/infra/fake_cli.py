"""Stand-ins for the `az` and `azd` commands, put on PATH for the deployment hook's tests.

`az` answers the few commands infra/hooks/current_settings.py runs from a JSON state file (resource
groups, function apps with their settings, vault secrets), the way the Azure CLI prints them; `azd`
keeps `azd env set` values in a JSON file, as azd keeps them in .azure/<env>/.env. Each records the
commands it was given."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

TEMPLATE = """#!{python}
import sys
sys.path.insert(0, {root!r})
from tests.infra.fake_cli import {entry}
sys.exit({entry}(sys.argv[1:]))
"""


def install(bin_dir: Path, state: Path) -> dict[str, str]:
    """Write `az` and `azd` into bin_dir; the environment a child process needs to find them."""
    root = str(Path(__file__).resolve().parents[2])
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name, entry in (("az", "az_main"), ("azd", "azd_main")):
        script = bin_dir / name
        script.write_text(TEMPLATE.format(python=sys.executable, root=root, entry=entry))
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "FAKE_CLI_STATE": str(state)}


def load(state: Path) -> dict[str, Any]:
    return json.loads(state.read_text()) if state.exists() else {}


def _save(state: Path, data: dict[str, Any]) -> None:
    state.write_text(json.dumps(data))


def _option(arguments: list[str], *names: str) -> str | None:
    for name in names:
        if name in arguments:
            return arguments[arguments.index(name) + 1]
    return None


def _print(value: Any, arguments: list[str]) -> None:
    if _option(arguments, "--output", "-o") == "tsv":
        print(value)
    else:
        print(json.dumps(value))


def az_main(arguments: list[str]) -> int:
    state = Path(os.environ["FAKE_CLI_STATE"])
    data = load(state)
    data.setdefault("az_calls", []).append(arguments)
    _save(state, data)
    groups: dict[str, Any] = data.get("groups", {})
    if arguments[:2] == ["group", "exists"]:
        print("true" if _option(arguments, "--name", "-n") in groups else "false")
        return 0
    group = _option(arguments, "--resource-group", "-g") or ""
    if group not in groups and arguments[:1] != ["keyvault"]:
        print(f"ERROR: (ResourceGroupNotFound) Resource group '{group}' could not be found.", file=sys.stderr)
        return 3
    apps: dict[str, Any] = groups.get(group, {}).get("apps", {})
    name = _option(arguments, "--name", "-n") or ""
    if arguments[:2] == ["resource", "list"]:
        assert _option(arguments, "--resource-type") == "Microsoft.Web/sites"
        _print([{"name": name, "type": "Microsoft.Web/sites"}] if name in apps else [], arguments)
        return 0
    if arguments[:4] == ["functionapp", "config", "appsettings", "list"]:
        if name not in apps:
            message = f"ERROR: (ResourceNotFound) The Resource 'Microsoft.Web/sites/{name}' was not found."
            print(message, file=sys.stderr)
            return 3
        settings = apps[name]["settings"]
        _print([{"name": k, "slotSetting": False, "value": v} for k, v in settings.items()], arguments)
        return 0
    if arguments[:3] == ["keyvault", "secret", "show"]:
        secrets = data.get("vaults", {}).get(_option(arguments, "--vault-name") or "", {})
        secret = _option(arguments, "--name", "-n") or ""
        if secret not in secrets:
            print(f"ERROR: (SecretNotFound) A secret with (name/id) {secret} was not found.", file=sys.stderr)
            return 3
        assert _option(arguments, "--query") == "value"
        _print(secrets[secret], arguments)
        return 0
    print(f"ERROR: fake az does not know: {' '.join(arguments)}", file=sys.stderr)
    return 2


def azd_main(arguments: list[str]) -> int:
    state = Path(os.environ["FAKE_CLI_STATE"])
    data = load(state)
    if arguments[:2] != ["env", "set"] or len(arguments) != 4:
        print(f"fake azd does not know: {' '.join(arguments)}", file=sys.stderr)
        return 2
    data.setdefault("azd_env", {})[arguments[2]] = arguments[3]
    _save(state, data)
    return 0
