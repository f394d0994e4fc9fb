"""Project worker resource import (bookableresources): worker-linked resources → Finance.

Reference: maps/21-bookableresources-project-worker-resource-import.md. Documented: the map links
workers to bookable resources so the worker's employment dimensions reach integration journals and
forecasts; the integration key is bookableresourceid; the Worker (cdm_workers) map must run first.
The worker column's logical name, the Finance entity and its fields are not in any source (inferred).
"""

from collections.abc import Mapping
from typing import Any

from functions.flow_blueprint import flow_blueprint
from shared.events import Operation
from shared.maps import DOC, INF, FieldMap, FieldType, Filter, Lookup, SourceSide, System, TableMap, TargetSide
from shared.values import Ref


def _worker_linked(row: Mapping[str, Any]) -> bool:
    return isinstance(row["msdyn_worker"], Ref)


MAP = TableMap(
    name="worker-resources",
    title="Project worker resource import (bookableresources)",
    reference="maps/21-bookableresources-project-worker-resource-import.md",
    source=SourceSide(System.DATAVERSE, "bookableresource", "bookableresources", ("bookableresourceid",)),
    target=TargetSide(System.FINANCE, "ProjectWorkerResources", ("ResourceId",), INF),
    filter=Filter(
        "resources linked to a worker", ("msdyn_worker",), _worker_linked, odata="_msdyn_worker_value ne null"
    ),
    fields=(
        FieldMap("bookableresourceid", "ResourceId", FieldType.GUID, provenance=DOC, note="the integration key"),
        FieldMap("name", "ResourceName", provenance=INF),
    ),
    lookups=(
        Lookup(
            "msdyn_worker",
            "PersonnelNumber",
            read_set="cdm_workers",
            read_column="cdm_workernumber",
            required=True,
            provenance=INF,
            note="the worker's personnel number (Worker map)",
        ),
    ),
    operations=frozenset({Operation.CREATE, Operation.UPDATE}),
)

bp = flow_blueprint(MAP)
