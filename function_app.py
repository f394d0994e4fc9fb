"""The Azure Functions app: registers every blueprint, nothing else."""

import os

import azure.functions as func

from functions import admin, console, routers
from functions.catalog import BLUEPRINTS, catalog
from shared.settings import MAP_EXTENSIONS_SETTING

# A wrong map extension file stops the app here, as the host loads it, naming the file's line: not
# at the first message of the first flow.
catalog(os.environ.get(MAP_EXTENSIONS_SETTING) or None)

app = func.FunctionApp()
app.register_functions(routers.bp)
app.register_functions(admin.bp)
app.register_functions(console.bp)
for blueprint in BLUEPRINTS:
    app.register_functions(blueprint)
