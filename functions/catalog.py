"""Every flow's table map and function, in dual-write run order (prerequisites first)."""

import azure.functions as func

from functions import (
    actuals,
    actuals_accounting,
    contract_headers,
    contract_lines,
    customers,
    exchange_rates,
    expense_categories,
    legal_entities,
    projects_v2,
    resource_roles,
    transaction_categories,
    vendors,
    workers,
)
from shared.maps import Registry, TableMap

MAPS: tuple[TableMap, ...] = (
    legal_entities.MAP,
    exchange_rates.MAP,
    customers.MAP,
    customers.REVERSE_MAP,
    vendors.MAP,
    workers.MAP,
    resource_roles.MAP,
    transaction_categories.MAP,
    contract_headers.MAP,
    contract_lines.MAP,
    projects_v2.MAP,
    actuals.MAP,
    actuals_accounting.MAP,
    expense_categories.MAP,
)

BLUEPRINTS: tuple[func.Blueprint, ...] = (
    legal_entities.bp,
    exchange_rates.bp,
    customers.bp,
    customers.reverse_bp,
    vendors.bp,
    workers.bp,
    resource_roles.bp,
    transaction_categories.bp,
    contract_headers.bp,
    contract_lines.bp,
    projects_v2.bp,
    actuals.bp,
    actuals_accounting.bp,
    expense_categories.bp,
)

CATALOG = Registry(MAPS)
