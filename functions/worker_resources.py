"""Project worker resource import (bookableresources): worker-linked resources → Finance.

Reference: maps/21-bookableresources-project-worker-resource-import.md. Documented: the map links
workers to bookable resources so the worker's employment dimensions reach integration journals and
forecasts; the integration key is bookableresourceid; the Worker (cdm_workers) map must run first.
Finance's entity (WorkerResourceImports in the live $metadata) has two fields only: the resource's
id (ProjCDSResourceId, a Guid and the key) and the worker's personnel number. The worker column's
logical name is not in any source (inferred).
"""

from collections.abc import Mapping
from typing import Any

from functions.flow_blueprint import flow_blueprint
from shared.events import Operation
from shared.maps import MET, FieldMap, FieldType, Filter, Lookup, SourceSide, System, TableMap, TargetSide
from shared.values import Ref


def _worker_linked(row: Mapping[str, Any]) -> bool:
    return isinstance(row["msdyn_worker"], Ref)


MAP = TableMap(
    name="worker-resources",
    title="Project worker resource import (bookableresources)",
    reference="maps/21-bookableresources-project-worker-resource-import.md",
    source=SourceSide(System.DATAVERSE, "bookableresource", "bookableresources", ("bookableresourceid",)),
    target=TargetSide(System.FINANCE, "WorkerResourceImports", ("ProjCDSResourceId",), MET),
    filter=Filter(
        "resources linked to a worker", ("msdyn_worker",), _worker_linked, odata="_msdyn_worker_value ne null"
    ),
    fields=(
        FieldMap(
            "bookableresourceid",
            "ProjCDSResourceId",
            FieldType.GUID,
            provenance=MET,
            note="bookableresourceid is the documented integration key; the entity's only Guid is its key",
        ),
    ),
    lookups=(
        Lookup(
            "msdyn_worker",
            "PersonnelNumber",
            read_set="cdm_workers",
            read_column="cdm_workernumber",
            required=True,
            provenance=MET,
            note="the worker's personnel number (Worker map)",
        ),
    ),
    operations=frozenset({Operation.CREATE, Operation.UPDATE}),
    notes=(
        "The resource's name is not sent: WorkerResourceImports has no name field (Finance shows the "
        "worker's). The Worker field cannot be changed once the resource exists (documented), so after "
        "the create an update rarely has anything to send."
    ),
)

bp = flow_blueprint(MAP)
