"""The Azure Functions app: registers every blueprint, nothing else."""

import azure.functions as func

from functions import admin, routers
from functions.catalog import BLUEPRINTS

app = func.FunctionApp()
app.register_functions(routers.bp)
app.register_functions(admin.bp)
for blueprint in BLUEPRINTS:
    app.register_functions(blueprint)
