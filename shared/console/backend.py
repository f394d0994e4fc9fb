"""Where an operation runs: in this process against the app's own settings, or through the admin API.

`Direct` builds the runtime from the same settings the function app reads (Dataverse, Finance, Table
Storage and Service Bus, signed in with DefaultAzureCredential from a workstation). `Remote` calls the
admin functions under `<url>/api/admin/` with a function key: the only way into the sandbox, whose bus
lives inside its process, and the shortest way into a deployment. Both answer the same views
(shared.operations.views), so the command line prints the same thing either way.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

from shared.errors import OperatorError
from shared.operations import views
from shared.settings import Settings

Progress = Callable[[dict[str, Any]], None]


class Backend(Protocol):
    where: str

    async def status(self) -> list[dict[str, Any]]: ...

    async def parked(self, filters: dict[str, Any]) -> list[dict[str, Any]]: ...

    async def parked_one(self, parked_id: str) -> dict[str, Any]: ...

    async def replay(self, selection: dict[str, Any]) -> dict[str, Any]: ...

    async def dismiss(self, selection: dict[str, Any]) -> dict[str, Any]: ...

    async def switch(self, flow: str, paused: bool) -> dict[str, Any]: ...

    async def start_sync(self, flow: str, options: dict[str, Any], progress: Progress | None) -> dict[str, Any]: ...

    async def runs(self, flow: str | None) -> list[dict[str, Any]]: ...

    async def run(self, run_id: str) -> dict[str, Any]: ...

    async def check_maps(self) -> dict[str, Any]: ...

    async def catch_up(self, flow: str, restart: bool = False) -> dict[str, Any]: ...

    async def reconcile(self, flow: str, options: dict[str, Any], progress: Any) -> dict[str, Any]: ...

    async def trace(self, flow: str, key: str) -> dict[str, Any]: ...

    async def close(self) -> None: ...


def admin_root(url: str) -> str:
    """The function app's root URL, checked; the admin API is under /api/admin/ of it."""
    parsed = urlsplit(url.strip())
    if parsed.scheme not in ("https", "http") or not parsed.hostname:
        raise OperatorError(
            f"--url {url!r} is not an absolute http(s) URL, e.g. https://contoso-sync.azurewebsites.net"
        )
    if parsed.path.strip("/"):
        root = f"{parsed.scheme}://{parsed.netloc}"
        raise OperatorError(f"--url {url!r} has a path ({parsed.path}): give the function app's root URL, {root}")
    return url.strip().rstrip("/")


class Remote:
    """The admin API over HTTP, with the function key in the x-functions-key header."""

    def __init__(self, url: str, key: str | None, client: httpx.AsyncClient | None = None) -> None:
        self.where = admin_root(url)
        if not key:
            raise OperatorError(
                f"set PROJOPS_ADMIN_KEY (or --admin-key) to a function key of {self.where}: "
                "az functionapp keys list, or the sandbox's .sandbox/cli.env"
            )
        # An admin initial sync does one slice (about two minutes) before it answers.
        self._client = client or httpx.AsyncClient(
            base_url=f"{self.where}/api/admin/", headers={"x-functions-key": key}, timeout=240
        )

    async def _call(self, method: str, path: str, *, ok: tuple[int, ...] = (), **kwargs: Any) -> Any:
        try:
            response = await self._client.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            reason = str(exc) or type(exc).__name__
            raise OperatorError(f"cannot reach the admin API at {self.where}: {reason}") from None
        if response.status_code in (401, 403):
            raise OperatorError(f"{self.where} refused the admin key ({response.status_code}): check PROJOPS_ADMIN_KEY")
        if response.status_code >= 400 and response.status_code not in ok:
            try:
                message = str(response.json()["error"])
            except (ValueError, KeyError, TypeError):
                first = response.text.strip().splitlines()[0] if response.text.strip() else ""
                message = f"{self.where} answered {response.status_code} to {method} {path}: {first[:200]}"
            raise OperatorError(message)
        try:
            return response.json()
        except ValueError:
            raise OperatorError(
                f"{self.where} answered {method} {path} with something other than JSON: is it the function app?"
            ) from None

    async def status(self) -> list[dict[str, Any]]:
        return list(await self._call("GET", "status"))

    async def parked(self, filters: dict[str, Any]) -> list[dict[str, Any]]:
        params = {k: str(v) for k, v in filters.items() if v is not None}
        params.setdefault("status", "")
        return list(await self._call("GET", "parked", params=params))

    async def parked_one(self, parked_id: str) -> dict[str, Any]:
        return dict(await self._call("GET", f"parked/{_segment(parked_id)}"))

    async def replay(self, selection: dict[str, Any]) -> dict[str, Any]:
        return dict(await self._call("POST", "replay", json=selection))

    async def dismiss(self, selection: dict[str, Any]) -> dict[str, Any]:
        return dict(await self._call("POST", "dismiss", json=selection))

    async def switch(self, flow: str, paused: bool) -> dict[str, Any]:
        return dict(await self._call("POST", f"{'pause' if paused else 'resume'}/{_segment(flow)}"))

    async def start_sync(self, flow: str, options: dict[str, Any], progress: Progress | None) -> dict[str, Any]:
        return dict(await self._call("POST", f"initial-sync/{_segment(flow)}", json=options))

    async def runs(self, flow: str | None) -> list[dict[str, Any]]:
        return list(await self._call("GET", "runs", params={"flow": flow} if flow else {}))

    async def run(self, run_id: str) -> dict[str, Any]:
        return dict(await self._call("GET", f"runs/{_segment(run_id)}"))

    async def check_maps(self) -> dict[str, Any]:
        return dict(await self._call("GET", "check-maps", ok=(409,)))

    async def catch_up(self, flow: str, restart: bool = False) -> dict[str, Any]:
        body = {"changes": True, "restart": restart}
        return dict(await self._call("POST", f"initial-sync/{_segment(flow)}", json=body))

    async def reconcile(self, flow: str, options: dict[str, Any], progress: Any) -> dict[str, Any]:
        """Queued on the deployment (it runs from admin-runs, past any HTTP time limit), then followed
        until its report is stored."""
        import asyncio

        queued = dict(await self._call("POST", f"reconcile/{_segment(flow)}", json=options))
        while True:
            for run in await self._call("GET", f"reconcile/{_segment(flow)}"):
                if run.get("id") == queued.get("id") and "report" in (run.get("options") or {}):
                    return dict(run["options"]["report"])
                if run.get("id") == queued.get("id") and run.get("status") == "failed":
                    raise OperatorError(f"reconcile {queued.get('id')} failed: {'; '.join(run.get('errors') or [])}")
            await asyncio.sleep(1.0)

    async def trace(self, flow: str, key: str) -> dict[str, Any]:
        return dict(await self._call("GET", f"trace/{_segment(flow)}", params={"key": key}))

    async def close(self) -> None:
        await self._client.aclose()


def _segment(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


class _NoBus:
    """The sender of a command-line runtime on the sandbox's settings, whose bus is in another process."""

    async def send_events(self, *args: Any, **kwargs: Any) -> None:
        raise OperatorError(_LOCAL_BUS)

    async def send_raw(self, *args: Any, **kwargs: Any) -> None:
        raise OperatorError(_LOCAL_BUS)

    async def close(self) -> None:
        pass


_LOCAL_BUS = (
    "the sandbox's bus lives inside its process: set PROJOPS_ADMIN_URL and PROJOPS_ADMIN_KEY "
    "(PROJOPS_PROFILE=.sandbox/cli.env, written by make sandbox ARGS=--serve)"
)


class Direct:
    """The operations in this process, on the app's settings."""

    def __init__(self, settings: Settings) -> None:
        from shared.runtime import build_runtime
        from shared.settings import BusBackend

        sender = _NoBus() if settings.bus_backend is BusBackend.LOCAL else None
        self.runtime = build_runtime(settings, sender=sender)
        self.where = settings.dataverse_url
        self.by = getpass.getuser()

    async def status(self) -> list[dict[str, Any]]:
        return await views.status_view(self.runtime)

    async def parked(self, filters: dict[str, Any]) -> list[dict[str, Any]]:
        return await views.parked_view(self.runtime, **filters)

    async def parked_one(self, parked_id: str) -> dict[str, Any]:
        return await views.parked_one_view(self.runtime, parked_id)

    async def replay(self, selection: dict[str, Any]) -> dict[str, Any]:
        return await views.replay_view(self.runtime, selection, by=self.by)

    async def dismiss(self, selection: dict[str, Any]) -> dict[str, Any]:
        return await views.dismiss_view(self.runtime, selection, by=self.by)

    async def switch(self, flow: str, paused: bool) -> dict[str, Any]:
        return await views.switch_view(self.runtime, flow, paused)

    async def start_sync(self, flow: str, options: dict[str, Any], progress: Progress | None) -> dict[str, Any]:
        """The whole feeding in this process (no slices: nothing cuts a command off after 230 s)."""
        from shared.operations.initial_sync import initial_sync, run_to_resume

        table_map = views.flow_map(self.runtime, flow)
        since = views.when(options.get("since"), "since")
        companies = options.get("companies")
        restart = bool(options.get("restart"))
        resume = await run_to_resume(self.runtime, table_map, companies=companies, since=since, restart=restart)
        run = await initial_sync(
            self.runtime,
            table_map,
            companies=companies,
            since=since,
            resume=resume,
            progress=(lambda run: progress(views.plain(run))) if progress else None,
        )
        return await views.run_view(self.runtime, run)

    async def runs(self, flow: str | None) -> list[dict[str, Any]]:
        return await views.runs_view(self.runtime, flow)

    async def run(self, run_id: str) -> dict[str, Any]:
        return await views.run_one_view(self.runtime, run_id)

    async def check_maps(self) -> dict[str, Any]:
        return await views.check_maps_view(self.runtime)

    async def catch_up(self, flow: str, restart: bool = False) -> dict[str, Any]:
        from shared.operations.changes import catch_up

        table_map = views.flow_map(self.runtime, flow)
        try:
            return dict(views.plain(await catch_up(self.runtime, table_map, restart=restart)))
        except ValueError as exc:
            raise OperatorError(str(exc)) from None

    async def reconcile(self, flow: str, options: dict[str, Any], progress: Any) -> dict[str, Any]:
        from shared.operations.reconcile import reconcile

        report = await reconcile(
            self.runtime,
            views.flow_map(self.runtime, flow),
            company=options.get("company"),
            since=views.when(options.get("since"), "since"),
            repair=bool(options.get("repair")),
            progress=progress,
        )
        return report.to_dict()

    async def trace(self, flow: str, key: str) -> dict[str, Any]:
        from shared.operations.trace import trace

        return await trace(self.runtime, views.flow_map(self.runtime, flow), key)

    async def close(self) -> None:
        from shared.runtime import set_runtime

        await self.runtime.close()
        set_runtime(None)
