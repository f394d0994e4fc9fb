"""pause / resume: disable or enable a flow's function (DESIGN §8).

The platform's own switch is the app setting `AzureWebJobs.<function>.Disabled`: a disabled Service
Bus function stops receiving, Service Bus keeps the backlog (no one-day or 1 GB limit of ours), and
on resume the sessions drain it in order.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any, Protocol

import httpx

from shared.errors import OperatorError
from shared.maps import TableMap

ARM = "https://management.azure.com"
API_VERSION = "2023-12-01"


def disabled_setting(function_name: str) -> str:
    return f"AzureWebJobs.{function_name}.Disabled"


def _is_disabled(settings: dict[str, str], name: str) -> bool:
    return str(settings.get(name, "")).lower() in ("true", "1")


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

    # Resource Manager's PUT replaces every setting and takes no ETag, so a write made from an older
    # read (another pause or resume, `az ... appsettings set`, a deployment) silently undoes this
    # one. Each call therefore reads its change back after a moment, and re-reads and re-applies it
    # when it was lost; the random wait keeps two such calls from colliding again in step.
    attempts = 6
    settle_delay = 1.0
    retry_delay = (0.2, 1.5)

    async def _settings(self, headers: dict[str, str] | None = None) -> dict[str, str]:
        response = await self._client.post(
            f"{self.resource_id}/config/appsettings/list",
            params={"api-version": API_VERSION},
            headers=headers or await self._headers(),
        )
        response.raise_for_status()
        return dict(response.json().get("properties") or {})

    async def set_disabled(self, function_name: str, disabled: bool) -> None:
        name = disabled_setting(function_name)
        for attempt in range(self.attempts):
            if attempt:
                await asyncio.sleep(random.uniform(*self.retry_delay))
            # The token first, so as little time as possible passes between the read and the write.
            headers = await self._headers()
            settings = await self._settings(headers)
            if _is_disabled(settings, name) == disabled:
                # Nothing to write: a write would put back what it read over anything changed since.
                return
            if disabled:
                settings[name] = "true"
            else:
                settings.pop(name, None)
            response = await self._client.put(
                f"{self.resource_id}/config/appsettings",
                params={"api-version": API_VERSION},
                headers=headers,
                json={"properties": settings},
            )
            response.raise_for_status()
            # A writer that read before this PUT can land after it: give its PUT time, then look.
            await asyncio.sleep(self.settle_delay)
            if _is_disabled(await self._settings(), name) == disabled:
                return
        verb = "pause" if disabled else "resume"
        raise OperatorError(
            f"{verb} of {function_name} did not hold: another change to the function app's settings "
            f"(a pause or resume at the same time, a deployment) undid {name} each of {self.attempts} times; "
            f"`projops-sync status` shows what is paused now, then try again"
        )

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
