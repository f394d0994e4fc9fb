"""Bearer tokens for Dataverse and Finance through MSAL: client secret, certificate, managed identity.

One MSAL application per process: its token cache is in memory and `acquire_token_for_client` looks
there first, so creating it once is what keeps token requests rare. MSAL is synchronous; calls run in
a worker thread so the event loop keeps serving other messages.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from shared.errors import AuthError
from shared.settings import AuthMode, Settings


class TokenProvider(Protocol):
    async def token(self, resource: str, *, refused: str | None = None) -> str:
        """A bearer token for the resource; with `refused`, the token the resource answered 401 to:
        never that one again (a cached token is dropped and asked afresh)."""
        ...


def _check(result: dict[str, Any] | None, resource: str) -> str:
    if not result or "access_token" not in result:
        result = result or {}
        raise AuthError(
            f"no token for {resource}: {result.get('error', 'unknown error')}: "
            f"{result.get('error_description', 'no description')}"
        )
    return str(result["access_token"])


def _unanswered(resource: str, exc: Exception) -> AuthError:
    # MSAL lets requests' exceptions through when Entra is unreachable or answers 5xx: an outage of
    # the sign-in, to retry later like any refused token, never an unexpected error.
    return AuthError(f"no token for {resource}: Microsoft Entra ID did not answer ({type(exc).__name__}: {exc})")


class MsalClientCredentials:
    def __init__(self, app: Any = None, factory: Callable[[], Any] | None = None) -> None:
        # MSAL contacts Entra when the application is built, so it is built on first use, not at start-up.
        self._app = app
        self._factory = factory

    @classmethod
    def from_settings(cls, settings: Settings) -> MsalClientCredentials:
        import msal

        credential: Any
        if settings.auth_mode is AuthMode.CERTIFICATE:
            assert settings.client_certificate_path and settings.client_certificate_thumbprint
            credential = {
                "private_key": Path(settings.client_certificate_path).read_text(),
                "thumbprint": settings.client_certificate_thumbprint,
            }
        else:
            credential = settings.client_secret.get_secret_value() if settings.client_secret else None
        return cls(
            factory=lambda: msal.ConfidentialClientApplication(
                settings.client_id,
                client_credential=credential,
                authority=f"https://login.microsoftonline.com/{settings.tenant_id}",
            )
        )

    async def token(self, resource: str, *, refused: str | None = None) -> str:
        import requests

        try:
            if self._app is None:
                assert self._factory is not None
                self._app = await asyncio.to_thread(self._factory)
            result = await asyncio.to_thread(self._acquire, [f"{resource}/.default"], refused)
        except requests.RequestException as exc:
            raise _unanswered(resource, exc) from exc
        return _check(result, resource)

    def _acquire(self, scopes: list[str], refused: str | None) -> Any:
        result = self._app.acquire_token_for_client(scopes=scopes)
        if refused is not None and isinstance(result, dict) and result.get("access_token") == refused:
            # MSAL answers from its cache until the token expires: dropped, so Entra issues another.
            # (Every request that was refused the same token asks here; after the first, the cache
            # holds the new token and answers without this.)
            self._app.remove_tokens_for_client()
            result = self._app.acquire_token_for_client(scopes=scopes)
        return result


class MsalManagedIdentity:
    def __init__(self, client: Any, cache: Any = None) -> None:
        self._client = client
        # The client's msal.TokenCache, kept to drop a token the resource refused: the managed
        # identity client has no call of its own for that.
        self._cache = cache

    @classmethod
    def from_settings(cls, settings: Settings) -> MsalManagedIdentity:
        import msal
        import requests

        identity: Any = (
            msal.UserAssignedManagedIdentity(client_id=settings.managed_identity_client_id)
            if settings.managed_identity_client_id
            else msal.SystemAssignedManagedIdentity()
        )
        cache = msal.TokenCache()
        return cls(msal.ManagedIdentityClient(identity, http_client=requests.Session(), token_cache=cache), cache)

    async def token(self, resource: str, *, refused: str | None = None) -> str:
        import requests

        try:
            result = await asyncio.to_thread(self._acquire, resource, refused)
        except requests.RequestException as exc:
            raise _unanswered(resource, exc) from exc
        return _check(result, resource)

    def _acquire(self, resource: str, refused: str | None) -> Any:
        # A managed identity asks for a resource, not a scope.
        result = self._client.acquire_token_for_client(resource=resource)
        if refused is None or self._cache is None or not isinstance(result, dict):
            return result
        if result.get("access_token") == refused:
            import msal

            for entry in list(self._cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN)):
                if entry.get("secret") == refused:
                    self._cache.remove_at(entry)
            result = self._client.acquire_token_for_client(resource=resource)
        return result


class StaticToken:
    """The sandbox's simulators accept a fixed bearer value that names the caller."""

    def __init__(self, value: str) -> None:
        self.value = value

    async def token(self, resource: str, *, refused: str | None = None) -> str:
        return self.value


class AzureCredentialTokens:
    """DefaultAzureCredential (az login, VS Code, environment, managed identity): an operator's own
    sign-in for the command line, which a workstation has and a managed identity it has not."""

    def __init__(self, settings: Settings) -> None:
        from azure.identity.aio import DefaultAzureCredential

        self._credential = DefaultAzureCredential(managed_identity_client_id=settings.managed_identity_client_id)

    async def token(self, resource: str, *, refused: str | None = None) -> str:
        # The credential offers no way past its own cache: a token refused again is reported as such.
        from azure.core.exceptions import ClientAuthenticationError

        try:
            return (await self._credential.get_token(f"{resource}/.default")).token
        except ClientAuthenticationError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise AuthError(f"no token for {resource} (sign in with az login): {first}") from None


def create_token_provider(settings: Settings) -> TokenProvider:
    if settings.auth_mode is AuthMode.AZURE_CREDENTIAL:
        return AzureCredentialTokens(settings)
    if settings.auth_mode is AuthMode.NONE:
        return StaticToken(os.environ.get("PROJOPS_SANDBOX_TOKEN", "sandbox-integration"))
    if settings.auth_mode is AuthMode.MANAGED_IDENTITY:
        return MsalManagedIdentity.from_settings(settings)
    return MsalClientCredentials.from_settings(settings)
