"""Every setting of projops-sync, in one pydantic-settings model.

Settings come from environment variables (Azure app settings, `local.settings.json` locally), prefixed
`PROJOPS_`, except the Service Bus namespace, which follows the Functions identity-connection naming
(`ServiceBus__fullyQualifiedNamespace`). A missing or malformed setting fails at start-up with a
message that names it.
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class AuthMode(StrEnum):
    SECRET = "secret"
    CERTIFICATE = "certificate"
    MANAGED_IDENTITY = "managed-identity"
    # azure-identity's DefaultAzureCredential: az login, VS Code or a managed identity; what the
    # command line uses from an operator's workstation.
    AZURE_CREDENTIAL = "azure-credential"
    # Only for the sandbox simulators, which accept any bearer token.
    NONE = "none"


class StateBackend(StrEnum):
    TABLES = "tables"
    SQLITE = "sqlite"


class BusBackend(StrEnum):
    SERVICEBUS = "servicebus"
    LOCAL = "local"


def _split_list(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.replace(";", ",").split(",") if item.strip()]
    return value


CsvList = Annotated[list[str], NoDecode]


# The setting naming the map extension file; read by the CLI before any other setting is needed.
MAP_EXTENSIONS_SETTING = "PROJOPS_MAP_EXTENSIONS"


# App Service hands the app a Key Vault reference's own text when it cannot resolve it (the identity
# cannot read the vault, the secret is missing): taken as a value, the webhook key would be a string
# anyone can write who knows the vault's name, and the real key would be refused.
KEY_VAULT_REFERENCE = "@microsoft.keyvault("


def _unresolved_reference(value: object) -> bool:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    return isinstance(value, str) and value.lstrip().lower().startswith(KEY_VAULT_REFERENCE)


# The API paths the clients add themselves: a URL that already ends in one is a mistake to point out.
API_SUFFIXES = {"dataverse_url": "/api/data/v9.2", "finance_url": "/data"}


def environment_url(value: str, api_path: str) -> str:
    """An environment's root URL, checked: absolute http(s), a host, no API path of its own."""
    parsed = urlsplit(value.strip())
    if parsed.scheme not in ("https", "http") or not parsed.hostname:
        raise ValueError(f"{value!r} is not an absolute http(s) URL, e.g. https://contoso.crm.dynamics.com")
    path = parsed.path.rstrip("/")
    if path.lower().startswith(api_path.split("/v")[0].lower()) and path:
        root = f"{parsed.scheme}://{parsed.netloc}"
        raise ValueError(f"{value!r} ends in the API path {path}: give the environment's root URL, {root}")
    if parsed.query or parsed.fragment:
        raise ValueError(f"{value!r} has a query or fragment: give the environment's root URL")
    return value.strip().rstrip("/")


class Settings(BaseSettings):
    # The checks before validation see the raw settings, secrets in plain text: errors do not echo them.
    model_config = SettingsConfigDict(
        env_prefix="PROJOPS_", extra="ignore", populate_by_name=True, hide_input_in_errors=True
    )

    # The two systems.
    dataverse_url: str = Field(description="Dataverse environment URL, e.g. https://contoso.crm.dynamics.com")
    finance_url: str = Field(description="Finance environment URL, e.g. https://contoso.operations.dynamics.com")

    # Authentication (Microsoft Entra ID through MSAL).
    auth_mode: AuthMode = AuthMode.MANAGED_IDENTITY
    tenant_id: str | None = None
    client_id: str | None = None
    # Secret types keep the values out of repr(), logs and tracebacks.
    client_secret: SecretStr | None = None
    client_certificate_path: str | None = Field(default=None, description="PEM file with the private key")
    client_certificate_thumbprint: str | None = None
    managed_identity_client_id: str | None = Field(
        default=None, description="client id of a user-assigned managed identity; empty = system-assigned"
    )

    # Echo detection: changes made by these identities are the integration's own writes.
    integration_user_ids: CsvList = Field(
        default_factory=list, description="Dataverse systemuserid(s) of the integration's application user"
    )
    integration_object_ids: CsvList = Field(
        default_factory=list, description="Entra object id(s) the integration writes to Finance as"
    )

    # Scope and behaviour.
    companies: CsvList = Field(default_factory=list, description="legal entities (dataAreaId) in scope")
    milestone_invoiced_cutover: bool = Field(
        default=False,
        description="cutover only: send milestone invoice status so milestones invoiced before go-live arrive invoiced",
    )
    map_extensions_path: str | None = Field(
        default=None,
        validation_alias=AliasChoices(MAP_EXTENSIONS_SETTING, "map_extensions_path"),
        description="a map extension file (YAML) adding the customer's own fields to the maps",
    )
    finance_extensions: CsvList = Field(
        default_factory=list,
        description="Finance extensions installed that publish entities the standard $metadata lacks "
        "(public-transaction-relationships, public-invoice-proposals); a map that needs one runs only then",
    )
    # Scheduled reconcile: off until flows are named; the timer's schedule is RECONCILE_SCHEDULE.
    reconcile_flows: CsvList = Field(
        default_factory=list, description="flows the timer reconciles (none: scheduled reconcile is off)"
    )
    reconcile_schedule: str = Field(
        default="0 0 2 * * *",
        description="NCRONTAB schedule of the reconcile timer (the app setting the trigger reads)",
    )
    reconcile_repair: bool = Field(default=False, description="scheduled reconciles also repair what they find")
    retry_max_attempts: int = Field(default=8, ge=1, le=100, description="attempt budget before parking")
    retry_base_delay_seconds: float = Field(default=30.0, gt=0)
    retry_max_delay_seconds: float = Field(default=3600.0, gt=0)
    http_timeout_seconds: float = Field(default=30.0, gt=0)
    http_max_retries: int = Field(default=4, ge=0, le=10, description="in-call retries of 429/5xx/timeouts")
    http_max_retry_wait_seconds: float = Field(
        default=20.0, gt=0, description="longest in-call wait; longer Retry-After becomes retry-later"
    )
    lookup_cache_ttl_seconds: float = Field(default=300.0, ge=0)
    dataverse_bulk_rows: int = Field(
        default=500,
        ge=0,
        le=1000,
        description="most rows in one UpsertMultiple when upserts wait for Dataverse (0: every row its own "
        "request); Microsoft suggests starting near 1,000 for standard tables",
    )
    finance_batch_rows: int = Field(
        default=100,
        ge=0,
        le=5000,
        description="most writes in one Finance $batch (one changeset a row) when writes wait for Finance (0: "
        "every row its own request); Finance's service protection page says up to 5,000 operations a batch "
        "(unverified); 100 is ours (inferred): Finance runs a batch's parts one after another, and every row "
        "waits for its whole batch",
    )

    # State.
    state_backend: StateBackend = StateBackend.TABLES
    state_tables_account_url: str | None = Field(
        default=None, description="https://<account>.table.core.windows.net (identity-based)"
    )
    # A key-based connection string holds the account key: kept out of every repr and dump.
    state_tables_connection_string: SecretStr | None = Field(default=None, description="Azurite or key-based")
    state_sqlite_path: str = ".sandbox/state.db"

    # Messaging.
    bus_backend: BusBackend = BusBackend.SERVICEBUS
    servicebus_namespace: str | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "ServiceBus__fullyQualifiedNamespace", "PROJOPS_SERVICEBUS_NAMESPACE", "servicebus_namespace"
        ),
    )

    # pause/resume flip AzureWebJobs.<function>.Disabled on this app through Azure Resource Manager.
    function_app_resource_id: str | None = Field(
        default=None,
        description="/subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.Web/sites/<app>",
    )

    # status reads queue counts through Resource Manager (the identity has no Manage right).
    servicebus_resource_id: str | None = Field(
        default=None,
        description="/subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.ServiceBus/namespaces/<ns>",
    )

    # Dismissed parked rows are deleted once dismissed this long ago (replayed and open ones stay).
    parked_retention_days: int = Field(default=90, ge=1, description="days a dismissed parked row is kept for audit")
    # Every outcome recorded for a record is kept this long, for `trace`.
    outcome_retention_days: int = Field(default=30, ge=1, description="days each record's outcomes are kept for trace")

    # Dataverse webhook ingress.
    webhook_secret: SecretStr | None = Field(default=None, description="value of the x-projops-webhook-key header")
    webhook_max_bytes: int = Field(default=1_048_576, gt=0)

    @field_validator(
        "integration_user_ids",
        "integration_object_ids",
        "companies",
        "finance_extensions",
        "reconcile_flows",
        mode="before",
    )
    @classmethod
    def _csv(cls, value: object) -> object:
        return _split_list(value)

    @field_validator("integration_user_ids", "integration_object_ids")
    @classmethod
    def _lower_ids(cls, value: list[str]) -> list[str]:
        return [item.strip("{}").lower() for item in value]

    @field_validator("companies")
    @classmethod
    def _upper_companies(cls, value: list[str]) -> list[str]:
        return [item.upper() for item in value]

    @field_validator("dataverse_url", "finance_url")
    @classmethod
    def _url(cls, value: str, info: ValidationInfo) -> str:
        return environment_url(value, API_SUFFIXES[info.field_name or ""])

    @model_validator(mode="before")
    @classmethod
    def _key_vault_references_resolved(cls, data: object) -> object:
        if not isinstance(data, dict):
            return data
        unresolved = [cls._setting_name(str(key)) for key, value in data.items() if _unresolved_reference(value)]
        if unresolved:
            raise ValueError(
                f"{', '.join(unresolved)}: its Key Vault reference did not resolve (App Service passed the "
                "reference's text instead of the secret): check that the app's identity can read the vault "
                "(keyVaultReferenceIdentity, Key Vault Secrets User, network access) and that the secret exists"
            )
        return data

    @classmethod
    def _setting_name(cls, key: str) -> str:
        """The environment variable a key of the raw settings comes from."""
        field = cls.model_fields.get(key)
        if field is None:
            return key  # already an alias, as the environment spells it
        if isinstance(field.validation_alias, AliasChoices):
            return str(field.validation_alias.choices[0])
        return f"PROJOPS_{key.upper()}"

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        missing: list[str] = []
        if self.auth_mode in (AuthMode.SECRET, AuthMode.CERTIFICATE):
            missing += [f"PROJOPS_{n.upper()}" for n in ("tenant_id", "client_id") if not getattr(self, n)]
        if self.auth_mode is AuthMode.SECRET and not self.client_secret:
            missing.append("PROJOPS_CLIENT_SECRET")
        if self.auth_mode is AuthMode.CERTIFICATE:
            missing += [
                f"PROJOPS_{n.upper()}"
                for n in ("client_certificate_path", "client_certificate_thumbprint")
                if not getattr(self, n)
            ]
        if self.state_backend is StateBackend.TABLES and not (
            self.state_tables_account_url or self.state_tables_connection_string
        ):
            missing.append("PROJOPS_STATE_TABLES_ACCOUNT_URL (or PROJOPS_STATE_TABLES_CONNECTION_STRING)")
        if self.bus_backend is BusBackend.SERVICEBUS and not self.servicebus_namespace:
            missing.append("ServiceBus__fullyQualifiedNamespace")
        if missing:
            raise ValueError(f"missing setting(s) for this configuration: {', '.join(missing)}")
        return self


class SettingsError(RuntimeError):
    """Raised at start-up when settings are missing or malformed; the message names each one."""


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = ".".join(str(part) for part in error["loc"])
            name = f"PROJOPS_{loc.upper()}" if loc else "settings"
            problems.append(f"{name}: {error['msg']}")
        raise SettingsError("invalid projops-sync settings: " + "; ".join(problems)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
