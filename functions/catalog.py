"""Every flow's table map, in dual-write run order."""

from functions import (
    actuals,
    actuals_accounting,
    exchange_rates,
    expense_categories,
    legal_entities,
    projects_v2,
    resource_roles,
)
from shared.maps import Registry

FLOW_MODULES = (
    legal_entities,
    exchange_rates,
    resource_roles,
    projects_v2,
    actuals,
    actuals_accounting,
    expense_categories,
)

CATALOG = Registry(tuple(module.MAP for module in FLOW_MODULES))
