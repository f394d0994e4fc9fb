"""The Azure Functions app: registers every blueprint, nothing else."""

import azure.functions as func

from functions import admin, routers
from functions.catalog import FLOW_MODULES

app = func.FunctionApp()
app.register_functions(routers.bp)
app.register_functions(admin.bp)
for flow_module in FLOW_MODULES:
    app.register_functions(flow_module.bp)
