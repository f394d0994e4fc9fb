"""Every flow's table map and function, in dual-write run order (prerequisites first)."""

from functools import cache
from pathlib import Path

import azure.functions as func

from functions import (
    actuals,
    actuals_accounting,
    contract_headers,
    contract_lines,
    contract_milestones,
    customers,
    exchange_rates,
    expense_categories,
    expense_estimates,
    expenses,
    funding_sources,
    hour_estimates,
    invoice_proposals,
    ledgers,
    legal_entities,
    material_estimates,
    project_tasks,
    projects_v2,
    resource_roles,
    transaction_categories,
    transaction_connections,
    vendor_accounts,
    vendor_invoice_lines,
    vendor_invoice_status,
    vendor_invoices,
    vendors,
    worker_resources,
    workers,
)
from shared.maps import Registry, TableMap

# Each module declares its MAP and its blueprint `bp`; customers also carries the reverse direction.
_MODULES = (
    legal_entities,
    ledgers,
    exchange_rates,
    customers,
    vendors,
    vendor_accounts,
    workers,
    worker_resources,
    resource_roles,
    transaction_categories,
    contract_headers,
    funding_sources,
    contract_lines,
    projects_v2,
    project_tasks,
    contract_milestones,
    hour_estimates,
    expense_estimates,
    material_estimates,
    actuals,
    actuals_accounting,
    transaction_connections,
    invoice_proposals,
    expense_categories,
    expenses,
    vendor_invoices,
    vendor_invoice_lines,
    vendor_invoice_status,
)

MAPS: tuple[TableMap, ...] = tuple(
    table_map
    for module in _MODULES
    for table_map in ((module.MAP, customers.REVERSE_MAP) if module is customers else (module.MAP,))
)

BLUEPRINTS: tuple[func.Blueprint, ...] = tuple(
    blueprint
    for module in _MODULES
    for blueprint in ((module.bp, customers.reverse_bp) if module is customers else (module.bp,))
)

CATALOG = Registry(MAPS)


@cache
def catalog(extensions_path: str | None = None) -> Registry:
    """The maps a deployment runs: ours, with the customer's map extension file merged in (read
    once; a wrong file raises MapExtensionError naming its line, which stops the app at start-up)."""
    if not extensions_path:
        return CATALOG
    from functions.map_extensions import read_extensions

    return read_extensions(Path(extensions_path), CATALOG)
