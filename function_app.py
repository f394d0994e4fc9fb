"""The Azure Functions app: registers every blueprint, nothing else."""

import os

import azure.functions as func

from functions import admin, console, routers
from functions.catalog import BLUEPRINTS, catalog
from shared.runtime import check_startup_settings
from shared.settings import MAP_EXTENSIONS_SETTING

# A setting the app refuses stops it here, as the host loads it: with no function indexed, messages wait
# in their queues instead of each invocation failing into redelivery and the dead-letter queue.
check_startup_settings()

# A wrong map extension file stops the app here, as the host loads it, naming the file's line: not
# at the first message of the first flow.
catalog(os.environ.get(MAP_EXTENSIONS_SETTING) or None)

app = func.FunctionApp()
app.register_functions(routers.bp)
app.register_functions(admin.bp)
app.register_functions(console.bp)
for blueprint in BLUEPRINTS:
    app.register_functions(blueprint)
