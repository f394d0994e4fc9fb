"""pause / resume: disable or enable a flow's function (DESIGN §8).

The platform's own switch is the app setting `AzureWebJobs.<function>.Disabled`: a disabled Service
Bus function stops receiving, Service Bus keeps the backlog (no one-day or 1 GB limit of ours), and
on resume the sessions drain it in order.
"""

from __future__ import annotations

from typing import Any, Protocol

import httpx

from shared.maps import TableMap

ARM = "https://management.azure.com"
API_VERSION = "2023-12-01"


def disabled_setting(function_name: str) -> str:
    return f"AzureWebJobs.{function_name}.Disabled"


class FunctionSwitch(Protocol):
    async def set_disabled(self, function_name: str, disabled: bool) -> None: ...

    async def disabled_functions(self) -> set[str]: ...


class ArmFunctionSwitch:
    """Flips the app setting on the Azure function app through Azure Resource Manager."""

    def __init__(self, resource_id: str, credential: Any, client: httpx.AsyncClient | None = None) -> None:
        self.resource_id = resource_id.rstrip("/")
        self._credential = credential
        self._client = client or httpx.AsyncClient(base_url=ARM, timeout=60)

    async def _headers(self) -> dict[str, str]:
        token = await self._credential.get_token(f"{ARM}/.default")
        return {"Authorization": f"Bearer {token.token}"}

    async def _settings(self) -> dict[str, str]:
        response = await self._client.post(
            f"{self.resource_id}/config/appsettings/list",
            params={"api-version": API_VERSION},
            headers=await self._headers(),
        )
        response.raise_for_status()
        return dict(response.json().get("properties") or {})

    async def set_disabled(self, function_name: str, disabled: bool) -> None:
        settings = await self._settings()
        name = disabled_setting(function_name)
        if disabled:
            settings[name] = "true"
        else:
            settings.pop(name, None)
        response = await self._client.put(
            f"{self.resource_id}/config/appsettings",
            params={"api-version": API_VERSION},
            headers=await self._headers(),
            json={"properties": settings},
        )
        response.raise_for_status()

    async def disabled_functions(self) -> set[str]:
        prefix, suffix = "AzureWebJobs.", ".Disabled"
        return {
            key[len(prefix) : -len(suffix)]
            for key, value in (await self._settings()).items()
            if key.startswith(prefix) and key.endswith(suffix) and str(value).lower() in ("true", "1")
        }

    async def close(self) -> None:
        await self._client.aclose()


async def pause(switch: FunctionSwitch, table_map: TableMap) -> None:
    await switch.set_disabled(table_map.function_name, True)


async def resume(switch: FunctionSwitch, table_map: TableMap) -> None:
    await switch.set_disabled(table_map.function_name, False)
