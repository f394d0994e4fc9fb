"""The app settings infra/main.bicep gives a managed-identity deployment, with made-up names and ids:
what the host's environment holds when it imports function_app in Azure."""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest

DEPLOYED_SETTINGS = {
    "PROJOPS_DATAVERSE_URL": "https://contoso.crm.dynamics.com",
    "PROJOPS_FINANCE_URL": "https://contoso.operations.dynamics.com",
    "PROJOPS_AUTH_MODE": "managed-identity",
    "PROJOPS_TENANT_ID": "00000000-0000-0000-0000-000000000001",
    "PROJOPS_CLIENT_ID": "",
    "PROJOPS_COMPANIES": "USMF,USPI",
    "PROJOPS_RETRY_MAX_ATTEMPTS": "8",
    "PROJOPS_RECONCILE_SCHEDULE": "0 0 2 * * *",
    "PROJOPS_RECONCILE_FLOWS": "",
    "PROJOPS_STATE_BACKEND": "tables",
    "PROJOPS_BUS_BACKEND": "servicebus",
    "PROJOPS_SERVICEBUS_RESOURCE_ID": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ServiceBus/namespaces/sb",
    "PROJOPS_CLIENT_SECRET": "",
    "PROJOPS_WEBHOOK_SECRET": "a-resolved-webhook-key",
    "PROJOPS_STATE_TABLES_ACCOUNT_URL": "https://stcontoso.table.core.windows.net/",
    "PROJOPS_MANAGED_IDENTITY_CLIENT_ID": "00000000-0000-0000-0000-000000000002",
    "PROJOPS_FUNCTION_APP_RESOURCE_ID": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Web/sites/func-contoso",
    "ServiceBus__fullyQualifiedNamespace": "sb-contoso.servicebus.windows.net",
}


def import_function_app() -> ModuleType:
    """function_app as the host imports it: with the deployed settings in the environment, which it checks."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in DEPLOYED_SETTINGS.items():
            patch.setenv(name, value)
        return importlib.import_module("function_app")
